-- Submissions never wait for one another on the schedule. Migration 0010's
-- trigger updated a person's schedule row in the transaction of every
-- assessment, so two transactions in flight with the same person (two
-- groups of WriteGrouped sharing a commit each) queued behind each other's
-- COMMIT, and two groups that reached two people in opposite orders
-- deadlocked until PostgreSQL broke the cycle after deadlock_timeout (1 s),
-- losing a group: measured under the realistic load, a one-second stall of
-- up to 32 submissions every few seconds, and the whole p99.
--
-- Now the trigger takes the row only if nobody holds it (SKIP LOCKED); when
-- another transaction in flight holds it, the new time goes to
-- schedule_pending, insert-only, and the schedule job
-- (postgres.Cases.DrainSchedule, every jobs.seal_interval) applies it. So
-- under contention a person's schedule can lag their newest screening by
-- about a second, in the safe direction: they look due a second longer.
-- Everything stays in the submission's transaction: nothing is lost in a
-- crash.
CREATE TABLE schedule_pending (
	subject_id uuid NOT NULL,
	instrument text NOT NULL,
	at         timestamptz NOT NULL
);

CREATE OR REPLACE FUNCTION assessments_schedule() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE screening_schedule c SET last_at = NEW.completed_at
	 WHERE c.ctid = (SELECT x.ctid FROM screening_schedule x WHERE x.subject_id = NEW.subject_id AND x.instrument = NEW.instrument
	                  FOR UPDATE SKIP LOCKED)
	   AND (c.last_at IS NULL OR c.last_at < NEW.completed_at);
	IF NOT FOUND AND EXISTS (SELECT 1 FROM screening_schedule x WHERE x.subject_id = NEW.subject_id AND x.instrument = NEW.instrument
	                          AND (x.last_at IS NULL OR x.last_at < NEW.completed_at)) THEN
		-- held by another transaction in flight (or changed since this
		-- one's snapshot): applied by the schedule job
		INSERT INTO schedule_pending (subject_id, instrument, at) VALUES (NEW.subject_id, NEW.instrument, NEW.completed_at);
	END IF;
	DELETE FROM follow_ups WHERE subject_id = NEW.subject_id AND instrument = NEW.instrument AND resolved_at < NEW.completed_at;
	RETURN NULL;
END
$$;

GRANT SELECT, INSERT, DELETE ON schedule_pending TO sunpath_app;
