"""initial domain tables

Revision ID: 0001
Revises: 
Create Date: 2026-11-29 18:30:42.212577
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('annotator',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('cache_entry',
    sa.Column('request_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('model', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('response', sa.JSON(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('request_hash')
    )
    op.create_table('candidate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('model', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('params', sa.JSON(), nullable=True),
    sa.Column('api_base', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('api_key_env', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('input_price_per_mtok', sa.Float(), nullable=True),
    sa.Column('output_price_per_mtok', sa.Float(), nullable=True),
    sa.Column('config_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('candidate', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_candidate_name'), ['name'], unique=True)

    op.create_table('eval_set',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('eval_set', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eval_set_name'), ['name'], unique=True)

    op.create_table('job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('args', sa.JSON(), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('progress', sa.JSON(), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('rubric_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('yaml_text', sa.Text(), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('source_path', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['rubric_version.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('content_hash')
    )
    with op.batch_alter_table('rubric_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rubric_version_name'), ['name'], unique=False)

    op.create_table('eval_set_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('eval_set_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('item_count', sa.Integer(), nullable=False),
    sa.Column('skipped_count', sa.Integer(), nullable=False),
    sa.Column('sampling_report', sa.JSON(), nullable=True),
    sa.Column('diff', sa.JSON(), nullable=True),
    sa.Column('source', sa.JSON(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['eval_set_id'], ['eval_set.id'], ),
    sa.ForeignKeyConstraint(['parent_id'], ['eval_set_version.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('eval_set_id', 'number')
    )
    with op.batch_alter_table('eval_set_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eval_set_version_content_hash'), ['content_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_eval_set_version_eval_set_id'), ['eval_set_id'], unique=False)

    op.create_table('item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('item_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('messages', sa.JSON(), nullable=False),
    sa.Column('reference', sa.Text(), nullable=True),
    sa.Column('meta', sa.JSON(), nullable=True),
    sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['eval_set_version.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('version_id', 'item_key'),
    sa.UniqueConstraint('version_id', 'position')
    )
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_content_hash'), ['content_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_item_version_id'), ['version_id'], unique=False)

    op.create_table('judge_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('rubric_version_id', sa.Integer(), nullable=False),
    sa.Column('judge_model', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('template_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('mode', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('params', sa.JSON(), nullable=True),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('source_file', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('source_file_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['rubric_version_id'], ['rubric_version.id'], ),
    sa.ForeignKeyConstraint(['version_id'], ['eval_set_version.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('judge_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_judge_run_rubric_version_id'), ['rubric_version_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_judge_run_version_id'), ['version_id'], unique=False)

    op.create_table('run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('candidate_id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('source_file', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('source_file_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('config', sa.JSON(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['candidate_id'], ['candidate.id'], ),
    sa.ForeignKeyConstraint(['version_id'], ['eval_set_version.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_candidate_id'), ['candidate_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_run_version_id'), ['version_id'], unique=False)

    op.create_table('output',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('finish_reason', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True),
    sa.Column('prompt_tokens', sa.Integer(), nullable=True),
    sa.Column('completion_tokens', sa.Integer(), nullable=True),
    sa.Column('cost_usd', sa.Float(), nullable=True),
    sa.Column('latency_ms', sa.Float(), nullable=True),
    sa.Column('ttft_ms', sa.Float(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('request_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('cached', sa.Boolean(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.ForeignKeyConstraint(['run_id'], ['run.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'item_id')
    )
    with op.batch_alter_table('output', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_output_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_output_request_hash'), ['request_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_output_run_id'), ['run_id'], unique=False)

    op.create_table('golden_unit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('rubric_version_id', sa.Integer(), nullable=False),
    sa.Column('mode', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('output_id', sa.Integer(), nullable=False),
    sa.Column('output_b_id', sa.Integer(), nullable=True),
    sa.Column('stratum', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('inclusion_prob', sa.Float(), nullable=True),
    sa.Column('selection', sa.JSON(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.ForeignKeyConstraint(['output_b_id'], ['output.id'], ),
    sa.ForeignKeyConstraint(['output_id'], ['output.id'], ),
    sa.ForeignKeyConstraint(['rubric_version_id'], ['rubric_version.id'], ),
    sa.ForeignKeyConstraint(['version_id'], ['eval_set_version.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('golden_unit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_golden_unit_output_id'), ['output_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_golden_unit_rubric_version_id'), ['rubric_version_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_golden_unit_version_id'), ['version_id'], unique=False)

    op.create_table('judgment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('judge_run_id', sa.Integer(), nullable=False),
    sa.Column('criterion_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('output_id', sa.Integer(), nullable=False),
    sa.Column('output_b_id', sa.Integer(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('verdict', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('rationale', sa.Text(), nullable=True),
    sa.Column('unscored_reason', sa.Text(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.Column('version_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('rubric_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('judge_model', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('template_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('latency_ms', sa.Float(), nullable=True),
    sa.Column('prompt_tokens', sa.Integer(), nullable=True),
    sa.Column('completion_tokens', sa.Integer(), nullable=True),
    sa.Column('cost_usd', sa.Float(), nullable=True),
    sa.Column('request_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.ForeignKeyConstraint(['judge_run_id'], ['judge_run.id'], ),
    sa.ForeignKeyConstraint(['output_b_id'], ['output.id'], ),
    sa.ForeignKeyConstraint(['output_id'], ['output.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('judgment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_judgment_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_judgment_judge_run_id'), ['judge_run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_judgment_output_id'), ['output_id'], unique=False)
        batch_op.create_index('ix_judgment_unit', ['judge_run_id', 'criterion_id', 'output_id', 'output_b_id'], unique=False)

    op.create_table('golden_assignment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('golden_unit_id', sa.Integer(), nullable=False),
    sa.Column('annotator_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('swap', sa.Boolean(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['annotator_id'], ['annotator.id'], ),
    sa.ForeignKeyConstraint(['golden_unit_id'], ['golden_unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('golden_unit_id', 'annotator_id')
    )
    with op.batch_alter_table('golden_assignment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_golden_assignment_annotator_id'), ['annotator_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_golden_assignment_golden_unit_id'), ['golden_unit_id'], unique=False)

    op.create_table('label',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('annotator_id', sa.Integer(), nullable=False),
    sa.Column('rubric_version_id', sa.Integer(), nullable=False),
    sa.Column('criterion_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('output_id', sa.Integer(), nullable=False),
    sa.Column('output_b_id', sa.Integer(), nullable=True),
    sa.Column('golden_unit_id', sa.Integer(), nullable=True),
    sa.Column('verdict', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('skipped', sa.Boolean(), nullable=False),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('inclusion_prob', sa.Float(), nullable=True),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('source_file', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('source_file_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['annotator_id'], ['annotator.id'], ),
    sa.ForeignKeyConstraint(['golden_unit_id'], ['golden_unit.id'], ),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.ForeignKeyConstraint(['output_b_id'], ['output.id'], ),
    sa.ForeignKeyConstraint(['output_id'], ['output.id'], ),
    sa.ForeignKeyConstraint(['rubric_version_id'], ['rubric_version.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('label', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_label_annotator_id'), ['annotator_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_label_golden_unit_id'), ['golden_unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_label_output_id'), ['output_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_label_rubric_version_id'), ['rubric_version_id'], unique=False)
        batch_op.create_index('ix_label_unit', ['output_id', 'output_b_id', 'criterion_id', 'annotator_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('label', schema=None) as batch_op:
        batch_op.drop_index('ix_label_unit')
        batch_op.drop_index(batch_op.f('ix_label_rubric_version_id'))
        batch_op.drop_index(batch_op.f('ix_label_output_id'))
        batch_op.drop_index(batch_op.f('ix_label_golden_unit_id'))
        batch_op.drop_index(batch_op.f('ix_label_annotator_id'))

    op.drop_table('label')
    with op.batch_alter_table('golden_assignment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_golden_assignment_golden_unit_id'))
        batch_op.drop_index(batch_op.f('ix_golden_assignment_annotator_id'))

    op.drop_table('golden_assignment')
    with op.batch_alter_table('judgment', schema=None) as batch_op:
        batch_op.drop_index('ix_judgment_unit')
        batch_op.drop_index(batch_op.f('ix_judgment_output_id'))
        batch_op.drop_index(batch_op.f('ix_judgment_judge_run_id'))
        batch_op.drop_index(batch_op.f('ix_judgment_item_id'))

    op.drop_table('judgment')
    with op.batch_alter_table('golden_unit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_golden_unit_version_id'))
        batch_op.drop_index(batch_op.f('ix_golden_unit_rubric_version_id'))
        batch_op.drop_index(batch_op.f('ix_golden_unit_output_id'))

    op.drop_table('golden_unit')
    with op.batch_alter_table('output', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_output_run_id'))
        batch_op.drop_index(batch_op.f('ix_output_request_hash'))
        batch_op.drop_index(batch_op.f('ix_output_item_id'))

    op.drop_table('output')
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_version_id'))
        batch_op.drop_index(batch_op.f('ix_run_candidate_id'))

    op.drop_table('run')
    with op.batch_alter_table('judge_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_judge_run_version_id'))
        batch_op.drop_index(batch_op.f('ix_judge_run_rubric_version_id'))

    op.drop_table('judge_run')
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_version_id'))
        batch_op.drop_index(batch_op.f('ix_item_content_hash'))

    op.drop_table('item')
    with op.batch_alter_table('eval_set_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_eval_set_version_eval_set_id'))
        batch_op.drop_index(batch_op.f('ix_eval_set_version_content_hash'))

    op.drop_table('eval_set_version')
    with op.batch_alter_table('rubric_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rubric_version_name'))

    op.drop_table('rubric_version')
    op.drop_table('job')
    with op.batch_alter_table('eval_set', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_eval_set_name'))

    op.drop_table('eval_set')
    with op.batch_alter_table('candidate', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_candidate_name'))

    op.drop_table('candidate')
    op.drop_table('cache_entry')
    op.drop_table('annotator')
