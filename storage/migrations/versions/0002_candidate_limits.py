"""candidate limits: concurrency, rpm, tpm, timeout_s and max_attempts stored with the candidate

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 02:50:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

COLUMNS = (
    ('concurrency', sa.Integer()),
    ('rpm', sa.Integer()),
    ('tpm', sa.Integer()),
    ('timeout_s', sa.Float()),
    ('max_attempts', sa.Integer()),
)


def upgrade() -> None:
    # Nullable: a candidate stored before limits were kept runs with the defaults, as it did then.
    with op.batch_alter_table('candidate', schema=None) as batch_op:
        for name, type_ in COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('candidate', schema=None) as batch_op:
        for name, _ in reversed(COLUMNS):
            batch_op.drop_column(name)
