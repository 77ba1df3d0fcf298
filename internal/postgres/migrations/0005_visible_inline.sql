-- subject_visible becomes a plain expression PostgreSQL can inline. Before,
-- its case-system branch looked the unit's agency up in a subquery, which
-- kept the planner from inlining it: every call ran as a separate SQL
-- function (parsed and planned per query, called per row, no index use) and
-- cost about a tenth of the database time of a submission. The agency now
-- travels with the subject, kept equal to its unit's by a foreign key that
-- cascades when a unit changes agency and a trigger that fills it in.

ALTER TABLE units ADD CONSTRAINT units_code_agency UNIQUE (code, agency);
ALTER TABLE subjects ADD COLUMN agency text;
UPDATE subjects s SET agency = u.agency FROM units u WHERE u.code = s.unit;
ALTER TABLE subjects ALTER COLUMN agency SET NOT NULL;
ALTER TABLE subjects ADD CONSTRAINT subjects_unit_agency FOREIGN KEY (unit, agency)
	REFERENCES units (code, agency) ON UPDATE CASCADE;

CREATE FUNCTION subjects_agency() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	SELECT agency INTO NEW.agency FROM units WHERE code = NEW.unit;
	RETURN NEW;
END
$$;
CREATE TRIGGER subjects_agency BEFORE INSERT OR UPDATE OF unit ON subjects
	FOR EACH ROW EXECUTE FUNCTION subjects_agency();

DROP FUNCTION subject_visible(text, text, text, text, text);

-- subject_visible is the one definition of who may see a subject:
-- admins everyone, supervisors their unit, counselors their caseload, case
-- systems the units of their agency (the API key's scope), nobody else.
CREATE FUNCTION subject_visible(s_unit text, s_counselor text, s_agency text, p_role text, p_name text, p_scope text)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE p_role
		WHEN 'admin' THEN true
		WHEN 'supervisor' THEN s_unit = p_scope
		WHEN 'counselor' THEN s_counselor = p_name
		WHEN 'case_system' THEN s_agency = p_scope
		ELSE false
	END
$$;
