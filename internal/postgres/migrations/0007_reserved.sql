-- Placeholder for migration 7, which another branch (issue 17: login roles)
-- adds as 0007_login_role.sql. tern refuses a gap in the numbering, so this
-- branch's 0008 needs a 7 to run; delete this file when the two meet.
SELECT 1;
