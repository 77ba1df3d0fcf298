-- The audit queue and chain no longer check their links to audit_events
-- with foreign keys. Each check took a KEY SHARE lock on the event's row:
-- one write to the event's page (and a WAL record) when the event was
-- queued, another when it was sealed, for every event. Neither check can
-- fail: audit_pending is filled in the statement that inserts the event
-- (WITH e AS (INSERT INTO audit_events ...) INSERT INTO audit_pending ...),
-- the sealer links only events it has just read, and audit events can never
-- be deleted (audit_events_append_only, audit_events_no_truncate). The
-- chain's hashes, not a constraint, are what prove each link: the verifier
-- (sunpath audit verify) recomputes every one from the event's contents.
ALTER TABLE audit_pending DROP CONSTRAINT audit_pending_event_id_fkey;
ALTER TABLE audit_chain DROP CONSTRAINT audit_chain_event_id_fkey;
