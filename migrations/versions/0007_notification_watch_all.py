"""notification preferences: watch every ticket of the org, or only one's own

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 07:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('notification_preferences', sa.Column('watch_all', sa.Boolean(), server_default='false', nullable=False))


def downgrade() -> None:
    op.drop_column('notification_preferences', 'watch_all')
