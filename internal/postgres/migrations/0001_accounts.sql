-- Accounts: people (users with server-side sessions) and machines (API keys).

CREATE TABLE users (
	id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	username      text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
	password_hash text NOT NULL,
	role          text NOT NULL CHECK (role IN ('admin', 'supervisor', 'counselor', 'case_system', 'auditor')),
	unit          text NOT NULL DEFAULT '',
	language      text NOT NULL DEFAULT 'zh-CN',
	disabled      boolean NOT NULL DEFAULT false,
	failed_logins integer NOT NULL DEFAULT 0,
	locked_at     timestamptz,
	created_at    timestamptz NOT NULL DEFAULT now(),
	updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
	id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name         text NOT NULL,
	role         text NOT NULL CHECK (role IN ('admin', 'supervisor', 'counselor', 'case_system', 'auditor')),
	unit         text NOT NULL DEFAULT '',
	key_hash     bytea NOT NULL UNIQUE,
	prefix       text NOT NULL,
	created_at   timestamptz NOT NULL DEFAULT now(),
	expires_at   timestamptz,
	revoked_at   timestamptz,
	last_used_at timestamptz
);

-- Sessions are stored by the SHA-256 of their token: a copy of this table
-- cannot be replayed as cookies.
CREATE TABLE sessions (
	token_hash   bytea PRIMARY KEY,
	user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at   timestamptz NOT NULL DEFAULT now(),
	last_seen_at timestamptz NOT NULL DEFAULT now(),
	expires_at   timestamptz NOT NULL,
	revoked_at   timestamptz
);
CREATE INDEX sessions_user_id ON sessions (user_id);
