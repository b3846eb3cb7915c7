"""Stored judgments and labels of one eval set version × rubric version, as arrays for `stats`.

Rules applied here, once, so every report counts the same way:
- a candidate's population is the outputs its latest run has judgments for (any status) in the judge run;
- per (output, criterion) the latest judgment counts; an unscored one is NaN and counted, never a score;
- per annotator × unit × criterion the latest label counts; skipped labels are not verdicts;
- a label counts for calibration only if it was made on an assigned golden unit (the draw's probabilities are
  known) or carries an inclusion probability (an import that declared how its units were drawn); labels made
  outside an assignment still count for agreement, and are flagged and counted;
- where a reviewer adjudicated a drawn unit × criterion, calibration uses the latest adjudicated label instead of
  the annotators' mean; agreement still compares the annotators' own labels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlmodel import Session, func, select

from storage.errors import InputError
from storage.models import (
    Adjudication,
    Annotator,
    Candidate,
    GoldenAssignment,
    GoldenUnit,
    JudgeRun,
    Judgment,
    Label,
    Output,
    RubricVersion,
    Run,
)


def criteria_of(rubric: RubricVersion) -> list[dict[str, Any]]:
    crits = list((rubric.spec or {}).get("criteria") or [])
    if not crits:
        raise InputError(f"rubric {rubric.name!r} has no criteria", where=f"rubric version {rubric.id}")
    return crits


def domain_of(criterion: dict[str, Any]) -> tuple[list[float], str]:
    """Numeric codes a criterion's verdicts take, and Krippendorff's level of measurement for it."""
    kind = criterion.get("type")
    if kind == "binary":
        return [0.0, 1.0], "nominal"
    if kind == "ordinal":
        return [float(v) for v in range(int(criterion["min"]), int(criterion["max"]) + 1)], "ordinal"
    return [float(i) for i in range(len(criterion.get("labels") or []))], "nominal"


def code_of(criterion: dict[str, Any], verdict: str | None, score: float | None) -> float:
    """A stored verdict → its numeric code (NaN when there is none)."""
    if verdict is None:
        return float("nan")
    if criterion.get("type") == "categorical":
        labels = list(criterion.get("labels") or [])
        return float(labels.index(verdict)) if verdict in labels else float("nan")
    if score is not None:
        return float(score)
    if criterion.get("type") == "binary":
        return {"pass": 1.0, "fail": 0.0}.get(verdict, float("nan"))
    try:
        return float(int(verdict))
    except ValueError:
        return float("nan")


def latest_judge_run(session: Session, version_id: int, rubric_version_id: int, mode: str = "pointwise") -> JudgeRun:
    run = session.exec(
        select(JudgeRun).where(JudgeRun.version_id == version_id, JudgeRun.rubric_version_id == rubric_version_id,
                               JudgeRun.mode == mode).order_by(JudgeRun.id.desc())  # type: ignore[union-attr]
    ).first()
    if run is None:
        raise InputError(f"no {mode} judge run for this eval set version and rubric version",
                         hint="judge the outputs first (`ownbench judge --set NAME@VERSION --rubric FILE`) or "
                              "import a judge's verdicts (`ownbench judgments import FILE --set ... --rubric ...`)")
    return run


@dataclass
class CandidateInfo:
    id: int
    name: str
    model: str
    run_id: int
    cost_per_1k: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    outputs: int
    output_errors: int


@dataclass
class CriterionData:
    """candidates × items arrays for one criterion (NaN where there is nothing)."""

    criterion: dict[str, Any]
    domain: list[float]
    level: str
    judge: np.ndarray  # judge codes; NaN when unscored or not judged
    judged: np.ndarray  # bool: a judgment exists (scored or unscored): the population
    unscored: np.ndarray  # per candidate: unscored judgments in the population
    humans: dict[str, np.ndarray]  # annotator → codes (latest label), agreement uses all of them
    human_mean: np.ndarray  # mean human code over annotators, calibration-usable labels only
    calib: np.ndarray  # bool: labeled and usable for calibration
    strata: np.ndarray  # str stratum per unit ("" when the unit's stratum is unknown)
    inclusion_prob: np.ndarray  # per unit; NaN unknown
    outside: int  # latest labels made outside an assignment and without a known probability
    labels_total: int
    length: np.ndarray  # output length in characters (verbosity diagnostics)
    adjudicated: int = 0  # units where calibration uses a reviewer's adjudicated label instead of the mean

    @property
    def id(self) -> str:
        return str(self.criterion["id"])


@dataclass
class StudyData:
    version_id: int
    rubric: RubricVersion
    judge_run: JudgeRun
    candidates: list[CandidateInfo]
    item_ids: list[int]
    criteria: dict[str, CriterionData] = field(default_factory=dict)
    output_index: dict[int, tuple[int, int]] = field(default_factory=dict)  # output id → (candidate, item)


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def load_study(session: Session, version_id: int, rubric_version_id: int, judge_run_id: int | None = None) -> StudyData:
    """Everything analysis needs for one version × rubric version (pointwise judgments)."""
    from analysis.golden import population_strata

    rubric = session.get(RubricVersion, rubric_version_id)
    if rubric is None:
        raise InputError(f"no rubric version {rubric_version_id}", where="--rubric")
    judge_run = session.get(JudgeRun, judge_run_id) if judge_run_id else latest_judge_run(session, version_id,
                                                                                          rubric_version_id)
    if judge_run is None or judge_run.version_id != version_id or judge_run.rubric_version_id != rubric_version_id:
        raise InputError(f"judge run {judge_run_id} does not belong to this version and rubric", where="--judge-run")
    if judge_run.mode != "pointwise":
        raise InputError(f"judge run {judge_run.id} is {judge_run.mode}: agreement and calibrated means need a "
                         "pointwise judge run", where="--judge-run",
                         hint="pairwise runs give Bradley–Terry strengths and position bias in `ownbench rank`")
    crits = criteria_of(rubric)
    # only the columns analysis needs, as plain tuples: no rationale, no details, no output text (its length is
    # computed by the database), so a million judgments fit in a few hundred MB
    rows = session.exec(
        select(Judgment.criterion_id, Judgment.output_id, Judgment.item_id, Judgment.status, Judgment.verdict,
               Judgment.score, Output.run_id, func.coalesce(func.length(Output.text), 0))
        .join(Output, Judgment.output_id == Output.id)
        .where(Judgment.judge_run_id == judge_run.id).order_by(Judgment.id)  # type: ignore[arg-type]
    )
    runs = {r.id: r for r in session.exec(select(Run).where(Run.version_id == version_id))}
    latest: dict[tuple[str, int], tuple[str, str | None, float | None]] = {}
    out_meta: dict[int, tuple[int, int, int]] = {}  # output → (run, item, length)
    for crit_id, output_id, item_id, status, verdict, score, run_id, length in rows:
        latest[(crit_id, output_id)] = (status, verdict, score)
        out_meta[output_id] = (run_id, item_id, int(length))
    cand_runs: dict[int, int] = {}
    for run_id, _, _ in out_meta.values():
        cand_runs.setdefault(runs[run_id].candidate_id, run_id)
        cand_runs[runs[run_id].candidate_id] = max(cand_runs[runs[run_id].candidate_id], run_id)
    cands = {c.id: c for c in session.exec(select(Candidate).where(Candidate.id.in_(list(cand_runs))))}  # type: ignore[union-attr]
    order = sorted(cand_runs, key=lambda cid: cands[cid].name)
    infos = []
    for cid in order:
        outs = session.exec(select(Output.cost_usd, Output.latency_ms, Output.error.is_not(None))  # type: ignore[union-attr]
                            .where(Output.run_id == cand_runs[cid])).all()
        costs = [c for c, _, _ in outs if c is not None]
        lat = [ms for _, ms, err in outs if ms is not None and not err]
        infos.append(CandidateInfo(
            cid, cands[cid].name, cands[cid].model, cand_runs[cid],
            cost_per_1k=(sum(costs) / len(outs) * 1000.0) if costs and outs else None,
            latency_p50_ms=_percentile(lat, 50), latency_p95_ms=_percentile(lat, 95),
            outputs=len(outs), output_errors=sum(1 for _, _, err in outs if err),
        ))
    item_ids = sorted({meta[1] for out, meta in out_meta.items() if runs[meta[0]].id == cand_runs[runs[meta[0]].candidate_id]})
    col = {iid: k for k, iid in enumerate(item_ids)}
    row_of = {cid: k for k, cid in enumerate(order)}
    study = StudyData(version_id, rubric, judge_run, infos, item_ids)
    for out, (run_id, item_id, _) in out_meta.items():
        if cand_runs.get(runs[run_id].candidate_id) == run_id:
            study.output_index[out] = (row_of[runs[run_id].candidate_id], col[item_id])
    shape = (len(order), len(item_ids))

    # labels: latest per annotator × output × criterion
    label_rows = session.exec(
        select(Label.annotator_id, Label.output_id, Label.criterion_id, Label.skipped, Label.verdict, Label.score,
               Label.golden_unit_id, Label.inclusion_prob)
        .where(Label.rubric_version_id == rubric_version_id, Label.output_b_id.is_(None))  # type: ignore[union-attr]
        .order_by(Label.id)  # type: ignore[arg-type]
    )
    latest_label: dict[tuple[int, int, str], Any] = {}
    for lab in label_rows:
        latest_label[(lab[0], lab[1], lab[2])] = lab
    names = {a.id: a.name for a in session.exec(select(Annotator))}
    assigned = {(a, u) for a, u in session.exec(select(GoldenAssignment.annotator_id, GoldenAssignment.golden_unit_id))}
    golden = {g.id: g for g in session.exec(
        select(GoldenUnit).where(GoldenUnit.version_id == version_id, GoldenUnit.rubric_version_id == rubric_version_id,
                                 GoldenUnit.mode == "pointwise"))}
    strata_cache: dict[tuple, dict[int, str]] = {}
    adjudicated: dict[tuple[int, str], Adjudication] = {}  # latest per output × criterion
    for adj in session.exec(select(Adjudication).where(Adjudication.rubric_version_id == rubric_version_id,
                                                       Adjudication.output_b_id.is_(None))  # type: ignore[union-attr]
                            .order_by(Adjudication.id)):  # type: ignore[arg-type]
        adjudicated[(adj.output_id, adj.criterion_id)] = adj

    for crit in crits:
        cid_ = str(crit["id"])
        domain, level = domain_of(crit)
        judge = np.full(shape, np.nan)
        judged = np.zeros(shape, bool)
        length = np.full(shape, np.nan)
        unscored = np.zeros(len(order), int)
        for out, (r, c) in study.output_index.items():
            j = latest.get((cid_, out))
            if j is None:
                continue
            judged[r, c] = True
            length[r, c] = out_meta[out][2]
            if j[0] == "scored":
                judge[r, c] = code_of(crit, j[1], j[2])
            else:
                unscored[r] += 1
        humans: dict[str, np.ndarray] = {}
        sums = np.zeros(shape)
        counts = np.zeros(shape)
        calib = np.zeros(shape, bool)
        strata = np.full(shape, "", dtype=object)
        prob = np.full(shape, np.nan)
        outside = total = 0
        for (ann, out, crit_id), lab in latest_label.items():
            if crit_id != cid_ or lab.skipped or lab.verdict is None or out not in study.output_index:
                continue
            r, c = study.output_index[out]
            v = code_of(crit, lab.verdict, lab.score)
            if not np.isfinite(v):
                continue
            total += 1
            humans.setdefault(names.get(ann, f"annotator {ann}"), np.full(shape, np.nan))[r, c] = v
            unit = golden.get(lab.golden_unit_id) if lab.golden_unit_id else None
            if unit is not None and (ann, unit.id) in assigned:
                sel = unit.selection or {}
                if unit.stratum and sel.get("judge_run_id"):
                    key = (sel["judge_run_id"], sel.get("criterion"), sel.get("strategy", "stratified"))
                    if key not in strata_cache:
                        strata_cache[key] = population_strata(session, *key)
                    strata[r, c] = unit.stratum
                if unit.inclusion_prob is not None:
                    prob[r, c] = unit.inclusion_prob
            elif lab.inclusion_prob is not None:
                prob[r, c] = lab.inclusion_prob
            else:
                outside += 1
                continue
            calib[r, c] = True
            sums[r, c] += v
            counts[r, c] += 1
        # population strata for candidates whose golden units came from a stratified draw
        for key, mapping in strata_cache.items():
            for out, (r, c) in study.output_index.items():
                if out in mapping and strata[r, c] == "":
                    strata[r, c] = mapping[out]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        # where a reviewer adjudicated a drawn unit, calibration uses that label instead of the annotators' mean
        n_adj = 0
        for (out, crit_id), adj in adjudicated.items():
            unit = golden.get(adj.golden_unit_id)
            if crit_id != cid_ or out not in study.output_index or unit is None or unit.inclusion_prob is None:
                continue
            v = code_of(crit, adj.verdict, adj.score)
            if not np.isfinite(v):
                continue
            r, c = study.output_index[out]
            mean[r, c], prob[r, c], calib[r, c] = v, unit.inclusion_prob, True
            n_adj += 1
        study.criteria[cid_] = CriterionData(crit, domain, level, judge, judged, unscored, humans, mean, calib & judged,
                                             strata, prob, outside, total, length, n_adj)
    return study
