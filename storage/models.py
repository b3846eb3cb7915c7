"""Tables for the whole domain (see DESIGN.md for the words).

Frozen versions, items, judgments and labels are never updated in place: a change is a new row.
Provenance (hashes of the version, rubric and template, judge model, annotator, import file) is kept on
the row that needs it, so an exported row can be traced without joins.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _json(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=nullable))


def _text(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(Text, nullable=nullable))


# --- eval sets ---------------------------------------------------------------------------------------------


class EvalSet(SQLModel, table=True):
    __tablename__ = "eval_set"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    description: Optional[str] = _text()
    created_at: datetime = Field(default_factory=utcnow)


class EvalSetVersion(SQLModel, table=True):
    """A frozen version: immutable, identified by the SHA-256 of its canonical JSON."""

    __tablename__ = "eval_set_version"
    __table_args__ = (UniqueConstraint("eval_set_id", "number"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    eval_set_id: int = Field(foreign_key="eval_set.id", index=True)
    number: int  # 1, 2, … within the set; `name@number` on the command line
    content_hash: str = Field(index=True, max_length=64)
    parent_id: Optional[int] = Field(default=None, foreign_key="eval_set_version.id")
    item_count: int = 0
    skipped_count: int = 0  # malformed log records skipped under --on-error skip
    sampling_report: Optional[dict] = _json()
    diff: Optional[dict] = _json()  # against the parent: added / removed / replaced item keys
    source: Optional[dict] = _json()  # files read, reader, options, file hashes
    created_at: datetime = Field(default_factory=utcnow)


class Item(SQLModel, table=True):
    """One prompt of a version: the conversation up to its last user turn."""

    __tablename__ = "item"
    __table_args__ = (UniqueConstraint("version_id", "position"), UniqueConstraint("version_id", "item_key"))
    id: Optional[int] = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="eval_set_version.id", index=True)
    position: int
    item_key: str = Field(max_length=200)  # stable id from the log record (or derived from its hash)
    messages: list = Field(sa_column=Column(JSON, nullable=False))
    reference: Optional[str] = _text()
    meta: Optional[dict] = _json()
    content_hash: str = Field(index=True, max_length=64)


# --- candidates, runs, outputs -------------------------------------------------------------------------------


class Candidate(SQLModel, table=True):
    """A model configuration. The API key itself is never stored: only the name of its environment variable."""

    __tablename__ = "candidate"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    model: str = Field(max_length=300)  # a LiteLLM model string
    params: Optional[dict] = _json()
    api_base: Optional[str] = Field(default=None, max_length=500)
    api_key_env: Optional[str] = Field(default=None, max_length=200)
    input_price_per_mtok: Optional[float] = None
    output_price_per_mtok: Optional[float] = None
    # Limits from candidates.yaml, used by `ownbench run --candidate NAME` when the file is not at hand
    # (None: the default). Not part of config_hash: they change how fast outputs come, not what they are.
    concurrency: Optional[int] = None
    rpm: Optional[int] = None
    tpm: Optional[int] = None
    timeout_s: Optional[float] = None
    max_attempts: Optional[int] = None
    config_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class Run(SQLModel, table=True):
    """candidate × eval set version → outputs, made through the gateway or imported from a file."""

    __tablename__ = "run"
    id: Optional[int] = Field(default=None, primary_key=True)
    candidate_id: int = Field(foreign_key="candidate.id", index=True)
    version_id: int = Field(foreign_key="eval_set_version.id", index=True)
    source: str = Field(default="gateway", max_length=20)  # gateway | imported
    source_file: Optional[str] = Field(default=None, max_length=500)
    source_file_hash: Optional[str] = Field(default=None, max_length=64)
    config: Optional[dict] = _json()  # the candidate's configuration as it was when the run started
    status: str = Field(default="running", max_length=20)  # running | done | stopped | failed | cancelled
    status_reason: Optional[str] = _text()
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: Optional[datetime] = None


class Output(SQLModel, table=True):
    """One candidate answer to one item; `error` set when no answer could be had (the reason, in words)."""

    __tablename__ = "output"
    __table_args__ = (UniqueConstraint("run_id", "item_id"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", index=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    text: Optional[str] = _text()
    finish_reason: Optional[str] = Field(default=None, max_length=50)
    prompt_tokens: Optional[int] = None
    completion_tokens: Optional[int] = None
    cost_usd: Optional[float] = None
    latency_ms: Optional[float] = None
    ttft_ms: Optional[float] = None
    error: Optional[str] = _text()
    attempts: int = 0
    request_hash: Optional[str] = Field(default=None, max_length=64, index=True)
    cached: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class CacheEntry(SQLModel, table=True):
    """Provider responses keyed by the SHA-256 of the canonical request: a re-run pays nothing twice."""

    __tablename__ = "cache_entry"
    request_hash: str = Field(primary_key=True, max_length=64)
    model: str = Field(max_length=300)
    response: dict = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


# --- rubrics, judge runs, judgments --------------------------------------------------------------------------


class RubricVersion(SQLModel, table=True):
    __tablename__ = "rubric_version"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(index=True, max_length=200)
    content_hash: str = Field(unique=True, max_length=64)
    yaml_text: str = Field(sa_column=Column(Text, nullable=False))
    spec: dict = Field(sa_column=Column(JSON, nullable=False))  # the validated rubric as data
    parent_id: Optional[int] = Field(default=None, foreign_key="rubric_version.id")
    source_path: Optional[str] = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)


class JudgeRun(SQLModel, table=True):
    __tablename__ = "judge_run"
    id: Optional[int] = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="eval_set_version.id", index=True)
    rubric_version_id: int = Field(foreign_key="rubric_version.id", index=True)
    judge_model: str = Field(max_length=300)  # a LiteLLM model string, or the judge's name for an import
    template_hash: Optional[str] = Field(default=None, max_length=64)
    mode: str = Field(default="pointwise", max_length=20)  # pointwise | pairwise
    params: Optional[dict] = _json()
    source: str = Field(default="judge", max_length=20)  # judge | imported
    source_file: Optional[str] = Field(default=None, max_length=500)
    source_file_hash: Optional[str] = Field(default=None, max_length=64)
    status: str = Field(default="running", max_length=20)
    status_reason: Optional[str] = _text()
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: Optional[datetime] = None


class Judgment(SQLModel, table=True):
    """A judge verdict on one output (pointwise) or one pair (pairwise), one criterion. Append-only.

    `status` is `scored` or `unscored`; an unscored judgment has no verdict and says why in `unscored_reason`.
    """

    __tablename__ = "judgment"
    __table_args__ = (Index("ix_judgment_unit", "judge_run_id", "criterion_id", "output_id", "output_b_id"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    judge_run_id: int = Field(foreign_key="judge_run.id", index=True)
    criterion_id: str = Field(max_length=100)
    item_id: int = Field(foreign_key="item.id", index=True)
    output_id: int = Field(foreign_key="output.id", index=True)  # pairwise: the "A" output
    output_b_id: Optional[int] = Field(default=None, foreign_key="output.id")  # pairwise: the "B" output
    status: str = Field(default="scored", max_length=20)
    verdict: Optional[str] = Field(default=None, max_length=100)  # pass/fail, a level, a label, A/B/tie
    score: Optional[float] = None  # the verdict on a numeric scale (pass=1, level, A-win=1 / tie=0.5)
    rationale: Optional[str] = _text()
    unscored_reason: Optional[str] = _text()
    details: Optional[dict] = _json()  # pairwise: both orders' verdicts; retries; raw refusal text
    version_hash: str = Field(max_length=64)
    rubric_hash: str = Field(max_length=64)
    judge_model: str = Field(max_length=300)
    template_hash: Optional[str] = Field(default=None, max_length=64)
    latency_ms: Optional[float] = None
    prompt_tokens: Optional[int] = None
    completion_tokens: Optional[int] = None
    cost_usd: Optional[float] = None
    request_hash: Optional[str] = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


# --- humans ----------------------------------------------------------------------------------------------------


ROLES = ("owner", "reviewer", "annotator")


class Annotator(SQLModel, table=True):
    """A person: the identity they sign in with (an e-mail address under OIDC) and their role.

    `role` is owner, reviewer or annotator; None once removed (their labels stay, attributed to them).
    """

    __tablename__ = "annotator"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    role: Optional[str] = Field(default="annotator", max_length=20)
    created_at: datetime = Field(default_factory=utcnow)


class GoldenUnit(SQLModel, table=True):
    """A unit drawn into the golden subset, with the probability it had of being drawn (for calibration)."""

    __tablename__ = "golden_unit"
    id: Optional[int] = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="eval_set_version.id", index=True)
    rubric_version_id: int = Field(foreign_key="rubric_version.id", index=True)
    mode: str = Field(default="pointwise", max_length=20)
    item_id: int = Field(foreign_key="item.id")
    output_id: int = Field(foreign_key="output.id", index=True)
    output_b_id: Optional[int] = Field(default=None, foreign_key="output.id")
    stratum: Optional[str] = Field(default=None, max_length=200)
    inclusion_prob: Optional[float] = None  # None: not drawn at random, so left out of calibration
    selection: Optional[dict] = _json()  # seed, strategy, batch: how it was drawn
    created_at: datetime = Field(default_factory=utcnow)


class GoldenAssignment(SQLModel, table=True):
    """Which annotator should label which golden unit; k annotators per unit give human–human agreement."""

    __tablename__ = "golden_assignment"
    __table_args__ = (UniqueConstraint("golden_unit_id", "annotator_id"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    golden_unit_id: int = Field(foreign_key="golden_unit.id", index=True)
    annotator_id: int = Field(foreign_key="annotator.id", index=True)
    position: int = 0  # order in the annotator's queue
    swap: bool = False  # pairwise: show B first to this annotator
    created_at: datetime = Field(default_factory=utcnow)


class Label(SQLModel, table=True):
    """A human verdict on the same unit as a judgment. Append-only: re-labeling adds a row, the latest counts."""

    __tablename__ = "label"
    __table_args__ = (Index("ix_label_unit", "output_id", "output_b_id", "criterion_id", "annotator_id"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    annotator_id: int = Field(foreign_key="annotator.id", index=True)
    rubric_version_id: int = Field(foreign_key="rubric_version.id", index=True)
    criterion_id: str = Field(max_length=100)
    item_id: int = Field(foreign_key="item.id")
    output_id: int = Field(foreign_key="output.id", index=True)
    output_b_id: Optional[int] = Field(default=None, foreign_key="output.id")
    golden_unit_id: Optional[int] = Field(default=None, foreign_key="golden_unit.id", index=True)
    verdict: Optional[str] = Field(default=None, max_length=100)  # None when skipped
    score: Optional[float] = None
    skipped: bool = False
    flagged: bool = False
    comment: Optional[str] = _text()
    inclusion_prob: Optional[float] = None  # for imported labels that declare how their units were drawn
    source: str = Field(default="app", max_length=20)  # app | imported
    source_file: Optional[str] = Field(default=None, max_length=500)
    source_file_hash: Optional[str] = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class Adjudication(SQLModel, table=True):
    """A reviewer's verdict on a golden unit × criterion where annotators disagreed. Append-only, kept apart from
    the annotators' labels; where one exists, calibration uses the latest adjudication instead of their mean.
    `labels` records the annotators' latest labels it resolved (label id, annotator, verdict) as provenance."""

    __tablename__ = "adjudication"
    __table_args__ = (Index("ix_adjudication_unit", "golden_unit_id", "criterion_id"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    golden_unit_id: int = Field(foreign_key="golden_unit.id")
    rubric_version_id: int = Field(foreign_key="rubric_version.id", index=True)
    criterion_id: str = Field(max_length=100)
    output_id: int = Field(foreign_key="output.id")
    output_b_id: Optional[int] = Field(default=None, foreign_key="output.id")
    verdict: str = Field(max_length=100)
    score: Optional[float] = None
    note: str = Field(sa_column=Column(Text, nullable=False))
    adjudicator_id: int = Field(foreign_key="annotator.id", index=True)
    labels: list = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class Job(SQLModel, table=True):
    """A background run (candidate or judge) started from the app or the CLI; its state survives reloads."""

    __tablename__ = "job"
    id: Optional[int] = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)  # run | judge
    args: dict = Field(sa_column=Column(JSON, nullable=False))
    pid: Optional[int] = None
    status: str = Field(default="queued", max_length=20)  # queued | running | done | failed | cancelled
    progress: Optional[dict] = _json()  # done, total, errors, spend
    message: Optional[str] = _text()
    cancel_requested: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ProviderBatch(SQLModel, table=True):
    """A request file submitted to a provider's Batch API for a run or a judge run.

    Recorded before the provider is asked to start it, so that a later invocation polls the same batch instead of
    submitting again; `requests` maps each line's custom id to the request hash its answer is cached under."""

    __tablename__ = "provider_batch"
    id: Optional[int] = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)  # run | judge
    run_id: Optional[int] = Field(default=None, foreign_key="run.id", index=True)
    judge_run_id: Optional[int] = Field(default=None, foreign_key="judge_run.id", index=True)
    model: str = Field(max_length=300)
    api_base: Optional[str] = Field(default=None, max_length=500)
    batch_id: Optional[str] = Field(default=None, max_length=200, index=True)  # the provider's id
    input_file_id: Optional[str] = Field(default=None, max_length=200)
    output_file_id: Optional[str] = Field(default=None, max_length=200)
    error_file_id: Optional[str] = Field(default=None, max_length=200)
    status: str = Field(default="submitting", max_length=20)  # submitting | the provider's status | ingested
    request_count: int = 0
    requests: dict = Field(sa_column=Column(JSON, nullable=False))  # custom id → request hash
    counts: Optional[dict] = _json()  # the provider's request_counts (total, completed, failed)
    error: Optional[str] = _text()
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    completed_at: Optional[datetime] = None
