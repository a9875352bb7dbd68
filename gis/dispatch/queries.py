"""SQL text of the dispatch domain that other stores read too (oversight's KPIs read the events).

Plain strings, no driver: each store runs them on its own connection."""

from __future__ import annotations

EVENT_FROM = """  -- events with the names their codes and assignee go by (the view event_rows reads the same)
    FROM events e JOIN categories cat ON cat.code = e.category_code
    LEFT JOIN admin_units cu ON cu.id = e.community_id LEFT JOIN admin_units su ON su.id = e.street_id
    LEFT JOIN staff st ON st.id = e.assignee_staff_id"""
