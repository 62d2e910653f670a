"""search ranks by the subject's own vector: ranking reads no out-of-line vector

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27 20:30:00

Ranking every match with ts_rank_cd over search_all read each match's whole vector, most
of them stored out of line: half of a rare search's time at a million tickets
(docs/performance.md, F15; decision 0013). The subject's vector is small, stays in the
row, and PostgreSQL keeps it. Adding a stored generated column rewrites the tickets table
under an exclusive lock, like 0005: about two minutes per million tickets on a 2-core
machine (docs/runbook.md, "Heavy migrations").
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('tickets', sa.Column(
        'search_subject',
        postgresql.TSVECTOR(),
        sa.Computed("setweight(to_tsvector('english'::regconfig, subject), 'A')", persisted=True),
        nullable=False,
    ))  # fmt: skip


def downgrade() -> None:
    op.drop_column('tickets', 'search_subject')
