-- A grid's figures kept on its row (migration 0033): households and buildings from the buildings whose grid_id is
-- the grid; open_cases, its cases in an open state (gis.dispatch.rules.OPEN_STATES) not archived; open_dues, the
-- sorted handling deadlines of those being handled (dispatched, handled), NULL for none. Kept by statement-level
-- triggers with transition tables: a bulk import or a division's reassignment of thousands of rows costs one
-- update per grid it touches. Deltas (+ n), so two transactions adding cases to one grid both count; the grid rows
-- are locked in id order first (FOR NO KEY UPDATE, which a case's foreign key check does not wait for), so two bulk
-- writes do not deadlock; a statement that changes nothing a figure reads (a case's text) touches no grid.
-- The current definitions; migrations load frozen copies of their day.

CREATE OR REPLACE FUNCTION grid_dues_apply(dues timestamptz[], added timestamptz[], removed timestamptz[])
RETURNS timestamptz[] LANGUAGE sql IMMUTABLE AS $$
    -- the multiset dues + added - removed, sorted; NULL when empty
    SELECT array_agg(d ORDER BY d) FROM (
        SELECT d, row_number() OVER (PARTITION BY d) AS k
        FROM unnest(coalesce(dues, '{}') || coalesce(added, '{}')) AS d) AS a
    WHERE a.k > (SELECT count(*) FROM unnest(removed) AS r WHERE r = a.d)
$$;

CREATE OR REPLACE FUNCTION grid_cases_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
-- AFTER INSERT / UPDATE / DELETE ON events, FOR EACH STATEMENT, with the transition tables new_rows and old_rows
BEGIN
    EXECUTE format($q$
        WITH d AS (
            SELECT grid_id, open_delta, added, removed FROM (
                SELECT c.grid_id,
                       coalesce(sum(c.sign) FILTER (WHERE c.archive = 0 AND c.state IN
                           ('reported', 'accepted', 'dispatched', 'suspended', 'handled', 'verified', 'hung')),
                           0)::int AS open_delta,
                       array_agg(c.due_at ORDER BY c.due_at) FILTER (WHERE c.sign = 1 AND c.archive = 0
                           AND c.state IN ('dispatched', 'handled') AND c.due_at IS NOT NULL) AS added,
                       array_agg(c.due_at ORDER BY c.due_at) FILTER (WHERE c.sign = -1 AND c.archive = 0
                           AND c.state IN ('dispatched', 'handled') AND c.due_at IS NOT NULL) AS removed
                FROM (%s) AS c WHERE c.grid_id IS NOT NULL GROUP BY c.grid_id) AS per_grid
            WHERE open_delta <> 0 OR added IS DISTINCT FROM removed),
        locked AS MATERIALIZED (
            SELECT g.id FROM grids g WHERE g.id IN (SELECT grid_id FROM d) ORDER BY g.id FOR NO KEY UPDATE)
        UPDATE grids g SET open_cases = g.open_cases + d.open_delta,
                           open_dues = grid_dues_apply(g.open_dues, d.added, d.removed)
        FROM d JOIN locked ON locked.id = d.grid_id WHERE g.id = d.grid_id$q$,
        CASE TG_OP WHEN 'INSERT' THEN 'SELECT 1 AS sign, * FROM new_rows'
                   WHEN 'DELETE' THEN 'SELECT -1 AS sign, * FROM old_rows'
                   ELSE 'SELECT 1 AS sign, * FROM new_rows UNION ALL SELECT -1 AS sign, * FROM old_rows' END);
    RETURN NULL;
END
$fn$;

CREATE OR REPLACE FUNCTION grid_buildings_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
-- AFTER INSERT / UPDATE / DELETE ON buildings, FOR EACH STATEMENT, with the transition tables new_rows and old_rows
BEGIN
    EXECUTE format($q$
        WITH d AS (
            SELECT grid_id, households_delta, buildings_delta FROM (
                SELECT b.grid_id, coalesce(sum(b.sign * coalesce(b.households, 0)), 0)::int AS households_delta,
                       sum(b.sign)::int AS buildings_delta
                FROM (%s) AS b WHERE b.grid_id IS NOT NULL GROUP BY b.grid_id) AS per_grid
            WHERE households_delta <> 0 OR buildings_delta <> 0),
        locked AS MATERIALIZED (
            SELECT g.id FROM grids g WHERE g.id IN (SELECT grid_id FROM d) ORDER BY g.id FOR NO KEY UPDATE)
        UPDATE grids g SET households = g.households + d.households_delta,
                           buildings = g.buildings + d.buildings_delta
        FROM d JOIN locked ON locked.id = d.grid_id WHERE g.id = d.grid_id$q$,
        CASE TG_OP WHEN 'INSERT' THEN 'SELECT 1 AS sign, grid_id, households FROM new_rows'
                   WHEN 'DELETE' THEN 'SELECT -1 AS sign, grid_id, households FROM old_rows'
                   ELSE 'SELECT 1 AS sign, grid_id, households FROM new_rows '
                        'UNION ALL SELECT -1 AS sign, grid_id, households FROM old_rows' END);
    RETURN NULL;
END
$fn$;

CREATE OR REPLACE FUNCTION grid_figures_emptied() RETURNS trigger LANGUAGE plpgsql AS $fn$
-- AFTER TRUNCATE ON events ('cases') or buildings ('buildings'): the figures it emptied are zero
BEGIN
    IF TG_ARGV[0] = 'cases' THEN
        UPDATE grids SET open_cases = 0, open_dues = NULL WHERE open_cases <> 0 OR open_dues IS NOT NULL;
    ELSE
        UPDATE grids SET households = 0, buildings = 0 WHERE households <> 0 OR buildings <> 0;
    END IF;
    RETURN NULL;
END
$fn$;
