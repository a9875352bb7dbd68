-- Intake: the placement of a report on its grid (placement.sql) and person, and its first steps (the rules: the
-- docstring of gis/dispatch/store/events.py). The current definitions; migrations load frozen copies of their day
-- (tests/db/test_sql_definitions.py checks that the migrated database matches this file).

CREATE OR REPLACE FUNCTION gridpatrol_person(p_route text, p_grid int, p_community int, p_local timestamp)
RETURNS TABLE (staff_id int, how text) LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan AS $$
BEGIN  -- plpgsql, not sql: its plan is cached for the session, an SQL function's is made at every call
    RETURN QUERY SELECT x.staff_id, x.how FROM (
        SELECT r.staff_id, 'the member on duty by the roster' AS how, 1 AS rank, false AS aux
        FROM duty_roster r JOIN staff s ON s.id = r.staff_id AND s.active
        WHERE p_route = 'grid' AND r.grid_id = p_grid AND r.weekday = extract(isodow FROM p_local)::int - 1
          AND r.starts <= p_local::time AND p_local::time < r.ends
        UNION ALL
        SELECT sg.staff_id, 'the grid chief (no one on duty)', 2, false
        FROM staff_grids sg JOIN staff s ON s.id = sg.staff_id AND s.active
        WHERE p_route = 'grid' AND sg.grid_id = p_grid AND sg.duty = 'chief'
        UNION ALL
        SELECT s.id, 'the police officer embedded in the grid', 1, s.role <> 'police'
        FROM staff_grids sg JOIN staff s ON s.id = sg.staff_id AND s.active
        WHERE p_route = 'police' AND sg.grid_id = p_grid AND s.role IN ('police', 'auxiliary_police')
        UNION ALL
        SELECT s.id, 'the community police officer', 2, s.role <> 'police' FROM staff s
        WHERE p_route = 'police' AND s.active AND s.unit_id = p_community
          AND s.role IN ('police', 'auxiliary_police')) x
    ORDER BY x.rank, x.aux, x.staff_id LIMIT 1;
END
$$;

CREATE OR REPLACE FUNCTION gridpatrol_stored(p_key text, p_hash text, OUT stored_id bigint, OUT conflict text)
LANGUAGE plpgsql AS $$
-- the event stored under an idempotency key (NULL: none) and, when it was stored for a different report, what to
-- tell the client. Volatile, so that it sees a row a concurrent batch has just committed (the ON CONFLICT path)
DECLARE
    v_hash text;
BEGIN
    SELECT e.id, e.request_hash INTO stored_id, v_hash FROM events e WHERE e.idempotency_key = p_key AND e.archive = 0;
    IF FOUND AND v_hash IS DISTINCT FROM p_hash THEN
        conflict := format('idempotency key %L was already used for a different report (event %s); use a new key '
                           'for a new report', p_key, stored_id);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION gridpatrol_intake_one(
    p_key text, p_hash text, p_category text, p_priority text, p_source text, p_description text,
    p_contact text, p_photos jsonb, p_crs text, p_in_lon float8, p_in_lat float8, p_x float8, p_y float8,
    p_auto boolean, p_radius float8, p_street_radius float8, p_timezone text, p_now timestamptz,
    p_window interval, p_dup_radius float8, p_dup_deg float8)
RETURNS TABLE (replayed boolean, error_code text, error text, event event_rows) LANGUAGE plpgsql
-- plan each statement once per session: planning these spatial queries costs more than running them, and the
-- plan cache would otherwise keep re-planning (custom plans look cheaper than the generic one).
-- Every statement here is an index lookup by design. A plan made while events was (nearly) empty, in a new city
-- or after the nightly statistics said so, would read the table sequentially and go on doing it as it grows,
-- until autovacuum's next ANALYZE: seq scans are ruled out (also for the foreign-key checks planned here).
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
DECLARE
    pt geometry := ST_SetSRID(ST_MakePoint(p_x, p_y), 4326);
    here text := format('[%s, %s]', round(p_x::numeric, 6), round(p_y::numeric, 6));
    cat categories%ROWTYPE;
    v_id bigint; v_conflict text;
    g_id int; g_code text; g_comm int; g_d float8 := 0; g_inside boolean := true;
    s_id int; s_code text; s_city int; s_d float8;
    v_queue text; v_staff int; v_dept text; v_rule text; v_flagged boolean := false; grid_rule text;
    who record; v_dup bigint; v_state text; v_wall boolean; v_accept_due timestamptz;
BEGIN
    IF p_key IS NOT NULL THEN  -- a retry: the first result
        SELECT s.stored_id, s.conflict INTO v_id, v_conflict FROM gridpatrol_stored(p_key, p_hash) s;
        IF v_conflict IS NOT NULL THEN
            RETURN QUERY SELECT false, 'GP409', v_conflict, NULL::event_rows;
            RETURN;
        ELSIF v_id IS NOT NULL THEN
            RETURN QUERY SELECT true, NULL::text, NULL::text, v FROM event_rows v WHERE v.id = v_id;
            RETURN;
        END IF;
    END IF;

    SELECT * INTO cat FROM categories c WHERE c.code = p_category;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, 'GP422', format('unknown category %L: use one of %s (GET /categories)',
            p_category, (SELECT string_agg(c.code, ', ' ORDER BY c.code) FROM categories c)), NULL::event_rows;
        RETURN;
    END IF;

    -- 1. the grid: the one containing the point (lowest code on a shared edge), else the nearest within p_radius
    -- (the rule: placement.sql)
    SELECT g.id, g.code, g.community_id INTO g_id, g_code, g_comm FROM gridpatrol_grid_at(pt) g;
    IF NOT FOUND THEN
        g_inside := false;
        SELECT n.id, n.code, n.community_id, n.d INTO g_id, g_code, g_comm, g_d
        FROM gridpatrol_grid_near(pt, p_radius) n;
    END IF;

    IF g_id IS NULL THEN  -- no grid near: the street's centre queue, flagged
        SELECT a.id, a.code, a.city_id, a.d INTO s_id, s_code, s_city, s_d FROM gridpatrol_street_near(pt) a;
        IF NOT FOUND OR s_d > p_street_radius THEN
            RETURN QUERY SELECT false, 'GP422', format('the point %s is outside the service area: %s', here,
                CASE WHEN s_d IS NULL THEN 'no imported city has a street there'
                     ELSE format('the nearest street is %s m away', to_char(s_d, 'FM999,999,999,990')) END),
                NULL::event_rows;
            RETURN;
        END IF;
        v_queue := 'street_centre'; v_dept := cat.department_code; v_flagged := true;
        v_rule := format('no grid within %s m: the centre queue of street %s (the point is %s it); flagged for a '
            'person to place', to_char(p_radius, 'FM999,990'), s_code,
            CASE WHEN s_d = 0 THEN 'inside' ELSE to_char(s_d, 'FM999,990') || ' m from' END);
    ELSE
        SELECT s.id, s.code, s.city_id INTO s_id, s_code, s_city
        FROM admin_units c JOIN admin_units s ON s.id = c.parent_id WHERE c.id = g_comm;
        grid_rule := CASE WHEN g_inside
            THEN format('grid %s contains the point (on a shared edge: the lowest code)', g_code)
            ELSE format('outside every grid: the nearest grid, %s, %s m away (within %s m)', g_code,
                        to_char(g_d, 'FM999,990.0'), to_char(p_radius, 'FM999,990')) END;
        -- 2. the person, by the category's route
        IF cat.route = 'department' THEN
            v_queue := 'department'; v_dept := cat.department_code;
            v_rule := format('%s; category %s goes straight to the department %s', grid_rule, cat.code,
                             cat.department_code);
        ELSE
            SELECT * INTO who FROM gridpatrol_person(cat.route, g_id, g_comm, p_now AT TIME ZONE p_timezone);
            IF FOUND THEN
                v_queue := CASE WHEN cat.route = 'police' THEN 'police' ELSE 'grid' END;
                v_staff := who.staff_id; v_rule := grid_rule || '; ' || who.how; v_flagged := NOT g_inside;
            ELSIF cat.route = 'police' THEN
                v_queue := 'department'; v_dept := cat.department_code; v_flagged := true;
                v_rule := format('%s; no police officer for the grid or community: the department %s', grid_rule,
                                 cat.department_code);
            ELSE
                v_queue := 'grid'; v_flagged := true;
                v_rule := grid_rule || '; nobody on duty and no grid chief: the grid''s queue, flagged';
            END IF;
        END IF;
    END IF;

    -- a possible duplicate: an open event of the same category within p_dup_radius and p_window. The fence
    -- (MATERIALIZED) makes the spatial index do the narrowing: the generic plan would otherwise AND it with the
    -- (category, time) index, which reads every recent event of the category
    WITH near AS MATERIALIZED (
        SELECT o.id, o.geom, o.category_code, o.reported_at FROM events o
        WHERE o.archive = 0 AND o.duplicate_of IS NULL
          AND o.state IN ('reported', 'accepted', 'dispatched', 'suspended', 'handled', 'verified')
          AND ST_DWithin(o.geom, pt, p_dup_deg))  -- the index's box, in degrees; then the exact test
    SELECT n.id INTO v_dup FROM near n
    WHERE n.category_code = p_category AND n.reported_at > p_now - p_window
      AND ST_DWithin(n.geom::geography, pt::geography, p_dup_radius)
    ORDER BY n.geom <-> pt, n.id LIMIT 1;
    v_state := CASE WHEN p_auto AND v_dup IS NULL THEN 'dispatched' ELSE 'reported' END;
    -- the clocks (worktime.sql): accept within the category's working hours of the report, dispatch within its
    -- hours of the acceptance, handling by category and priority; urgent matters and wall-clock categories on the
    -- clock
    v_wall := p_priority = 'urgent' OR cat.clock = 'wall';
    v_accept_due := gridpatrol_deadline(s_city, p_now, cat.accept_hours, v_wall);

    INSERT INTO events (idempotency_key, request_hash, category_code, priority, source, description,
        reporter_contact, photos, input_crs, input_lon, input_lat, geom, city_id, grid_id, grid_code, community_id,
        street_id, queue, assignee_staff_id, department_code, assignment_rule, flagged, duplicate_of, state,
        reported_at, dispatched_at, due_at, updated_at, accept_due_at, accepted_at, accept_late, dispatch_due_at,
        dispatch_late)
    VALUES (p_key, p_hash, p_category, p_priority, p_source, p_description, p_contact, p_photos, p_crs, p_in_lon,
        p_in_lat, pt, s_city, g_id, g_code, g_comm, s_id, v_queue, v_staff, v_dept, v_rule, v_flagged, v_dup,
        v_state, p_now, CASE WHEN v_state = 'dispatched' THEN p_now END,
        CASE WHEN v_state = 'dispatched' THEN gridpatrol_deadline(s_city, p_now, CASE p_priority
            WHEN 'urgent' THEN cat.hours_urgent WHEN 'high' THEN cat.hours_high ELSE cat.hours_normal END, v_wall)
        END,
        p_now, v_accept_due, CASE WHEN v_state = 'dispatched' THEN p_now END,
        CASE WHEN v_state = 'dispatched' THEN false END,
        NULL, CASE WHEN v_state = 'dispatched' THEN false END)  -- dispatched with the acceptance: no dispatch clock
    ON CONFLICT (idempotency_key, archive) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id INTO v_id;

    IF v_id IS NULL THEN  -- a concurrent batch with the same key stored it first: answer as a retry
        SELECT s.stored_id, s.conflict INTO v_id, v_conflict FROM gridpatrol_stored(p_key, p_hash) s;
        IF v_conflict IS NOT NULL THEN
            RETURN QUERY SELECT false, 'GP409', v_conflict, NULL::event_rows;
        ELSE
            RETURN QUERY SELECT true, NULL::text, NULL::text, v FROM event_rows v WHERE v.id = v_id;
        END IF;
        RETURN;
    END IF;

    INSERT INTO event_transitions (event_id, action, from_state, to_state, actor, role, at, note)
    VALUES (v_id, 'report', NULL, 'reported', 'gridpatrol', 'system', p_now, v_rule);
    IF v_state = 'dispatched' THEN
        INSERT INTO event_transitions (event_id, action, from_state, to_state, actor, role, at, note) VALUES
            (v_id, 'accept', 'reported', 'accepted', 'gridpatrol', 'system', p_now, 'accepted automatically'),
            (v_id, 'dispatch', 'accepted', 'dispatched', 'gridpatrol', 'system', p_now,
             'dispatched automatically; the deadline clock starts');
    END IF;
    RETURN QUERY SELECT false, NULL::text, NULL::text, v FROM event_rows v WHERE v.id = v_id;
END
$$;

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
