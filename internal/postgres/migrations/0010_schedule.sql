-- Oversight that stays fast at provincial scale. The due lists, the overdue
-- caseload filter and the dashboard used to compute every visible person's
-- schedule (a max over their assessments per instrument) on each request:
-- their cost grew with the caseload. The schedule is now kept as rows,
-- updated by triggers in the transaction of every change it depends on
-- (a subject's registration, unit, counselor, tier and supervision dates;
-- each assessment; each flag resolved with a follow-up), so that a due list
-- is a handful of index scans in due order, each stopping at the limit.
--
-- The intervals stay in the configuration (they are parameters of the
-- queries): a row holds when the instrument was last taken, and the due
-- date is that plus the tier's interval, which is monotonic in last_at
-- within a tier. So each tier's rows are read in due order from an index on
-- (tier, last_at), and the streams merged.

-- The instruments of the schedule, kept equal to schedule.instruments by
-- the server at startup (postgres.Cases.SyncSchedule); one row each.
CREATE TABLE schedule_instruments (
	instrument text PRIMARY KEY
);
INSERT INTO schedule_instruments VALUES ('phq9'), ('gad7'), ('asq');

-- One row per subject and schedule instrument, with the subject's scope,
-- tier and supervision dates copied so that the due streams are index scans.
CREATE TABLE screening_schedule (
	subject_id  uuid NOT NULL REFERENCES subjects (id),
	instrument  text NOT NULL,
	external_id text NOT NULL,
	unit        text NOT NULL,
	counselor   text NOT NULL,
	agency      text NOT NULL,
	tier        text NOT NULL, -- '' when no level is decided yet
	start       timestamptz NOT NULL, -- supervision start, or the record's creation
	ends        date, -- supervision end
	last_at     timestamptz, -- the latest completed_at of the instrument; NULL: never taken
	PRIMARY KEY (subject_id, instrument)
);
CREATE INDEX screening_schedule_reassess ON screening_schedule (tier, last_at, external_id, instrument) WHERE last_at IS NOT NULL;
CREATE INDEX screening_schedule_unit_reassess ON screening_schedule (unit, tier, last_at, external_id, instrument) WHERE last_at IS NOT NULL;
CREATE INDEX screening_schedule_counselor_reassess ON screening_schedule (counselor, tier, last_at, external_id, instrument) WHERE last_at IS NOT NULL;
CREATE INDEX screening_schedule_entry ON screening_schedule (start, external_id, instrument) WHERE last_at IS NULL;
CREATE INDEX screening_schedule_unit_entry ON screening_schedule (unit, start, external_id, instrument) WHERE last_at IS NULL;
CREATE INDEX screening_schedule_counselor_entry ON screening_schedule (counselor, start, external_id, instrument) WHERE last_at IS NULL;

-- Follow-up screenings set when a flag was resolved, until the flag's
-- instrument is taken again after the resolution.
CREATE TABLE follow_ups (
	flag_id     uuid PRIMARY KEY REFERENCES flags (id),
	subject_id  uuid NOT NULL REFERENCES subjects (id),
	instrument  text NOT NULL,
	due         timestamptz NOT NULL,
	resolved_at timestamptz NOT NULL,
	last_at     timestamptz NOT NULL -- when the flag's assessment was completed
);
CREATE INDEX follow_ups_due ON follow_ups (due);
CREATE INDEX follow_ups_subject ON follow_ups (subject_id, instrument);

-- schedule_rows rewrites one subject's rows from its record and assessments.
CREATE FUNCTION schedule_rows(s subjects) RETURNS void LANGUAGE sql AS $$
	DELETE FROM screening_schedule WHERE subject_id = s.id;
	INSERT INTO screening_schedule (subject_id, instrument, external_id, unit, counselor, agency, tier, start, ends, last_at)
	SELECT s.id, i.instrument, s.external_id, s.unit, s.counselor, s.agency, coalesce(s.tier, ''),
	       coalesce(s.supervision_start::timestamptz, s.created_at), s.supervision_end,
	       (SELECT max(a.completed_at) FROM assessments a WHERE a.subject_id = s.id AND a.instrument = i.instrument)
	  FROM schedule_instruments i;
$$;

CREATE FUNCTION subjects_schedule() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM schedule_rows(NEW);
	RETURN NULL;
END
$$;
CREATE TRIGGER subjects_schedule_insert AFTER INSERT ON subjects
	FOR EACH ROW EXECUTE FUNCTION subjects_schedule();
CREATE TRIGGER subjects_schedule_update AFTER UPDATE ON subjects
	FOR EACH ROW WHEN ((OLD.external_id, OLD.unit, OLD.counselor, OLD.agency, OLD.tier, OLD.supervision_start, OLD.supervision_end, OLD.created_at)
		IS DISTINCT FROM (NEW.external_id, NEW.unit, NEW.counselor, NEW.agency, NEW.tier, NEW.supervision_start, NEW.supervision_end, NEW.created_at))
	EXECUTE FUNCTION subjects_schedule();

-- Each assessment moves its instrument's last_at and ends the follow-ups it
-- answers.
CREATE FUNCTION assessments_schedule() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE screening_schedule SET last_at = NEW.completed_at
	 WHERE subject_id = NEW.subject_id AND instrument = NEW.instrument AND (last_at IS NULL OR last_at < NEW.completed_at);
	DELETE FROM follow_ups WHERE subject_id = NEW.subject_id AND instrument = NEW.instrument AND resolved_at < NEW.completed_at;
	RETURN NULL;
END
$$;
CREATE TRIGGER assessments_schedule AFTER INSERT ON assessments
	FOR EACH ROW EXECUTE FUNCTION assessments_schedule();

-- A flag resolved with a follow-up date schedules the follow-up, unless its
-- instrument was already taken after the resolution.
CREATE FUNCTION flags_follow_up() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM follow_ups WHERE flag_id = NEW.id;
	INSERT INTO follow_ups (flag_id, subject_id, instrument, due, resolved_at, last_at)
	SELECT NEW.id, NEW.subject_id, a.instrument, NEW.follow_up_due, NEW.resolved_at, a.completed_at
	  FROM assessments a
	 WHERE a.id = NEW.assessment_id AND NEW.status = 'resolved' AND NEW.follow_up_due IS NOT NULL AND NEW.resolved_at IS NOT NULL
	   AND NOT EXISTS (SELECT 1 FROM assessments b WHERE b.subject_id = NEW.subject_id AND b.instrument = a.instrument
	                     AND b.completed_at > NEW.resolved_at);
	RETURN NULL;
END
$$;
CREATE TRIGGER flags_follow_up AFTER UPDATE OF status, follow_up_due, resolved_at ON flags
	FOR EACH ROW EXECUTE FUNCTION flags_follow_up();

-- A new schedule instrument gets a row for every subject.
CREATE FUNCTION schedule_instruments_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO screening_schedule (subject_id, instrument, external_id, unit, counselor, agency, tier, start, ends, last_at)
	SELECT s.id, NEW.instrument, s.external_id, s.unit, s.counselor, s.agency, coalesce(s.tier, ''),
	       coalesce(s.supervision_start::timestamptz, s.created_at), s.supervision_end,
	       (SELECT max(a.completed_at) FROM assessments a WHERE a.subject_id = s.id AND a.instrument = NEW.instrument)
	  FROM subjects s
	ON CONFLICT DO NOTHING;
	RETURN NULL;
END
$$;
CREATE TRIGGER schedule_instruments_added AFTER INSERT ON schedule_instruments
	FOR EACH ROW EXECUTE FUNCTION schedule_instruments_added();
CREATE FUNCTION schedule_instruments_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM screening_schedule WHERE instrument = OLD.instrument;
	RETURN NULL;
END
$$;
CREATE TRIGGER schedule_instruments_removed AFTER DELETE ON schedule_instruments
	FOR EACH ROW EXECUTE FUNCTION schedule_instruments_removed();

-- What exists already.
SELECT schedule_rows(s) FROM subjects s;
INSERT INTO follow_ups (flag_id, subject_id, instrument, due, resolved_at, last_at)
SELECT f.id, f.subject_id, a.instrument, f.follow_up_due, f.resolved_at, a.completed_at
  FROM flags f JOIN assessments a ON a.id = f.assessment_id
 WHERE f.status = 'resolved' AND f.follow_up_due IS NOT NULL AND f.resolved_at IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM assessments b WHERE b.subject_id = f.subject_id AND b.instrument = a.instrument
                     AND b.completed_at > f.resolved_at);

-- The flag queue, in its order: level, then deadline; open and
-- acknowledged flags apart from resolved ones, which only accumulate.
CREATE INDEX flags_queue ON flags ((CASE level WHEN 'critical' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END), deadline) WHERE status <> 'resolved';
CREATE INDEX flags_resolved_queue ON flags ((CASE level WHEN 'critical' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END), deadline) WHERE status = 'resolved';
CREATE INDEX flags_unresolved_subject ON flags (subject_id) WHERE status <> 'resolved';
-- Period counts of the outcomes report.
CREATE INDEX assessments_completed ON assessments (completed_at);
CREATE INDEX flags_raised ON flags (raised_at);
CREATE INDEX flags_resolved_at ON flags (resolved_at) WHERE resolved_at IS NOT NULL;
-- Subject listings in id order within a scope.
CREATE INDEX subjects_unit_external ON subjects (unit, external_id);
CREATE INDEX subjects_counselor_external ON subjects (counselor, external_id);
CREATE INDEX subjects_agency_external ON subjects (agency, external_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON screening_schedule, follow_ups TO sunpath_app;
GRANT SELECT, INSERT, DELETE ON schedule_instruments TO sunpath_app;

-- New entrants of the dashboard's window.
CREATE INDEX subjects_supervision_start ON subjects (supervision_start);
CREATE INDEX subjects_created_unstarted ON subjects (created_at) WHERE supervision_start IS NULL;
