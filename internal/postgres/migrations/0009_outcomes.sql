-- Outcomes of supervision, as data: what a model of the agency's own people
-- is trained and checked on. Each is recorded by a person (or the case system)
-- with the date it happened; like assessments, outcomes are never edited.
-- Recommendations keep the inputs they were made from (sealed), so that a
-- training file has the inputs as they were at the time (no leakage).

CREATE TABLE outcomes (
	id          uuid PRIMARY KEY,
	subject_id  uuid NOT NULL REFERENCES subjects (id),
	kind        text NOT NULL CHECK (kind IN ('completed', 'warning', 'reprimand', 'public_security_penalty', 'revocation', 'new_offence', 'absconding')),
	occurred_on date NOT NULL,
	note        bytea,
	recorded_by text NOT NULL,
	recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outcomes_subject ON outcomes (subject_id, occurred_on);
CREATE TRIGGER outcomes_immutable BEFORE UPDATE OR DELETE ON outcomes
	FOR EACH ROW EXECUTE FUNCTION refuse_change();
GRANT SELECT, INSERT ON outcomes TO sunpath_app;

ALTER TABLE recommendations ADD COLUMN inputs_sealed bytea;
CREATE INDEX recommendations_model ON recommendations (model_name, created_at);
