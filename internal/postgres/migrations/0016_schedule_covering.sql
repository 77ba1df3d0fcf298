-- The due lists read only their indexes. Each stream of a due list (one
-- per tier, entrants, in each scope) walks a schedule index in due order and
-- stops at its limit, but then fetched each row's heap page for the scope
-- and output columns: 50 rows touched about 50 pages at 20,000 people and
-- about 20 at 2,000, which made a due list 2.6 times slower at ten times the
-- caseload although it read the same number of rows. The indexes now carry
-- those columns (INCLUDE), so a stream is an index-only scan of a few pages
-- whatever the caseload, as long as the visibility map is current:
-- screening_schedule is small and updated by every screening, so it is
-- vacuumed after every 1,000 changes rather than after a fifth of the table.
DROP INDEX screening_schedule_reassess, screening_schedule_unit_reassess, screening_schedule_counselor_reassess,
	screening_schedule_entry, screening_schedule_unit_entry, screening_schedule_counselor_entry;
CREATE INDEX screening_schedule_reassess ON screening_schedule (tier, last_at, external_id, instrument)
	INCLUDE (unit, counselor, agency, ends) WHERE last_at IS NOT NULL;
CREATE INDEX screening_schedule_unit_reassess ON screening_schedule (unit, tier, last_at, external_id, instrument)
	INCLUDE (counselor, agency, ends) WHERE last_at IS NOT NULL;
CREATE INDEX screening_schedule_counselor_reassess ON screening_schedule (counselor, tier, last_at, external_id, instrument)
	INCLUDE (unit, agency, ends) WHERE last_at IS NOT NULL;
CREATE INDEX screening_schedule_entry ON screening_schedule (start, external_id, instrument)
	INCLUDE (unit, counselor, agency, ends, tier) WHERE last_at IS NULL;
CREATE INDEX screening_schedule_unit_entry ON screening_schedule (unit, start, external_id, instrument)
	INCLUDE (counselor, agency, ends, tier) WHERE last_at IS NULL;
CREATE INDEX screening_schedule_counselor_entry ON screening_schedule (counselor, start, external_id, instrument)
	INCLUDE (unit, agency, ends, tier) WHERE last_at IS NULL;
ALTER TABLE screening_schedule SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
	autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 1000);
