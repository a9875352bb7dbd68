"""Deadlines in working time (China's holidays, a city's days off, a clock per stage), supervision, joint handling.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05

Deadlines were wall-clock hours. Chinese practice counts working hours and days (DOMAIN.md), with the public
holidays and make-up working days (调休) the State Council announces each year:

* ``calendar_days``: the exceptions to "Monday to Friday": China's (``city_id`` NULL, loaded here from the
  chinesecalendar package) and each city's own days off or extra working days;
* ``city_settings.work_starts`` / ``work_ends``: the periods of a working day (default 08:30–12:00, 13:30–17:30);
* ``categories.clock`` (``working`` or ``wall``: safety and police matters run on the clock, as do urgent reports
  of any category), ``accept_hours`` (立案: 1 working hour after the report) and ``dispatch_hours`` (派遣: 1 after
  the acceptance);
* ``events.accept_due_at`` / ``accepted_at`` / ``accept_late`` and ``dispatch_due_at`` / ``dispatch_late``: the
  stage clocks before handling (whose deadline stays ``due_at``), so the figures can say which stage was late;
* the functions ``gridpatrol_deadline`` and ``gridpatrol_working_hours`` (frozen copy ``0023_worktime.sql``), and
  intake using them (``0023_intake_batch.sql``).

Supervision (督办): ``events.supervised_at`` / ``supervision_due_at`` / ``supervision_unit`` / ``supervision_note``
(the latest ``supervise`` step; the history keeps every one). Joint handling (主办/协办): ``events.assisting``, the
departments assisting the lead one (``department_code``). The view ``event_rows`` shows the new columns at its end
(frozen copy ``0023_event_rows.sql``).

Events stored before keep their wall-clock deadlines.
"""

from __future__ import annotations

from pathlib import Path

import chinese_calendar
from alembic import op

from gis.db.migrate import revision_module

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_HERE = Path(__file__).parent


def upgrade() -> None:
    op.execute("""
        CREATE TABLE calendar_days (
            id serial PRIMARY KEY,
            city_id integer REFERENCES admin_units (id) ON DELETE CASCADE,
            day date NOT NULL,
            working boolean NOT NULL,
            name text NOT NULL DEFAULT '',
            source text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )""")
    op.execute("CREATE UNIQUE INDEX calendar_days_key ON calendar_days (coalesce(city_id, 0), day)")
    op.execute("CREATE INDEX calendar_days_day_idx ON calendar_days (day)")
    source = f"chinesecalendar {chinese_calendar.__version__}"
    rows = [(d, False, str(n)) for d, n in chinese_calendar.holidays.items()]
    rows += [(d, True, f"{n} (调休 make-up working day)") for d, n in chinese_calendar.workdays.items()]
    values = ", ".join(f"('{d.isoformat()}', {str(w).lower()}, '{n.replace(chr(39), chr(39) * 2)}', '{source}')"
                       for d, w, n in sorted(rows))
    op.execute(f"INSERT INTO calendar_days (day, working, name, source) VALUES {values}")
    op.execute("""
        ALTER TABLE city_settings
            ADD COLUMN work_starts time[] NOT NULL DEFAULT '{08:30,13:30}',
            ADD COLUMN work_ends time[] NOT NULL DEFAULT '{12:00,17:30}',
            ADD CONSTRAINT city_settings_work_hours_check
                CHECK (cardinality(work_starts) BETWEEN 1 AND 4 AND cardinality(work_starts) = cardinality(work_ends))
        """)
    op.execute("""
        ALTER TABLE categories
            ADD COLUMN clock text NOT NULL DEFAULT 'working',
            ADD COLUMN accept_hours double precision NOT NULL DEFAULT 1,
            ADD COLUMN dispatch_hours double precision NOT NULL DEFAULT 1,
            ADD CONSTRAINT categories_clock_check CHECK (clock IN ('working', 'wall')),
            ADD CONSTRAINT categories_stage_hours_check CHECK (accept_hours > 0 AND dispatch_hours > 0)""")
    # safety and police matters run on the clock (DOMAIN.md)
    op.execute("UPDATE categories SET clock = 'wall' WHERE route = 'police' OR department_code IN ('emergency', "
               "'police')")
    op.execute("""
        ALTER TABLE events
            ADD COLUMN accept_due_at timestamptz,
            ADD COLUMN accepted_at timestamptz,
            ADD COLUMN accept_late boolean,
            ADD COLUMN dispatch_due_at timestamptz,
            ADD COLUMN dispatch_late boolean,
            ADD COLUMN supervised_at timestamptz,
            ADD COLUMN supervision_due_at timestamptz,
            ADD COLUMN supervision_unit text,
            ADD COLUMN supervision_note text,
            ADD COLUMN assisting text[] NOT NULL DEFAULT '{}'""")
    op.execute((_HERE / "0023_event_rows.sql").read_text())
    op.execute((_HERE / "0023_worktime.sql").read_text())
    op.execute((_HERE / "0023_intake_batch.sql").read_text())


def downgrade() -> None:
    op.execute("DROP FUNCTION gridpatrol_intake_batch(jsonb, boolean, float8, float8, text, interval, float8)")
    op.execute("DROP FUNCTION gridpatrol_intake_one(text, text, text, text, text, text, text, jsonb, text, float8, "
               "float8, float8, float8, boolean, float8, float8, text, timestamptz, interval, float8, float8)")
    op.execute("DROP VIEW event_rows")
    op.execute("DROP FUNCTION gridpatrol_working_hours(int, timestamptz, timestamptz, boolean)")
    op.execute("DROP FUNCTION gridpatrol_deadline(int, timestamptz, float8, boolean)")
    op.execute("DROP FUNCTION gridpatrol_work_days(int, date, date)")
    op.execute("ALTER TABLE events DROP COLUMN accept_due_at, DROP COLUMN accepted_at, DROP COLUMN accept_late, "
               "DROP COLUMN dispatch_due_at, DROP COLUMN dispatch_late, DROP COLUMN supervised_at, "
               "DROP COLUMN supervision_due_at, DROP COLUMN supervision_unit, DROP COLUMN supervision_note, "
               "DROP COLUMN assisting")
    op.execute(revision_module("0005_intake_function.py").EVENT_ROWS)
    op.execute((_HERE / "0017_intake_batch.sql").read_text())
    op.execute("ALTER TABLE categories DROP COLUMN clock, DROP COLUMN accept_hours, DROP COLUMN dispatch_hours")
    op.execute("ALTER TABLE city_settings DROP COLUMN work_starts, DROP COLUMN work_ends")
    op.execute("DROP TABLE calendar_days")
