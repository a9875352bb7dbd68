-- Migration 0015's frozen copy of gridpatrol_intake_batch (the current one is in gis/dispatch/sql/intake.sql).
CREATE OR REPLACE FUNCTION gridpatrol_intake_batch(
    p_reports jsonb, p_auto boolean, p_radius float8, p_street_radius float8, p_timezone text, p_window interval,
    p_dup_radius float8)
RETURNS TABLE (ord int, replayed boolean, error_code text, error text, event event_rows) LANGUAGE plpgsql AS $$
-- the reports of p_reports (a JSON array of objects, see gis.dispatch.store.events.intake_many) stored in order: a report
-- later in the batch sees the ones before it (a retry of the same key is a replay, a report near an earlier one
-- its duplicate), as if they had come one by one
DECLARE
    r jsonb;
    one record;
BEGIN
    FOR i IN 0 .. jsonb_array_length(p_reports) - 1 LOOP
        r := p_reports -> i;
        SELECT o.replayed, o.error_code, o.error, o.event INTO one FROM gridpatrol_intake_one(
            r ->> 'key', r ->> 'hash', r ->> 'category', r ->> 'priority', r ->> 'source', r ->> 'description',
            r ->> 'contact', r -> 'photos', r ->> 'crs', (r ->> 'in_lon')::float8, (r ->> 'in_lat')::float8,
            (r ->> 'x')::float8, (r ->> 'y')::float8, p_auto, p_radius, p_street_radius, p_timezone,
            (r ->> 'at')::timestamptz, p_window, p_dup_radius, (r ->> 'dup_deg')::float8) o;
        -- the reporter's choice to publish their description (Open311's public view), kept with a new event only
        IF (r ->> 'publish')::boolean AND one.error_code IS NULL AND NOT one.replayed THEN
            UPDATE events_live SET published = true WHERE id = (one.event).id;
        END IF;
        RETURN QUERY SELECT i + 1, one.replayed, one.error_code, one.error, one.event;
    END LOOP;
END
$$;
