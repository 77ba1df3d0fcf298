-- The service logs in as a role that is only a member of sunpath_app, apart
-- from the role that owns the schema and migrates it (deploy/RUNBOOK.md#database-roles):
-- a member of sunpath_app cannot disable the audit trail's triggers, nor
-- update, delete or truncate it. Readiness reads the schema version.
GRANT SELECT ON public.schema_version TO sunpath_app;
