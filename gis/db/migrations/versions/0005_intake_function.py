"""Intake in one round trip: the placement and assignment rules as database functions.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

``gridpatrol_intake`` does what ``gis.db.events.intake`` did in five statements (idempotency replay, category,
grid, person, insert with the duplicate check and the first steps) in one call, so a report costs one round trip
and one commit. The rules are those of the ``gis.db.events`` docstring; the messages are the same.
It answers with the stored event as a row of the view ``event_rows`` (the one
definition of what an event looks like to a client, read everywhere events are read).
``gridpatrol_person`` is the "who is responsible" rule, shared by intake and by the reassignment after a boundary
edit. Errors a client can fix are raised with SQLSTATE ``GP422`` (bad input) or ``GP409`` (conflict).
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

EVENT_ROWS = """
CREATE VIEW event_rows AS
SELECT e.id, e.state, e.category_code AS category, cat.name AS category_name, cat.name_en AS category_name_en,
    e.priority, e.source, e.description, e.photos, ST_X(e.geom) AS lon, ST_Y(e.geom) AS lat, e.input_crs,
    e.input_lon, e.input_lat, e.grid_code AS grid, cu.code AS community, su.code AS street, e.queue,
    e.assignee_staff_id AS assignee_id, st.name AS assignee_name, st.role AS assignee_role,
    e.department_code AS department, e.assignment_rule, e.flagged, e.duplicate_of, e.level, e.reported_at,
    e.dispatched_at, e.due_at, e.closed_at, e.closed_on_time, e.missed_deadline, e.reworks, e.extensions,
    e.escalations, e.suspended_seconds, e.evaluation, e.updated_at, e.reporter_contact
FROM events e JOIN categories cat ON cat.code = e.category_code
LEFT JOIN admin_units cu ON cu.id = e.community_id LEFT JOIN admin_units su ON su.id = e.street_id
LEFT JOIN staff st ON st.id = e.assignee_staff_id
"""

PERSON = """
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
$$
"""

REPLAY = """
CREATE OR REPLACE FUNCTION gridpatrol_replay(p_key text, p_hash text) RETURNS bigint LANGUAGE plpgsql AS $$
-- the event stored under an idempotency key (NULL: none), or GP409 when it was stored for a different report.
-- Volatile, so that it sees a row a concurrent request has just committed (intake's ON CONFLICT path)
DECLARE
    v_id bigint; v_hash text;
BEGIN
    SELECT e.id, e.request_hash INTO v_id, v_hash FROM events e WHERE e.idempotency_key = p_key;
    IF FOUND AND v_hash IS DISTINCT FROM p_hash THEN
        RAISE EXCEPTION USING ERRCODE = 'GP409', MESSAGE = format('idempotency key %L was already used '
            'for a different report (event %s); use a new key for a new report', p_key, v_id);
    END IF;
    RETURN v_id;
END
$$
"""

INTAKE = """
CREATE OR REPLACE FUNCTION gridpatrol_intake(
    p_key text, p_hash text, p_category text, p_priority text, p_source text, p_description text,
    p_contact text, p_photos jsonb, p_crs text, p_in_lon float8, p_in_lat float8, p_x float8, p_y float8,
    p_auto boolean, p_radius float8, p_street_radius float8, p_timezone text, p_now timestamptz,
    p_window interval, p_dup_radius float8, p_dup_deg float8)
RETURNS TABLE (replayed boolean, event event_rows) LANGUAGE plpgsql
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
    v_id bigint;
    g_id int; g_code text; g_comm int; g_d float8 := 0; g_inside boolean := true;
    s_id int; s_code text; s_city int; s_d float8;
    v_queue text; v_staff int; v_dept text; v_rule text; v_flagged boolean := false; grid_rule text;
    who record; v_dup bigint; v_state text;
BEGIN
    IF p_key IS NOT NULL THEN  -- a retry: the first result
        v_id := gridpatrol_replay(p_key, p_hash);
        IF v_id IS NOT NULL THEN
            RETURN QUERY SELECT true, v FROM event_rows v WHERE v.id = v_id;
            RETURN;
        END IF;
    END IF;

    SELECT * INTO cat FROM categories c WHERE c.code = p_category;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'GP422', MESSAGE = format('unknown category %L: use one of %s '
            '(GET /categories)', p_category, (SELECT string_agg(c.code, ', ' ORDER BY c.code) FROM categories c));
    END IF;

    -- 1. the grid: the one containing the point (lowest code on a shared edge), else the nearest within p_radius
    SELECT g.id, g.code, g.community_id INTO g_id, g_code, g_comm
    FROM grids g WHERE ST_Intersects(g.geom, pt) ORDER BY g.code LIMIT 1;
    IF NOT FOUND THEN
        g_inside := false;
        SELECT n.id, n.code, n.community_id, n.d INTO g_id, g_code, g_comm, g_d FROM (
            SELECT g.id, g.code, g.community_id, ST_Distance(g.geom::geography, pt::geography) AS d
            FROM (SELECT id, code, community_id, geom FROM grids ORDER BY geom <-> pt LIMIT 4) g) n
        WHERE n.d <= p_radius ORDER BY n.d, n.code LIMIT 1;
    END IF;

    IF g_id IS NULL THEN  -- no grid near: the street's centre queue, flagged
        SELECT a.id, a.code, a.city_id, a.d INTO s_id, s_code, s_city, s_d FROM (
            SELECT u.id, u.code, u.city_id, ST_Distance(u.geom::geography, pt::geography) AS d
            FROM (SELECT id, code, city_id, geom FROM admin_units WHERE level = 'street'
                  ORDER BY geom <-> pt LIMIT 3) u) a
        ORDER BY a.d, a.code LIMIT 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'GP422', MESSAGE = format('the point %s is outside the service area: '
                'no imported city has a street there', here);
        END IF;
        IF s_d > p_street_radius THEN
            RAISE EXCEPTION USING ERRCODE = 'GP422', MESSAGE = format('the point %s is outside the service area: '
                'the nearest street is %s m away', here, to_char(s_d, 'FM999,999,999,990'));
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
        WHERE o.duplicate_of IS NULL
          AND o.state IN ('reported', 'accepted', 'dispatched', 'suspended', 'handled', 'verified')
          AND ST_DWithin(o.geom, pt, p_dup_deg))  -- the index's box, in degrees; then the exact test
    SELECT n.id INTO v_dup FROM near n
    WHERE n.category_code = p_category AND n.reported_at > p_now - p_window
      AND ST_DWithin(n.geom::geography, pt::geography, p_dup_radius)
    ORDER BY n.geom <-> pt, n.id LIMIT 1;
    v_state := CASE WHEN p_auto AND v_dup IS NULL THEN 'dispatched' ELSE 'reported' END;

    INSERT INTO events (idempotency_key, request_hash, category_code, priority, source, description,
        reporter_contact, photos, input_crs, input_lon, input_lat, geom, city_id, grid_id, grid_code, community_id,
        street_id, queue, assignee_staff_id, department_code, assignment_rule, flagged, duplicate_of, state,
        reported_at, dispatched_at, due_at, updated_at)
    VALUES (p_key, p_hash, p_category, p_priority, p_source, p_description, p_contact, p_photos, p_crs, p_in_lon,
        p_in_lat, pt, s_city, g_id, g_code, g_comm, s_id, v_queue, v_staff, v_dept, v_rule, v_flagged, v_dup,
        v_state, p_now, CASE WHEN v_state = 'dispatched' THEN p_now END,
        CASE WHEN v_state = 'dispatched' THEN p_now + make_interval(hours => CASE p_priority
            WHEN 'urgent' THEN cat.hours_urgent WHEN 'high' THEN cat.hours_high ELSE cat.hours_normal END) END,
        p_now)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id INTO v_id;

    IF v_id IS NULL THEN  -- a concurrent request with the same key stored it first: answer as a retry
        v_id := gridpatrol_replay(p_key, p_hash);
        RETURN QUERY SELECT true, v FROM event_rows v WHERE v.id = v_id;
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
    RETURN QUERY SELECT false, v FROM event_rows v WHERE v.id = v_id;
END
$$
"""


def upgrade() -> None:
    # the duplicate check's index: open events not already marked as duplicates
    op.execute("CREATE INDEX events_open_geom_idx ON events USING gist (geom) WHERE duplicate_of IS NULL "
               "AND state IN ('reported', 'accepted', 'dispatched', 'suspended', 'handled', 'verified')")
    # the community police officer, when the grid has none embedded: found by unit, not by reading all staff
    op.execute("CREATE INDEX staff_police_unit_idx ON staff (unit_id) WHERE role IN ('police', 'auxiliary_police')")
    op.execute(EVENT_ROWS)
    op.execute(PERSON)
    op.execute(REPLAY)
    op.execute(INTAKE)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS gridpatrol_intake(text, text, text, text, text, text, text, jsonb, text, "
               "float8, float8, float8, float8, boolean, float8, float8, text, timestamptz, interval, float8, "
               "float8)")
    op.execute("DROP FUNCTION IF EXISTS gridpatrol_replay(text, text)")
    op.execute("DROP FUNCTION IF EXISTS gridpatrol_person(text, int, int, timestamp)")
    op.execute("DROP INDEX IF EXISTS events_open_geom_idx")
    op.execute("DROP VIEW IF EXISTS event_rows")
    op.execute("DROP INDEX IF EXISTS staff_police_unit_idx")
