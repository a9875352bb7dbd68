-- Migration 0023's frozen copy of the event_rows view (the current one: gis/dispatch/sql/event_rows.sql): the stage
-- clocks, the supervision and the assisting departments at its end.
CREATE OR REPLACE VIEW event_rows AS
SELECT e.id, e.state, e.category_code AS category, cat.name AS category_name, cat.name_en AS category_name_en,
    e.priority, e.source, e.description, e.photos, ST_X(e.geom) AS lon, ST_Y(e.geom) AS lat, e.input_crs,
    e.input_lon, e.input_lat, e.grid_code AS grid, cu.code AS community, su.code AS street, e.queue,
    e.assignee_staff_id AS assignee_id, st.name AS assignee_name, st.role AS assignee_role,
    e.department_code AS department, e.assignment_rule, e.flagged, e.duplicate_of, e.level, e.reported_at,
    e.dispatched_at, e.due_at, e.closed_at, e.closed_on_time, e.missed_deadline, e.reworks, e.extensions,
    e.escalations, e.suspended_seconds, e.evaluation, e.updated_at, e.reporter_contact,
    e.accept_due_at, e.accepted_at, e.accept_late, e.dispatch_due_at, e.dispatch_late,
    e.supervised_at, e.supervision_due_at, e.supervision_unit, e.supervision_note, e.assisting
FROM events e JOIN categories cat ON cat.code = e.category_code
LEFT JOIN admin_units cu ON cu.id = e.community_id LEFT JOIN admin_units su ON su.id = e.street_id
LEFT JOIN staff st ON st.id = e.assignee_staff_id;
