-- People decide supervision levels. A recommendation is stored advice; a
-- level changes only by a person's decision, recorded here with who, when,
-- why and on which recommendation or override. Decisions are immutable: a
-- later decision supersedes, never edits, an earlier one.

CREATE TABLE tier_decisions (
	id                uuid PRIMARY KEY,
	subject_id        uuid NOT NULL REFERENCES subjects (id),
	kind              text NOT NULL CHECK (kind IN ('accepted', 'override', 'adjustment', 'case_system')),
	tier              text NOT NULL CHECK (tier IN ('lenient', 'ordinary', 'strict')),
	previous_tier     text CHECK (previous_tier IN ('lenient', 'ordinary', 'strict')),
	reason_code       text NOT NULL DEFAULT '',
	note              bytea,
	recommendation_id uuid REFERENCES recommendations (id),
	override_id       uuid REFERENCES overrides (id),
	requested_by      text NOT NULL DEFAULT '',
	decided_by        text NOT NULL,
	recorded_by       text NOT NULL,
	decided_at        timestamptz NOT NULL,
	created_at        timestamptz NOT NULL DEFAULT now(),
	CHECK (kind <> 'override' OR (override_id IS NOT NULL AND requested_by <> decided_by)),
	CHECK (kind <> 'accepted' OR recommendation_id IS NOT NULL)
);
CREATE INDEX tier_decisions_subject ON tier_decisions (subject_id, decided_at DESC);
CREATE TRIGGER tier_decisions_immutable BEFORE UPDATE OR DELETE ON tier_decisions
	FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- tier_source now names the kind of decision; 'model' remains only on rows
-- written before a model could no longer set a level by itself.
ALTER TABLE subjects DROP CONSTRAINT subjects_tier_source_check;
ALTER TABLE subjects ADD CONSTRAINT subjects_tier_source_check
	CHECK (tier_source IN ('model', 'override', 'accepted', 'adjustment', 'case_system'));
ALTER TABLE subjects ADD COLUMN tier_decision_id uuid REFERENCES tier_decisions (id);

-- What a recommendation did not know: the inputs not recorded.
ALTER TABLE recommendations ADD COLUMN unknown_inputs text[] NOT NULL DEFAULT '{}';

-- Flags close the loop: what was done (coded interventions) and when the
-- person is screened again.
ALTER TABLE flags ADD COLUMN interventions text[] NOT NULL DEFAULT '{}';
ALTER TABLE flags ADD COLUMN follow_up_due timestamptz;
CREATE INDEX flags_follow_up ON flags (subject_id) WHERE status = 'resolved' AND follow_up_due IS NOT NULL;
CREATE INDEX screening_sessions_open ON screening_sessions (subject_id, updated_at DESC) WHERE status = 'open';

GRANT SELECT, INSERT ON tier_decisions TO sunpath_app;
