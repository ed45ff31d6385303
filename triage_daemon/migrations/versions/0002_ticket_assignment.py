"""Ticket assignment: who it went to (specialist or coordinator) and when.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assignee_role", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True))
        # Routing counts each person's open tickets and finds their last assignment.
        batch_op.create_index(batch_op.f("ix_ticket_assignee"), ["assignee"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_assignee"))
        batch_op.drop_column("assigned_at")
        batch_op.drop_column("assignee_role")
