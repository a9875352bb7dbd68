-- Placement: which grid, or which street's centre queue, takes a report at a point. The rule, written once:
--
--   1. the current grid that contains the point; a point on a shared edge or vertex lies in several: the one
--      with the lowest code (the tie-break the grid editor uses for buildings)          gridpatrol_grid_at
--   2. outside every grid: of the four grids nearest by their boxes, the nearest on the spheroid, if it is within
--      the radius (default 50 m); a tie goes to the lower code                          gridpatrol_grid_near
--   3. no grid that near: of the three streets nearest by their boxes, the nearest on the spheroid (ties: the
--      lower code); the event goes to its centre queue, flagged. Beyond the street radius (1 km) the point is
--      outside the service area                                                         gridpatrol_street_near
--
-- Single intake (gridpatrol_intake_one, intake.sql) calls the three per report. Bulk intake
-- (gis/dispatch/store/bulk.py) calls gridpatrol_grid_near per row too, but carries out steps 1 and 3 set-based over
-- the whole file, in the same order and with the same tie-breaks: a grid's points are tested against it in a row
-- (PostGIS prepares the polygon once) and a street's distances are taken together, which is 2x (step 1, 200,000
-- points) and 2.6x (step 3, 3,500 points) faster than calling these per row. tests/db/test_bulk_events.py checks
-- that both place the same points alike.
--
-- SQL functions, STABLE, with no SET clause and no STRICT: PostgreSQL inlines them into the statement that calls
-- them, so they cost nothing over writing the query out there (and the caller's plan, cached, holds them).
-- The current definitions; migrations load frozen copies of their day (tests/db/test_sql_definitions.py).

CREATE OR REPLACE FUNCTION gridpatrol_grid_at(p_pt geometry)
RETURNS TABLE (id int, code text, community_id int) LANGUAGE sql STABLE AS $$
    SELECT g.id, g.code::text, g.community_id FROM grids g WHERE ST_Intersects(g.geom, p_pt) ORDER BY g.code LIMIT 1
$$;

CREATE OR REPLACE FUNCTION gridpatrol_grid_near(p_pt geometry, p_radius float8)
RETURNS TABLE (id int, code text, community_id int, d float8) LANGUAGE sql STABLE AS $$
    SELECT n.id, n.code, n.community_id, n.d FROM (
        SELECT g.id, g.code::text AS code, g.community_id,
               -- the distance on the spheroid only for a grid that can be within the radius (a planar test in
               -- degrees, wide enough at the point's latitude): a spheroid distance to a polygon costs ~80 µs
               CASE WHEN ST_DWithin(g.geom, p_pt,
                                    p_radius / (111320 * greatest(cos(radians(ST_Y(p_pt))), 0.01)) * 1.01)
                    THEN ST_Distance(g.geom::geography, p_pt::geography) END AS d
        FROM grids g ORDER BY g.geom <-> p_pt LIMIT 4) n
    WHERE n.d <= p_radius ORDER BY n.d, n.code LIMIT 1
$$;

CREATE OR REPLACE FUNCTION gridpatrol_street_near(p_pt geometry)
RETURNS TABLE (id int, code text, city_id int, d float8) LANGUAGE sql STABLE AS $$
    SELECT a.id, a.code, a.city_id, a.d FROM (
        SELECT u.id, u.code::text AS code, u.city_id, ST_Distance(u.geom::geography, p_pt::geography) AS d
        FROM admin_units u WHERE u.level = 'street' ORDER BY u.geom <-> p_pt LIMIT 3) a
    ORDER BY a.d, a.code LIMIT 1
$$;
