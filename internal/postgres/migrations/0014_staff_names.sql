-- Staff are named in the UI by their names, not their account names
-- (issue 16): a person's name, sealed like every name, set by an admin.
CREATE TABLE staff_names (
	username   text PRIMARY KEY REFERENCES users (username) ON UPDATE CASCADE ON DELETE CASCADE,
	name       bytea NOT NULL, -- sealed (AES-GCM, bound to the username)
	updated_at timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, UPDATE ON staff_names TO sunpath_app;
