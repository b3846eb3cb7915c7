"""The stored rows reports compute from, as arrays: judgments of a judge run, outputs of an eval set version's
runs, human labels on a rubric version. Each is read once per report (`Reads` keeps them) and serves both the
analysis and the report's manifest, whose digests (format 3) cover exactly these columns.

Free text that no number depends on is not read: a judgment's rationale, an output's text (only its length, which
the verbosity diagnostics use), an error's wording (only whether there is one), a label's comment.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import func
from sqlmodel import Session, select

from storage.columns import ColumnSet, read_columns
from storage.models import Item, Judgment, Label, Output, Run

Reads = dict  # (what, key) → ColumnSet, for one report


def _judgment_columns() -> dict[str, tuple[str, Any]]:
    t = Judgment.__table__
    return {"criterion_id": ("t", t.c.criterion_id), "output_id": ("i", t.c.output_id), "status": ("t", t.c.status),
            "verdict": ("t", t.c.verdict), "score": ("f", t.c.score)}


def _judgment_sparse() -> dict[str, tuple[str, Any]]:  # pairwise only: NULL on pointwise judgments
    t = Judgment.__table__
    return {"output_b_id": ("i", t.c.output_b_id), "details": ("t", t.c.details)}


def _output_columns() -> dict[str, tuple[str, Any]]:
    t = Output.__table__
    return {"item_id": ("i", t.c.item_id), "length": ("i", func.length(t.c.text)), "cost_usd": ("f", t.c.cost_usd),
            "latency_ms": ("f", t.c.latency_ms)}


def _output_sparse() -> dict[str, tuple[str, Any]]:
    return {"error": ("b", Output.__table__.c.error.is_not(None))}


def _label_columns() -> dict[str, tuple[str, Any]]:
    t = Label.__table__
    return {"annotator_id": ("i", t.c.annotator_id), "criterion_id": ("t", t.c.criterion_id),
            "item_id": ("i", t.c.item_id), "output_id": ("i", t.c.output_id), "output_b_id": ("i", t.c.output_b_id),
            "golden_unit_id": ("i", t.c.golden_unit_id), "verdict": ("t", t.c.verdict), "score": ("f", t.c.score),
            "skipped": ("b", t.c.skipped), "flagged": ("b", t.c.flagged), "inclusion_prob": ("f", t.c.inclusion_prob),
            "source": ("t", t.c.source)}


# what each format-3 digest covers, in words (the manifest and the README say the same)
COLUMNS_IN_WORDS = {
    "judgments": "judge run, criterion, output(s), status, verdict, score and details (both orders of a pair)",
    "outputs": "run, item, the text's length, whether it failed, cost and latency",
    "labels": "annotator, rubric version, criterion, item, output(s), golden unit, verdict, score, skipped, flagged, "
              "inclusion probability and source",
}


def judgments_of(session: Session, judge_runs: list[int], reads: Reads | None = None) -> ColumnSet:
    """Every judgment of these judge runs, in id order (each run read once per `reads`)."""
    reads = {} if reads is None else reads
    t = Judgment.__table__
    parts = []
    for run in sorted(set(judge_runs)):
        key = ("judgments", run)
        if key not in reads:  # by run: the index on judge_run_id gives id order without a sort
            reads[key] = read_columns(session, t, _judgment_columns(), t.c.judge_run_id == run,
                                      constants={"judge_run_id": run}, sparse=_judgment_sparse())
        parts.append(reads[key])
    if not parts:
        return read_columns(session, t, _judgment_columns(), t.c.id < 0, constants={"judge_run_id": 0},
                            sparse=_judgment_sparse())
    return parts[0] if len(parts) == 1 else ColumnSet.concat(parts)


def outputs_of(session: Session, version_id: int, reads: Reads | None = None) -> ColumnSet:
    """Every output of the runs on this eval set version, in id order."""
    reads = {} if reads is None else reads
    key = ("outputs", version_id)
    if key not in reads:
        t = Output.__table__
        runs = sorted(session.exec(select(Run.id).where(Run.version_id == version_id)).all())
        parts = [read_columns(session, t, _output_columns(), t.c.run_id == r, constants={"run_id": r},
                              sparse=_output_sparse()) for r in runs]
        reads[key] = (ColumnSet.concat(parts) if len(parts) > 1 else parts[0] if parts else
                      read_columns(session, t, _output_columns(), t.c.id < 0, constants={"run_id": 0},
                                   sparse=_output_sparse()))
    return reads[key]


def labels_of(session: Session, version_id: int, rubric_version_id: int, reads: Reads | None = None) -> ColumnSet:
    """Every label on this rubric version for outputs of this eval set version, in id order."""
    reads = {} if reads is None else reads
    key = ("labels", version_id, rubric_version_id)
    if key not in reads:
        t = Label.__table__
        items = select(Item.id).where(Item.version_id == version_id)  # a rubric may serve many versions
        labels = read_columns(session, t, _label_columns(),
                              (t.c.rubric_version_id == rubric_version_id) & t.c.item_id.in_(items),
                              constants={"rubric_version_id": rubric_version_id})
        reads[key] = labels.take(np.isin(labels["output_id"], outputs_of(session, version_id, reads).ids))
    return reads[key]


def judged_outputs(judgments: ColumnSet, outputs: ColumnSet) -> ColumnSet:
    """The outputs of the candidate runs these judgments judged (every output of such a run, judged or not)."""
    judged = np.zeros(len(outputs), bool)
    for col in (judgments["output_id"], judgments["output_b_id"]):
        at = np.searchsorted(outputs.ids, col)
        ok = (at < outputs.ids.size) & (outputs.ids[np.minimum(at, max(outputs.ids.size - 1, 0))] == col)
        judged[at[ok]] = True
    runs = np.unique(outputs["run_id"][judged])
    return outputs.take(np.isin(outputs["run_id"], runs))
