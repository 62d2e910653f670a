"""assignee queue index carries priority and tags: an agent's own views stay index-only

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27 19:05:00

A saved view such as "my urgent" (assignee, open, priority) had to read the heap for
every open ticket of the agent, or scan the org's whole open queue: 7-9 ms at a million
tickets on each full list page (docs/performance.md, F14). The index is rebuilt
concurrently under a new name and swapped in, so writes never wait for the build.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = 'ix_tickets_org_assignee_status_updated'
COLUMNS = '(org_id, assignee_id, status, updated_at, number)'


def _swap(include: str) -> None:
    with op.get_context().autocommit_block():
        op.execute(f'DROP INDEX CONCURRENTLY IF EXISTS {NAME}_new')
        op.execute(f'CREATE INDEX CONCURRENTLY {NAME}_new ON tickets {COLUMNS}{include}')
        op.execute(f'DROP INDEX CONCURRENTLY IF EXISTS {NAME}')
        op.execute(f'ALTER INDEX {NAME}_new RENAME TO {NAME}')


def upgrade() -> None:
    _swap(' INCLUDE (priority, tags)')


def downgrade() -> None:
    _swap('')
