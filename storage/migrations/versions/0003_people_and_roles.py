"""people and roles: a role per person (owner / reviewer / annotator), and adjudicated labels

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # people who labeled before roles existed keep labeling: they become annotators
    with op.batch_alter_table('annotator', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
    op.execute("UPDATE annotator SET role = 'annotator'")
    op.create_table('adjudication',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('golden_unit_id', sa.Integer(), nullable=False),
    sa.Column('rubric_version_id', sa.Integer(), nullable=False),
    sa.Column('criterion_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('output_id', sa.Integer(), nullable=False),
    sa.Column('output_b_id', sa.Integer(), nullable=True),
    sa.Column('verdict', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('adjudicator_id', sa.Integer(), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['adjudicator_id'], ['annotator.id'], ),
    sa.ForeignKeyConstraint(['golden_unit_id'], ['golden_unit.id'], ),
    sa.ForeignKeyConstraint(['output_b_id'], ['output.id'], ),
    sa.ForeignKeyConstraint(['output_id'], ['output.id'], ),
    sa.ForeignKeyConstraint(['rubric_version_id'], ['rubric_version.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('adjudication', schema=None) as batch_op:
        batch_op.create_index('ix_adjudication_unit', ['golden_unit_id', 'criterion_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_adjudication_adjudicator_id'), ['adjudicator_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_adjudication_rubric_version_id'), ['rubric_version_id'], unique=False)


def downgrade() -> None:
    op.drop_table('adjudication')
    with op.batch_alter_table('annotator', schema=None) as batch_op:
        batch_op.drop_column('role')
