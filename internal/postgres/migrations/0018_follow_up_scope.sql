-- The follow-up stream of a due list reads only its index, as the schedule
-- streams do since 0016. It joined each follow-up to its person for the
-- scope, the person's id and tier and the end of supervision: a key lookup
-- a row, the one part of a due list whose cost grew with the caseload
-- (make bench-scale: the overdue list 0.7 ms at 2,000 people, 1.0 ms at
-- 20,000). Follow-ups now carry those columns, copied from the person when a
-- follow-up is set and kept equal by a trigger when the person changes, and
-- the indexes the due order needs carry them too.
ALTER TABLE follow_ups ADD COLUMN external_id text, ADD COLUMN unit text, ADD COLUMN counselor text, ADD COLUMN agency text,
	ADD COLUMN tier text, ADD COLUMN ends date;
UPDATE follow_ups u SET external_id = s.external_id, unit = s.unit, counselor = s.counselor, agency = s.agency, tier = s.tier,
	ends = s.supervision_end
  FROM subjects s WHERE s.id = u.subject_id;
ALTER TABLE follow_ups ALTER COLUMN external_id SET NOT NULL, ALTER COLUMN unit SET NOT NULL, ALTER COLUMN counselor SET NOT NULL,
	ALTER COLUMN agency SET NOT NULL;

-- A follow-up takes its person's columns, whoever inserts it.
CREATE FUNCTION follow_ups_scope() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	SELECT s.external_id, s.unit, s.counselor, s.agency, s.tier, s.supervision_end
	  INTO NEW.external_id, NEW.unit, NEW.counselor, NEW.agency, NEW.tier, NEW.ends
	  FROM subjects s WHERE s.id = NEW.subject_id;
	RETURN NEW;
END
$$;
CREATE TRIGGER follow_ups_scope BEFORE INSERT ON follow_ups
	FOR EACH ROW EXECUTE FUNCTION follow_ups_scope();

-- And follows its person's changes.
CREATE FUNCTION subjects_follow_ups() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE follow_ups SET external_id = NEW.external_id, unit = NEW.unit, counselor = NEW.counselor, agency = NEW.agency,
		tier = NEW.tier, ends = NEW.supervision_end
	 WHERE subject_id = NEW.id;
	RETURN NULL;
END
$$;
CREATE TRIGGER subjects_follow_ups AFTER UPDATE ON subjects
	FOR EACH ROW WHEN ((OLD.external_id, OLD.unit, OLD.counselor, OLD.agency, OLD.tier, OLD.supervision_end)
		IS DISTINCT FROM (NEW.external_id, NEW.unit, NEW.counselor, NEW.agency, NEW.tier, NEW.supervision_end))
	EXECUTE FUNCTION subjects_follow_ups();

DROP INDEX follow_ups_due;
CREATE INDEX follow_ups_due ON follow_ups (due, external_id, instrument)
	INCLUDE (unit, counselor, agency, tier, ends, flag_id, last_at);
CREATE INDEX follow_ups_unit_due ON follow_ups (unit, due, external_id, instrument)
	INCLUDE (counselor, agency, tier, ends, flag_id, last_at);
CREATE INDEX follow_ups_counselor_due ON follow_ups (counselor, due, external_id, instrument)
	INCLUDE (unit, agency, tier, ends, flag_id, last_at);
ALTER TABLE follow_ups SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
	autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 1000);
