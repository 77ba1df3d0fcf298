-- A recommendation's explanation names the bucket of every model input
-- (the person's offence history, employment, drug tests…): it is personal
-- and is now sealed like answers, notes and profiles. What stays in the
-- clear is what oversight is computed from in SQL and what names no one:
-- scores (total, severity), flag codes and levels, tiers, probabilities,
-- model names and versions, the inputs digest, unknown-input field names,
-- timestamps and the actors' account names.
--
-- Existing explanations are sealed by `sunpath keys rotate` (which needs the
-- keys the database never sees); until then they stay readable in the old
-- column. The guard lets an update do only that: move the explanation into
-- its sealed column, or re-seal it with another key.

ALTER TABLE recommendations ALTER COLUMN explanation DROP NOT NULL;
ALTER TABLE recommendations ADD COLUMN explanation_sealed bytea;
ALTER TABLE recommendations ADD CONSTRAINT recommendations_explained CHECK (explanation IS NOT NULL OR explanation_sealed IS NOT NULL);

DROP TRIGGER recommendations_immutable ON recommendations;
CREATE FUNCTION recommendations_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'UPDATE' AND NEW.explanation IS NULL AND NEW.explanation_sealed IS NOT NULL
	   AND (to_jsonb(NEW) - 'explanation' - 'explanation_sealed') = (to_jsonb(OLD) - 'explanation' - 'explanation_sealed') THEN
		RETURN NEW;
	END IF;
	RAISE EXCEPTION 'recommendations rows are immutable: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER recommendations_immutable BEFORE UPDATE OR DELETE ON recommendations
	FOR EACH ROW EXECUTE FUNCTION recommendations_guard();
GRANT UPDATE (explanation, explanation_sealed) ON recommendations TO sunpath_app;
