-- The case workflow: units, subjects, assessments, screening sessions,
-- flags, recommendations, overrides, idempotency records and the outbox.
-- Free text, answers and model inputs are sealed (AES-GCM, see
-- internal/sealed) and stored as bytea; scores are stored in the clear so
-- that trends and dashboards can be computed in SQL.

CREATE TABLE units (
	code       text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9._-]{1,64}$'),
	name       text NOT NULL,
	agency     text NOT NULL DEFAULT 'default' CHECK (agency ~ '^[A-Za-z0-9._-]{1,64}$'),
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE subjects (
	id                uuid PRIMARY KEY,
	external_id       text NOT NULL UNIQUE,
	display_name      bytea NOT NULL,
	sex               text NOT NULL,
	birth_year        integer,
	supervision_type  text NOT NULL,
	unit              text NOT NULL REFERENCES units (code),
	counselor         text NOT NULL DEFAULT '',
	supervision_start date,
	supervision_end   date,
	profile           bytea NOT NULL,
	tier              text CHECK (tier IN ('lenient', 'ordinary', 'strict')),
	tier_source       text CHECK (tier_source IN ('model', 'override')),
	tier_updated_at   timestamptz,
	created_at        timestamptz NOT NULL DEFAULT now(),
	updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subjects_unit ON subjects (unit);
CREATE INDEX subjects_counselor ON subjects (counselor);

CREATE TABLE screening_sessions (
	id               uuid PRIMARY KEY,
	subject_id       uuid NOT NULL REFERENCES subjects (id),
	instruments      text[] NOT NULL,
	language         text NOT NULL,
	status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'submitted', 'cancelled')),
	answers          bytea NOT NULL,
	created_by       text NOT NULL,
	created_at       timestamptz NOT NULL DEFAULT now(),
	updated_at       timestamptz NOT NULL DEFAULT now(),
	submitted_at     timestamptz,
	kiosk_token_hash bytea UNIQUE,
	kiosk_expires_at timestamptz,
	expires_at       timestamptz NOT NULL
);
CREATE INDEX screening_sessions_subject ON screening_sessions (subject_id);

-- Assessments are immutable: a result is never edited, only superseded.
CREATE TABLE assessments (
	id                 uuid PRIMARY KEY,
	subject_id         uuid NOT NULL REFERENCES subjects (id),
	instrument         text NOT NULL,
	instrument_version text NOT NULL,
	content_hash       text NOT NULL,
	engine_version     text NOT NULL,
	language           text NOT NULL,
	answers            bytea NOT NULL,
	result             jsonb NOT NULL,
	total              integer,
	severity           text,
	administered_by    text NOT NULL,
	started_at         timestamptz,
	completed_at       timestamptz NOT NULL,
	created_by         text NOT NULL,
	created_at         timestamptz NOT NULL DEFAULT now(),
	session_id         uuid REFERENCES screening_sessions (id)
);
CREATE INDEX assessments_subject ON assessments (subject_id, instrument, completed_at DESC, created_at DESC);

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION '% rows are immutable: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- A key rotation may re-encrypt an assessment's sealed answers and nothing
-- else: the sealed value is bound to its row by the cipher's associated data,
-- so only the same plaintext, sealed for the same row, can take its place.
CREATE FUNCTION assessments_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'UPDATE' AND (to_jsonb(NEW) - 'answers') = (to_jsonb(OLD) - 'answers') THEN
		RETURN NEW;
	END IF;
	RAISE EXCEPTION 'assessments rows are immutable: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER assessments_immutable BEFORE UPDATE OR DELETE ON assessments
	FOR EACH ROW EXECUTE FUNCTION assessments_guard();

CREATE TABLE flags (
	id               uuid PRIMARY KEY,
	subject_id       uuid NOT NULL REFERENCES subjects (id),
	assessment_id    uuid REFERENCES assessments (id),
	source           text NOT NULL CHECK (source IN ('instrument', 'rule')),
	code             text NOT NULL,
	level            text NOT NULL CHECK (level IN ('critical', 'urgent', 'review')),
	item             text NOT NULL DEFAULT '',
	status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
	raised_at        timestamptz NOT NULL DEFAULT now(),
	deadline         timestamptz NOT NULL,
	acknowledged_by  text,
	acknowledged_at  timestamptz,
	resolved_by      text,
	resolved_at      timestamptz,
	resolution_code  text,
	resolution_note  bytea,
	escalation_level integer NOT NULL DEFAULT 0,
	escalated_at     timestamptz
);
CREATE INDEX flags_open ON flags (deadline) WHERE status = 'open';
CREATE INDEX flags_subject ON flags (subject_id, raised_at DESC);

CREATE TABLE recommendations (
	id            uuid PRIMARY KEY,
	subject_id    uuid NOT NULL REFERENCES subjects (id),
	model_name    text NOT NULL,
	model_version text NOT NULL,
	model_sha256  text NOT NULL,
	probability   double precision NOT NULL CHECK (probability >= 0 AND probability <= 1),
	tier          text NOT NULL CHECK (tier IN ('lenient', 'ordinary', 'strict')),
	explanation   jsonb NOT NULL,
	inputs_digest text NOT NULL,
	created_by    text NOT NULL,
	created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recommendations_subject ON recommendations (subject_id, created_at DESC);
CREATE TRIGGER recommendations_immutable BEFORE UPDATE OR DELETE ON recommendations
	FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TABLE overrides (
	id                uuid PRIMARY KEY,
	recommendation_id uuid NOT NULL REFERENCES recommendations (id),
	subject_id        uuid NOT NULL REFERENCES subjects (id),
	recommended_tier  text NOT NULL,
	requested_tier    text NOT NULL CHECK (requested_tier IN ('lenient', 'ordinary', 'strict')),
	reason_code       text NOT NULL,
	note              bytea NOT NULL,
	status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
	requested_by      text NOT NULL,
	requested_at      timestamptz NOT NULL DEFAULT now(),
	decided_by        text,
	decided_at        timestamptz,
	decision_note     bytea,
	CHECK (decided_by IS NULL OR decided_by <> requested_by)
);
CREATE INDEX overrides_pending ON overrides (requested_at) WHERE status = 'pending';

-- Idempotency-Key records: the response of the first request with a key,
-- replayed for the same key and body within the retention period.
CREATE TABLE idempotency_keys (
	client       text NOT NULL,
	key          text NOT NULL,
	request_hash bytea NOT NULL,
	status       integer NOT NULL DEFAULT 0,
	body         bytea NOT NULL DEFAULT '',
	created_at   timestamptz NOT NULL DEFAULT now(),
	expires_at   timestamptz NOT NULL,
	PRIMARY KEY (client, key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

-- Outbox: one row per notification and endpoint, written in the same
-- transaction as the change that caused it; delivered at least once.
CREATE TABLE outbox (
	id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	delivery_id  uuid NOT NULL UNIQUE,
	endpoint     text NOT NULL,
	topic        text NOT NULL,
	payload      jsonb NOT NULL,
	created_at   timestamptz NOT NULL DEFAULT now(),
	next_at      timestamptz NOT NULL DEFAULT now(),
	attempts     integer NOT NULL DEFAULT 0,
	status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
	delivered_at timestamptz,
	last_error   text NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due ON outbox (next_at) WHERE status = 'pending';

GRANT SELECT, INSERT, UPDATE, DELETE ON units, subjects, screening_sessions, flags, overrides, idempotency_keys, outbox TO sunpath_app;
GRANT SELECT, INSERT ON assessments, recommendations TO sunpath_app;
GRANT UPDATE (answers) ON assessments TO sunpath_app;
