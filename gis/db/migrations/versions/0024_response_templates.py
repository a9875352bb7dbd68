"""Response templates: the texts centre staff pick from at a step (the reject reasons, the note to the reporter).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05

A template belongs to a step (``reject``, ``close``, …) and, optionally, to one category (none: every category);
an admin edits them. The defaults below are gridpatrol's, rows a city changes.
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

DEFAULTS = [
    ("reject", "不属于受理范围 Not a matter this service handles"),
    ("reject", "信息不全，无法核实 Too little to go on: the report cannot be checked"),
    ("reject", "重复上报 Reported already"),
    ("reject", "现场核实不存在 Checked on site: no such problem"),
    ("close", "您反映的问题已处理完毕，感谢您的监督。 The problem you reported has been dealt with: thank you."),
    ("close", "经核查，问题已整改到位。 Checked: the problem is put right."),
    ("return", "经核实，该事项不属于本部门职责。 Checked: this is not this department's duty."),
    ("hang", "需立项解决，纳入年度计划。 Needs a project: put in the year's plan."),
    ("supervise", "请于期限内办结并反馈。 Close it by the deadline and report back."),
]


def upgrade() -> None:
    op.execute("""
        CREATE TABLE response_templates (
            id serial PRIMARY KEY,
            step text NOT NULL,
            category_code varchar(16) REFERENCES categories (code) ON DELETE CASCADE,
            body text NOT NULL,
            updated_by text NOT NULL DEFAULT 'gridpatrol',
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT response_templates_body_check CHECK (length(body) BETWEEN 1 AND 500)
        )""")
    op.execute("CREATE INDEX response_templates_step_idx ON response_templates (step, category_code)")
    values = ", ".join(f"('{step}', '{body.replace(chr(39), chr(39) * 2)}')" for step, body in DEFAULTS)
    op.execute(f"INSERT INTO response_templates (step, body) VALUES {values}")


def downgrade() -> None:
    op.execute("DROP TABLE response_templates")
