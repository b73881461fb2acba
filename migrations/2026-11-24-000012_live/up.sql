-- Live fan-out: every committed change-stream event and every new notification is announced
-- on the `mycrm_live` channel, so each `mycrm serve` process can push it to its WebSocket
-- subscribers whichever process made it. NOTIFY is sent at commit and only then, in commit
-- order. A payload must stay under PostgreSQL's 8000-byte limit: a statement's rows go inline
-- one per notification when there are few and each is small; otherwise only their IDs go
-- (in chunks), and listeners fetch the rows by ID.
CREATE FUNCTION live_announce() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rows_count integer;
    workspace bigint;
    body text;
    ids bigint[];
    rid bigint;
    chunk integer := 500;
    i integer;
BEGIN
    SELECT count(*) INTO rows_count FROM fresh;
    IF rows_count <= 8 THEN
        FOR body, workspace, rid IN
            SELECT json_build_object('k', TG_TABLE_NAME, 'row', row_to_json(f))::text,
                   f.workspace_id, f.id
            FROM fresh f ORDER BY f.id
        LOOP
            IF octet_length(body) <= 7000 THEN
                PERFORM pg_notify('mycrm_live', body);
            ELSE
                PERFORM pg_notify('mycrm_live', json_build_object(
                    'k', TG_TABLE_NAME, 'ws', workspace, 'ids', json_build_array(rid))::text);
            END IF;
        END LOOP;
        RETURN NULL;
    END IF;
    FOR workspace, ids IN
        SELECT f.workspace_id, array_agg(f.id ORDER BY f.id) FROM fresh f GROUP BY f.workspace_id
    LOOP
        FOR i IN 0 .. (cardinality(ids) - 1) / chunk LOOP
            PERFORM pg_notify('mycrm_live', json_build_object(
                'k', TG_TABLE_NAME, 'ws', workspace,
                'ids', ids[i * chunk + 1 : (i + 1) * chunk])::text);
        END LOOP;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER record_events_live AFTER INSERT ON record_events
    REFERENCING NEW TABLE AS fresh
    FOR EACH STATEMENT EXECUTE FUNCTION live_announce();
CREATE TRIGGER notifications_live AFTER INSERT ON notifications
    REFERENCING NEW TABLE AS fresh
    FOR EACH STATEMENT EXECUTE FUNCTION live_announce();
