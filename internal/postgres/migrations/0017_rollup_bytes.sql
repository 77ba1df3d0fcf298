-- A dashboard rollup's body is stored as the bytes the service wrote (its
-- JSON), not as jsonb: PostgreSQL never looks inside it, and as jsonb every
-- read converted the whole body back to text (about 1 ms for the
-- province's, which lists every unit) and every refresh parsed it.
ALTER TABLE dashboard_rollups ALTER COLUMN body TYPE bytea USING convert_to(body::text, 'UTF8');
