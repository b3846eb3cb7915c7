"""Choosing the golden subset: which outputs humans label next, drawn at random with known probabilities.

The draw is stratified by candidate × judge verdict on one criterion (and, under `uncertainty`, by whether the
judge was unsure), simple random sampling within strata, seeded; see `stats.golden`. Under `candidate` the
strata are the candidates alone, so people can label before any judge has run (the population is then what a
judge run would score: the usable outputs of each candidate's latest run). Pairwise units are drawn from a
pairwise judge run's battles within each pair of candidates. Later batches draw from
the same strata's remaining units, so the union stays a stratified random sample and every unit's inclusion
probability is (drawn in its stratum)/(stratum size); the rows of earlier batches are updated to that value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlmodel import Session, select

from analysis.data import criteria_of, latest_judge_run
from analysis.names import get_or_create_annotator
from storage.errors import InputError
from storage.models import (
    EvalSetVersion,
    GoldenAssignment,
    GoldenUnit,
    JudgeRun,
    Judgment,
    Output,
    RubricVersion,
    Run,
)
from storage.names import check_name

STRATEGIES = ("stratified", "uncertainty", "candidate")
PAIR_STRATEGY = "candidate pair"  # the only design for pairwise units


def is_unsure(judgment: Judgment, criterion: dict[str, Any]) -> bool:
    """The judge was unsure about this unit: unscored, needed retries, gave differing verdicts across samples
    or orders, or (ordinal) sits on the level boundary in the middle of the scale."""
    if judgment.status != "scored":
        return True
    d = judgment.details or {}
    if d.get("attempt_errors") or d.get("disagreement"):
        return True
    for key in ("verdicts", "samples", "retry_verdicts"):
        vals = d.get(key)
        if isinstance(vals, list) and len({str(v) for v in vals}) > 1:
            return True
    if criterion.get("type") == "ordinal" and judgment.score is not None:
        lo, hi = float(criterion["min"]), float(criterion["max"])
        mid = (lo + hi) / 2
        return abs(judgment.score - mid) <= 0.5 or float(judgment.score) != int(judgment.score)
    return False


def _population(session: Session, judge_run_id: int, criterion_id: str) -> tuple[list[int], list[int], list[str], list[bool], dict]:
    run = session.get(JudgeRun, judge_run_id)
    assert run is not None
    rubric = session.get(RubricVersion, run.rubric_version_id)
    crit = next((c for c in criteria_of(rubric) if str(c["id"]) == criterion_id), None)  # type: ignore[arg-type]
    if crit is None:
        raise InputError(f"criterion {criterion_id!r} is not in rubric {rubric.name!r}", where="--criterion")  # type: ignore[union-attr]
    rows = session.exec(
        select(Judgment, Run.candidate_id).join(Output, Judgment.output_id == Output.id).join(Run, Output.run_id == Run.id)
        .where(Judgment.judge_run_id == judge_run_id, Judgment.criterion_id == criterion_id,
               Judgment.output_b_id.is_(None))  # type: ignore[union-attr]
        .order_by(Judgment.id)  # type: ignore[arg-type]
    ).all()
    latest: dict[int, tuple[Judgment, int]] = {}
    for j, cand in rows:
        latest[j.output_id] = (j, cand)
    outs = sorted(latest)
    return (outs, [latest[o][0].item_id for o in outs],
            [f"candidate {latest[o][1]}|{latest[o][0].verdict if latest[o][0].status == 'scored' else 'unscored'}"
             for o in outs],
            [is_unsure(latest[o][0], crit) for o in outs], crit)


def _candidate_population(session: Session, version_id: int) -> tuple[list[int], list[int], list[str]]:
    """Usable outputs (text, no error) of each candidate's latest run on the version: what a judge run scores."""
    from judging.selection import select_runs

    version = session.get(EvalSetVersion, version_id)
    if version is None:
        raise InputError(f"no eval set version {version_id}", where="--set")
    outs: list[tuple[int, int, str]] = []
    for cand, run in select_runs(session, version, None):
        rows = session.exec(select(Output.id, Output.item_id, Output.text).where(
            Output.run_id == run.id, Output.error.is_(None))).all()  # type: ignore[union-attr]
        # the same test as the judge's (Python's strip: SQL trim would keep newline-only outputs)
        outs += [(int(o), int(i), f"candidate {cand.id}") for o, i, text in rows if text and text.strip()]
    outs.sort()
    return [o for o, _, _ in outs], [i for _, i, _ in outs], [k for _, _, k in outs]


def _pair_population(session: Session, judge_run_id: int) -> tuple[list[tuple[int, int]], list[int], list[str]]:
    """The battles (output A, output B) of a pairwise judge run, each stratified by its pair of candidates."""
    cand_of_run = dict(session.exec(select(Run.id, Run.candidate_id)).all())
    rows = session.exec(
        select(Judgment.output_id, Judgment.output_b_id, Judgment.item_id)
        .where(Judgment.judge_run_id == judge_run_id, Judgment.output_b_id.is_not(None))  # type: ignore[union-attr]
        .distinct()
    ).all()
    outs = {o for a, b, _ in rows for o in (a, b)}
    run_of = dict(session.exec(select(Output.id, Output.run_id).where(Output.id.in_(list(outs)))).all())  # type: ignore[union-attr]
    battles = sorted((int(a), int(b), int(item)) for a, b, item in rows)
    return ([(a, b) for a, b, _ in battles], [item for _, _, item in battles],
            [f"candidates {cand_of_run[run_of[a]]} vs {cand_of_run[run_of[b]]}" for a, b, _ in battles])


def population_strata(session: Session, judge_run_id: int, criterion_id: str | None, strategy: str = "stratified") -> dict[int, str]:
    """output id → stratum key, exactly as the draw defined it (so calibration can use the same partition)."""
    if criterion_id is None:
        return {}
    outs, _, strata, unsure, _ = _population(session, judge_run_id, criterion_id)
    if strategy == "uncertainty":
        strata = [s + ("|unsure" if u else "|sure") for s, u in zip(strata, unsure)]
    return dict(zip(outs, strata))


@dataclass
class Selection:
    created: int
    total: int
    strata: int
    criterion: str | None  # None: drawn by candidate alone
    strategy: str
    seed: int
    assignments: int

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def select_golden(
    session: Session,
    version_id: int,
    rubric_version_id: int,
    judge_run_id: int | None,
    n: int,
    *,
    seed: int,
    strategy: str = "stratified",
    annotators: list[str] | None = None,
    k: int = 1,
    criterion: str | None = None,
    boost: float = 3.0,
    mode: str = "pointwise",
) -> Selection:
    """Draw `n` more golden units at random within strata and assign each to `k` annotators.

    Pairwise units (two candidates' outputs on one item) are drawn from a pairwise judge run's battles, at
    random within each pair of candidates: the Bradley–Terry correction treats each pair's labeled battles as a
    simple random sample of that pair's battles, so no other strata may enter."""
    from stats.golden import stratified_sample

    if mode not in ("pointwise", "pairwise"):
        raise InputError(f"mode {mode!r} is not one of pointwise, pairwise", where="--mode")
    allowed = STRATEGIES if mode == "pointwise" else ("stratified", PAIR_STRATEGY)
    if strategy not in allowed:
        raise InputError(f"strategy {strategy!r} is not one of {', '.join(allowed)} for {mode} units", where="--strategy",
                         hint="pairwise units take no strategy: leave --strategy out" if mode == "pairwise" else None)
    if n <= 0:
        raise InputError("the number of units to draw must be positive", where="--n")
    annotators = [a.strip() for a in (annotators or []) if a.strip()]
    if annotators and not 1 <= k <= len(annotators):
        raise InputError(f"k={k} annotators per unit, but {len(annotators)} annotator(s) named", where="--k",
                         hint="name at least k annotators with --annotators, or lower --k")
    if session.get(RubricVersion, rubric_version_id) is None:
        raise InputError(f"no rubric version {rubric_version_id}", where="--rubric")
    unsure_l: list[bool] = []
    design: dict[str, Any]
    if mode == "pairwise":
        if criterion is not None:
            raise InputError("pairwise golden units are drawn at random within each pair of candidates: "
                             "--criterion does not apply", where="--criterion", hint="leave it out with --mode pairwise")
        run = _judge_run(session, version_id, rubric_version_id, judge_run_id, "pairwise")
        keys_l, items, strata_l = _pair_population(session, run.id)  # type: ignore[arg-type]
        if not keys_l:
            raise InputError(f"pairwise judge run {run.id} has no battles", where="--judge-run")
        design = {"judge_run_id": run.id, "criterion": None, "strategy": PAIR_STRATEGY}
    elif strategy == "candidate":
        if criterion is not None or judge_run_id is not None:
            raise InputError("strategy 'candidate' draws by candidate alone: it takes no criterion or judge run",
                             where="--criterion" if criterion is not None else "--judge-run",
                             hint="leave them out, or use strategy 'stratified' to stratify by a judge's verdicts")
        outs, items, strata_l = _candidate_population(session, version_id)
        keys_l = [(o, None) for o in outs]
        if not keys_l:
            raise InputError("no candidate output on this version has text to label", where="--set",
                             hint="run candidates first (`ownbench run`), or import their outputs (`ownbench runs import`)")
        design = {"judge_run_id": None, "criterion": None, "strategy": strategy}
    else:
        run = _judge_run(session, version_id, rubric_version_id, judge_run_id, "pointwise")
        crits = criteria_of(session.get(RubricVersion, rubric_version_id))  # type: ignore[arg-type]
        if criterion is None:
            criterion = str(next((c for c in crits if c.get("type") in ("binary", "ordinal")), crits[0])["id"])
        outs, items, strata_l, unsure_l, _ = _population(session, run.id, criterion)  # type: ignore[arg-type]
        keys_l = [(o, None) for o in outs]
        if not keys_l:
            raise InputError(f"judge run {run.id} has no judgments on criterion {criterion!r}", where="--criterion")
        design = {"judge_run_id": run.id, "criterion": criterion, "strategy": strategy}
    existing = list(session.exec(select(GoldenUnit).where(
        GoldenUnit.version_id == version_id, GoldenUnit.rubric_version_id == rubric_version_id,
        GoldenUnit.mode == mode)))
    for g in existing:
        sel = g.selection or {}
        if {k_: sel.get(k_) for k_ in design} != design:
            was = ("by candidate alone" if sel.get("strategy") == "candidate" else
                   f"judge run {sel.get('judge_run_id')}, criterion {sel.get('criterion')!r}, strategy {sel.get('strategy')!r}")
            raise InputError(
                f"this golden subset was drawn under another design ({was})",
                where="golden subset",
                hint="draw further batches with the same judge run, criterion and strategy so inclusion "
                     "probabilities stay known")
    pos = {key: i for i, key in enumerate(keys_l)}
    already = np.zeros(len(keys_l), bool)
    for g in existing:
        if (g.output_id, g.output_b_id) in pos:
            already[pos[(g.output_id, g.output_b_id)]] = True
    new_idx, prob, keys = stratified_sample(np.array(strata_l), n, seed=seed,
                                            unsure=np.array(unsure_l) if strategy == "uncertainty" else None,
                                            boost=boost, already=already)
    sizes = {key: int(np.sum(keys == key)) for key in np.unique(keys)}
    batch = 1 + max([(g.selection or {}).get("batch", 0) for g in existing] or [0])
    for g in existing:  # the union is still a stratified random sample: refresh the probabilities
        if (g.output_id, g.output_b_id) in pos:
            g.inclusion_prob = float(prob[pos[(g.output_id, g.output_b_id)]])
            session.add(g)
    new_units = []
    for i in new_idx:
        unit = GoldenUnit(version_id=version_id, rubric_version_id=rubric_version_id, mode=mode,
                          item_id=items[i], output_id=keys_l[i][0], output_b_id=keys_l[i][1], stratum=str(keys[i]),
                          inclusion_prob=float(prob[i]),
                          selection={**design, "seed": seed, "batch": batch, "stratum_size": sizes[str(keys[i])]})
        session.add(unit)
        new_units.append(unit)
    session.flush()
    n_assign = _assign(session, new_units, annotators, k, seed) if annotators else 0
    return Selection(len(new_units), len(existing) + len(new_units), len(sizes), criterion, design["strategy"], seed,
                     n_assign)


def _judge_run(session: Session, version_id: int, rubric_version_id: int, judge_run_id: int | None,
               mode: str) -> JudgeRun:
    """The named judge run (checked against version, rubric and mode), else the latest of that mode."""
    if judge_run_id:
        run = session.get(JudgeRun, judge_run_id)
        if run is None or run.version_id != version_id or run.rubric_version_id != rubric_version_id:
            raise InputError(f"judge run {judge_run_id} does not belong to this version and rubric", where="--judge-run")
        if run.mode != mode:
            raise InputError(f"judge run {judge_run_id} is {run.mode}, not {mode}", where="--judge-run",
                             hint="draw pairwise units from a pairwise judge run with --mode pairwise"
                             if run.mode == "pairwise" else "draw pointwise units from a pointwise judge run")
        return run
    try:
        return latest_judge_run(session, version_id, rubric_version_id, mode)
    except InputError as exc:
        hint = ("judge pairs first: `ownbench judge --mode pairwise`" if mode == "pairwise" else
                "judge the outputs first (`ownbench judge`), or draw by candidate alone, without a judge, with "
                "strategy 'candidate'")
        raise InputError(exc.what, where="--judge-run", hint=hint) from exc


def _assign(session: Session, units: list[GoldenUnit], names: list[str], k: int, seed: int) -> int:
    """Each unit to k distinct annotators, balancing load; queue order random (so that a partly finished
    queue is still a random subset of the draw), pairwise order swapped at random per annotator."""
    rng = np.random.default_rng(seed + 1)
    people = []
    for name in names:
        people.append(get_or_create_annotator(session, name, where="--annotators"))
    load = np.zeros(len(people))
    next_pos = {}
    for a in people:
        last = session.exec(select(GoldenAssignment.position).where(GoldenAssignment.annotator_id == a.id)
                            .order_by(GoldenAssignment.position.desc())).first()  # type: ignore[union-attr]
        next_pos[a.id] = (last + 1) if last is not None else 0
    plan: dict[int, list[GoldenUnit]] = {a.id: [] for a in people}  # type: ignore[misc]
    for unit in units:
        order = np.lexsort((rng.random(len(people)), load))[:k]
        for j in order:
            plan[people[j].id].append(unit)  # type: ignore[index]
            load[j] += 1
    count = 0
    for a in people:
        queue = plan[a.id]  # type: ignore[index]
        for p in rng.permutation(len(queue)):
            unit = queue[p]
            session.add(GoldenAssignment(golden_unit_id=unit.id, annotator_id=a.id, position=next_pos[a.id],  # type: ignore[arg-type]
                                         swap=bool(rng.random() < 0.5) if unit.output_b_id else False))
            next_pos[a.id] += 1
            count += 1
    session.flush()
    return count
