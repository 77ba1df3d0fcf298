-- The audit trail. Events are inserted in the same transaction as the change
-- they record, together with a row in audit_pending. The sealer (one replica
-- at a time, under an advisory lock) links pending events into audit_chain
-- and signs checkpoints. Events, links and checkpoints can only be inserted:
-- triggers refuse UPDATE, DELETE and TRUNCATE for every role that does not
-- first drop them (which itself needs ownership and is visible in the logs).

CREATE TABLE audit_events (
	id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at            timestamptz NOT NULL DEFAULT clock_timestamp(),
	actor         text NOT NULL,
	role          text NOT NULL,
	action        text NOT NULL,
	resource_type text NOT NULL DEFAULT '',
	resource_id   text NOT NULL DEFAULT '',
	subject       text NOT NULL DEFAULT '',
	outcome       text NOT NULL CHECK (outcome IN ('success', 'denied', 'rejected', 'failed')),
	request_id    text NOT NULL DEFAULT '',
	detail        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_subject ON audit_events (subject, id) WHERE subject <> '';
CREATE INDEX audit_events_actor ON audit_events (actor, id);
CREATE INDEX audit_events_at ON audit_events (at);

CREATE TABLE audit_pending (
	event_id bigint PRIMARY KEY REFERENCES audit_events (id)
);

CREATE TABLE audit_chain (
	seq       bigint PRIMARY KEY,
	event_id  bigint NOT NULL UNIQUE REFERENCES audit_events (id),
	prev_hash bytea NOT NULL,
	hash      bytea NOT NULL,
	sealed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE audit_checkpoints (
	seq       bigint PRIMARY KEY,
	hash      bytea NOT NULL,
	at        timestamptz NOT NULL,
	key_id    text NOT NULL,
	signature bytea NOT NULL
);

CREATE TABLE audit_keys (
	key_id     text PRIMARY KEY,
	public_key bytea NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
		USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
	FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
	FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain
	FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
	FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
	FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- sunpath_app is the role the service should log in as in production (see
-- deploy/RUNBOOK.md): it may read and append to the audit trail but not
-- change it, and it does not own the tables, so it cannot drop the triggers.
-- A schema owner without CREATEROLE (as on CloudNativePG) needs a database
-- administrator to create sunpath_app first; it is then only granted to.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sunpath_app') THEN
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user AND (rolsuper OR rolcreaterole)) THEN
			RAISE EXCEPTION 'role sunpath_app does not exist and % may not create it: a database administrator runs CREATE ROLE sunpath_app NOLOGIN once (deploy/RUNBOOK.md#database-roles)', current_user
				USING ERRCODE = 'insufficient_privilege';
		END IF;
		CREATE ROLE sunpath_app NOLOGIN;
	END IF;
END;
$$;
GRANT SELECT, INSERT ON audit_events, audit_chain, audit_checkpoints, audit_keys TO sunpath_app;
GRANT SELECT, INSERT, DELETE ON audit_pending TO sunpath_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON users, api_keys, sessions TO sunpath_app;
