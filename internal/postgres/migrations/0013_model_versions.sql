-- Model versions as data (issue 19).
--
-- An admin uploads a model directory's artifacts; every replica loads the
-- versions from here (at start and whenever model_registry.generation
-- moves) without a restart. A version is in shadow (scores every
-- recommendation of its name alongside the active version, never shown),
-- active (the one recommendations come from) or retired. The active version
-- changes only by a promotion or rollback requested by one admin and
-- approved by another.

CREATE TABLE model_versions (
	id           uuid PRIMARY KEY,
	name         text NOT NULL,
	version      text NOT NULL,
	-- sha256 is the digest of the model file (scorer.json), as recommendations record it.
	sha256       text NOT NULL,
	state        text NOT NULL CHECK (state IN ('shadow', 'active', 'retired')),
	uploaded_by  text NOT NULL,
	uploaded_at  timestamptz NOT NULL,
	activated_at timestamptz,
	changed_at   timestamptz NOT NULL,
	UNIQUE (name, version)
);
CREATE UNIQUE INDEX model_versions_one_active ON model_versions (name) WHERE state = 'active';

-- The artifacts of a version, each checked against the manifest's sha256 on upload and on load.
CREATE TABLE model_files (
	version_id uuid NOT NULL REFERENCES model_versions (id),
	path       text NOT NULL,
	sha256     text NOT NULL,
	content    bytea NOT NULL,
	PRIMARY KEY (version_id, path)
);
CREATE TRIGGER model_files_immutable BEFORE UPDATE OR DELETE ON model_files
	FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Promotion (a shadow version becomes active) and rollback (the previously
-- active version becomes active again): requested by one admin with a
-- reason (sealed), decided by another. from_version_id is the version that
-- was active when requested (NULL: the shipped model, or none).
CREATE TABLE model_promotions (
	id              uuid PRIMARY KEY,
	name            text NOT NULL,
	kind            text NOT NULL CHECK (kind IN ('promote', 'rollback')),
	version_id      uuid REFERENCES model_versions (id),
	from_version_id uuid REFERENCES model_versions (id),
	reason          bytea NOT NULL,
	status          text NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
	requested_by    text NOT NULL,
	requested_at    timestamptz NOT NULL,
	decided_by      text,
	decided_at      timestamptz,
	decision_note   bytea,
	CHECK (decided_by IS NULL OR decided_by <> requested_by)
);
CREATE UNIQUE INDEX model_promotions_one_pending ON model_promotions (name) WHERE status = 'pending';

-- What each shadow version said of a recommendation's inputs. Never shown
-- with the recommendation; read only by the comparison report.
CREATE TABLE shadow_scores (
	recommendation_id uuid NOT NULL REFERENCES recommendations (id),
	version_id        uuid NOT NULL REFERENCES model_versions (id),
	probability       double precision NOT NULL,
	tier              text NOT NULL CHECK (tier IN ('lenient', 'ordinary', 'strict')),
	created_at        timestamptz NOT NULL,
	PRIMARY KEY (recommendation_id, version_id)
);
CREATE INDEX shadow_scores_version ON shadow_scores (version_id, created_at);
CREATE TRIGGER shadow_scores_immutable BEFORE UPDATE OR DELETE ON shadow_scores
	FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- generation moves with every change of model_versions: replicas poll it.
CREATE TABLE model_registry (
	id         boolean PRIMARY KEY DEFAULT true CHECK (id),
	generation bigint NOT NULL
);
INSERT INTO model_registry (generation) VALUES (0);

GRANT SELECT, INSERT, UPDATE ON model_versions, model_promotions, model_registry TO sunpath_app;
GRANT SELECT, INSERT ON model_files, shadow_scores TO sunpath_app;
