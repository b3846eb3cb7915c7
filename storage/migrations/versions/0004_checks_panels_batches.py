"""provider batches (checks and panels need no new table: checks are judgments, a panel is a judge run)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 02:50:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('provider_batch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('judge_run_id', sa.Integer(), nullable=True),
    sa.Column('model', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('api_base', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('batch_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('input_file_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('output_file_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('error_file_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('request_count', sa.Integer(), nullable=False),
    sa.Column('requests', sa.JSON(), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('completed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['judge_run_id'], ['judge_run.id'], ),
    sa.ForeignKeyConstraint(['run_id'], ['run.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('provider_batch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provider_batch_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_provider_batch_judge_run_id'), ['judge_run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_provider_batch_run_id'), ['run_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('provider_batch', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_provider_batch_run_id'))
        batch_op.drop_index(batch_op.f('ix_provider_batch_judge_run_id'))
        batch_op.drop_index(batch_op.f('ix_provider_batch_batch_id'))
    op.drop_table('provider_batch')
