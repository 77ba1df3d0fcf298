-- subject_visible is the one definition of who may see a subject:
-- admins everyone, supervisors their unit, counselors their caseload, case
-- systems the units of their agency (the API key's scope), nobody else.
CREATE FUNCTION subject_visible(s_unit text, s_counselor text, p_role text, p_name text, p_scope text)
RETURNS boolean LANGUAGE sql STABLE AS $$
	SELECT CASE p_role
		WHEN 'admin' THEN true
		WHEN 'supervisor' THEN s_unit = p_scope
		WHEN 'counselor' THEN s_counselor = p_name
		WHEN 'case_system' THEN EXISTS (SELECT 1 FROM units u WHERE u.code = s_unit AND u.agency = p_scope)
		ELSE false
	END
$$;

-- unit_writable says whether a principal may place a subject in a unit.
CREATE FUNCTION unit_writable(u_code text, p_role text, p_scope text)
RETURNS boolean LANGUAGE sql STABLE AS $$
	SELECT CASE p_role
		WHEN 'admin' THEN EXISTS (SELECT 1 FROM units WHERE code = u_code)
		WHEN 'supervisor' THEN u_code = p_scope AND EXISTS (SELECT 1 FROM units WHERE code = u_code)
		WHEN 'case_system' THEN EXISTS (SELECT 1 FROM units WHERE code = u_code AND agency = p_scope)
		ELSE false
	END
$$;
