"""SQL text of the dispatch domain that other stores read too (oversight's KPIs read the events).

Plain strings, no driver: each store runs them on its own connection."""

from __future__ import annotations

EVENT_FROM = """  -- events with the names their codes and assignee go by (the view event_rows reads the same)
    FROM events e JOIN categories cat ON cat.code = e.category_code
    LEFT JOIN admin_units cu ON cu.id = e.community_id LEFT JOIN admin_units su ON su.id = e.street_id
    LEFT JOIN staff st ON st.id = e.assignee_staff_id"""

EVENT_PLACE = ("SELECT e.city_id, coalesce(e.grid_code, su.code), e.department_code, e.level, e.queue, e.assisting "
               "FROM events e LEFT JOIN admin_units su ON su.id = e.street_id")
"""Where events lie, as a jurisdiction check reads them (``gis.access.scope`` / ``api.jurisdiction.event_visible``):
``(city id, grid or street code, department, level, queue, assisting departments)``; the caller adds its WHERE."""


OPEN_STATES_SQL = "('reported', 'accepted', 'dispatched', 'suspended', 'handled', 'verified', 'hung')"
"""The open states (``gis.dispatch.rules.OPEN_STATES``) as an SQL list, for other domains' queries."""

OVERDUE_SQL = "e.state IN ('dispatched', 'handled') AND e.due_at < now()"
"""An event (``events e``) past its handling deadline now, for other domains' queries."""
