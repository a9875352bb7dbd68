-- A grid's figures kept on its row (migration 0033): households and buildings from the buildings whose grid_id is
-- the grid; open_cases, its cases in an open state (gis.dispatch.rules.OPEN_STATES) not archived; open_dues, the
-- sorted handling deadlines of those being handled (dispatched, handled), NULL for none. Kept by statement-level
-- triggers with transition tables: a bulk import or a division's reassignment of thousands of rows costs one
-- update per grid it touches. Deltas (+ n), so two transactions changing one grid both count; the grid rows are
-- locked in id order (FOR NO KEY UPDATE, which a case's foreign key check does not wait for); a statement that
-- changes nothing a figure reads (a case's text) touches no grid. The cases' changes are appended to
-- grid_case_changes and folded in later (grid_cases_fold), not applied by the statement that made them.
-- The current definitions; migrations load frozen copies of their day.

CREATE OR REPLACE FUNCTION grid_dues_apply(dues timestamptz[], added timestamptz[], removed timestamptz[])
RETURNS timestamptz[] LANGUAGE sql IMMUTABLE AS $$
    -- the multiset dues + added - removed, sorted; NULL when empty
    SELECT array_agg(d ORDER BY d) FROM (
        SELECT d, row_number() OVER (PARTITION BY d) AS k
        FROM unnest(coalesce(dues, '{}') || coalesce(added, '{}')) AS d) AS a
    WHERE a.k > (SELECT count(*) FROM unnest(removed) AS r WHERE r = a.d)
$$;

CREATE OR REPLACE FUNCTION grid_cases_append(plus grid_case_row[], minus grid_case_row[]) RETURNS void
LANGUAGE plpgsql AS $fn$
-- Append to grid_case_changes, per grid, the change from the cases ``minus`` (as they were) to ``plus`` (as they
-- are now): open cases (gis.dispatch.rules.OPEN_STATES, not archived), and the deadlines of those being handled
BEGIN
    INSERT INTO grid_case_changes (grid_id, open_delta, added, removed)
    SELECT grid_id, open_delta, added, removed FROM (
        SELECT c.grid_id,
               coalesce(sum(c.sign) FILTER (WHERE c.archive = 0 AND c.state IN
                   ('reported', 'accepted', 'dispatched', 'suspended', 'handled', 'verified', 'hung')), 0)::int
                   AS open_delta,
               array_agg(c.due_at ORDER BY c.due_at) FILTER (WHERE c.sign = 1 AND c.archive = 0
                   AND c.state IN ('dispatched', 'handled') AND c.due_at IS NOT NULL) AS added,
               array_agg(c.due_at ORDER BY c.due_at) FILTER (WHERE c.sign = -1 AND c.archive = 0
                   AND c.state IN ('dispatched', 'handled') AND c.due_at IS NOT NULL) AS removed
        FROM (SELECT 1 AS sign, * FROM unnest(plus) UNION ALL SELECT -1 AS sign, * FROM unnest(minus)) AS c
        WHERE c.grid_id IS NOT NULL GROUP BY c.grid_id) AS per_grid
    WHERE open_delta <> 0 OR added IS DISTINCT FROM removed;
END
$fn$;

CREATE OR REPLACE FUNCTION grid_cases_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
-- AFTER INSERT / UPDATE / DELETE ON events (and events_live), FOR EACH STATEMENT, with the transition tables
-- new_rows and old_rows: the statement's change to each grid's open cases and deadlines, appended to
-- grid_case_changes (grid_cases_append). Appended, not applied: the intake runs this for every report, many at
-- once, and updating the grids' rows there locked them until commit (two reports' transactions deadlocked on two
-- grids). A reader adds the changes not yet folded in (gis.planning.queries.GRID_OPEN, GRID_OVERDUE);
-- grid_cases_fold() folds them in. Static statements (each names only the transition tables its operation has),
-- so their plans are kept for the session: a dynamic one was planned for every report.
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM grid_cases_append(
            (SELECT array_agg(ROW(grid_id, archive, state, due_at)::grid_case_row) FROM new_rows), NULL);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM grid_cases_append(
            NULL, (SELECT array_agg(ROW(grid_id, archive, state, due_at)::grid_case_row) FROM old_rows));
    ELSE
        PERFORM grid_cases_append(
            (SELECT array_agg(ROW(grid_id, archive, state, due_at)::grid_case_row) FROM new_rows),
            (SELECT array_agg(ROW(grid_id, archive, state, due_at)::grid_case_row) FROM old_rows));
    END IF;
    RETURN NULL;
END
$fn$;

CREATE OR REPLACE FUNCTION grid_cases_fold() RETURNS integer LANGUAGE plpgsql AS $fn$
-- Fold the appended changes into the grids' rows, in one transaction (a reader sees them either appended or
-- folded, never both or neither): the number of changes folded. One folder at a time (an advisory lock; another
-- returns 0 at once); the grids are locked in id order; changes appended meanwhile wait for the next fold.
DECLARE
    folded integer;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('gridpatrol grid_cases_fold')) THEN
        RETURN 0;
    END IF;
    WITH taken AS (DELETE FROM grid_case_changes RETURNING *),
    opens AS (SELECT grid_id, sum(open_delta)::int AS open_delta FROM taken GROUP BY grid_id),
    adds AS (SELECT t.grid_id, array_agg(a ORDER BY a) AS added FROM taken t, unnest(t.added) AS a GROUP BY t.grid_id),
    rems AS (SELECT t.grid_id, array_agg(r ORDER BY r) AS removed FROM taken t, unnest(t.removed) AS r
             GROUP BY t.grid_id),
    per_grid AS (SELECT o.grid_id, o.open_delta, a.added, r.removed
                 FROM opens o LEFT JOIN adds a USING (grid_id) LEFT JOIN rems r USING (grid_id)),
    locked AS MATERIALIZED (
        SELECT g.id FROM grids g WHERE g.id IN (SELECT grid_id FROM per_grid) ORDER BY g.id FOR NO KEY UPDATE),
    applied AS (
        UPDATE grids g SET open_cases = g.open_cases + p.open_delta,
                           open_dues = grid_dues_apply(g.open_dues, p.added, p.removed)
        FROM per_grid p JOIN locked ON locked.id = p.grid_id WHERE g.id = p.grid_id RETURNING 1)
    SELECT (SELECT count(*) FROM taken) INTO folded;
    RETURN folded;
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
        DELETE FROM grid_case_changes;
    ELSE
        UPDATE grids SET households = 0, buildings = 0 WHERE households <> 0 OR buildings <> 0;
    END IF;
    RETURN NULL;
END
$fn$;
