-- Oversight figures that do not grow with history. The dashboard's counts
-- (people by level, overdue screenings, coverage, open flags, per-unit
-- outcomes, flag response times, override analytics) cost a scan of the
-- scope's people and history when computed. A periodic refresh
-- (casework.RefreshDashboards, every dashboard.refresh) computes them once
-- per scope that reads them at provincial scale — everyone (admins), each
-- agency (case systems), each unit (supervisors) — and stores them here;
-- a dashboard read is then one row, whatever the caseload. A counselor's
-- figures (a caseload, small) are always computed live, as are periods
-- other than the default and rollups older than dashboard.max_age.
--
-- Figures only: counts, durations and unit names; no person's data.
CREATE TABLE dashboard_rollups (
	scope text PRIMARY KEY,          -- 'all', 'unit:<code>' or 'agency:<agency>'
	as_of timestamptz NOT NULL,      -- the moment the figures are of
	body  jsonb NOT NULL
);

GRANT SELECT, INSERT, UPDATE, DELETE ON dashboard_rollups TO sunpath_app;
