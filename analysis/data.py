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

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlmodel import Session, select

from analysis.stored import judgments_of, labels_of, outputs_of
from storage.errors import InputError
from storage.models import (
    Adjudication,
    Annotator,
    Candidate,
    GoldenAssignment,
    GoldenUnit,
    JudgeRun,
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
    output_index: Mapping[int, tuple[int, int]] = field(default_factory=dict)  # output id → (candidate, item)
    reads: dict = field(default_factory=dict)  # the arrays read (analysis/stored.py), for the report's manifest


class OutputIndex(Mapping):
    """output id → (candidate row, item column), over sorted arrays: a million outputs without a million-entry
    dict."""

    def __init__(self, outputs: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> None:
        order = np.argsort(outputs, kind="stable")
        self._out, self._rows, self._cols = outputs[order], rows[order], cols[order]

    def _find(self, output_id: object) -> int:
        if not isinstance(output_id, (int, np.integer)) or not self._out.size:
            return -1
        k = int(np.searchsorted(self._out, output_id))
        return k if k < self._out.size and self._out[k] == output_id else -1

    def __getitem__(self, output_id: object) -> tuple[int, int]:
        k = self._find(output_id)
        if k < 0:
            raise KeyError(output_id)
        return int(self._rows[k]), int(self._cols[k])

    def __contains__(self, output_id: object) -> bool:
        return self._find(output_id) >= 0

    def __iter__(self) -> Iterator[int]:
        return iter(self._out.tolist())

    def __len__(self) -> int:
        return int(self._out.size)

    def lookup(self, outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows, columns and a found-mask for many output ids at once."""
        if not self._out.size or not outputs.size:
            z = np.zeros(outputs.size, np.int64)
            return z, z, np.zeros(outputs.size, bool)
        k = np.minimum(np.searchsorted(self._out, outputs), self._out.size - 1)
        found = self._out[k] == outputs
        return self._rows[k], self._cols[k], found

    def items(self):  # type: ignore[override]
        return zip(self._out.tolist(), zip(self._rows.tolist(), self._cols.tolist()))


def _codes_of(criterion: dict[str, Any], names: list[Any], verdicts: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """`code_of` over arrays: each distinct verdict converted once, the stored score where there is one."""
    table = np.array([code_of(criterion, v, None) for v in names] or [np.nan], float)
    vals = table[verdicts] if verdicts.size else np.zeros(0)
    if criterion.get("type") != "categorical":
        has_verdict = np.array([v is not None for v in names] or [False], bool)[verdicts] if verdicts.size else vals > 0
        vals = np.where(has_verdict & ~np.isnan(scores), scores, vals)
    return vals


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
    # only the columns analysis needs, as arrays (analysis/stored.py), kept in `reads` for the report's manifest
    reads: dict = {}
    jc = judgments_of(session, [judge_run.id], reads)
    oc = outputs_of(session, version_id, reads)
    out_id = jc["output_id"]
    pos = np.minimum(np.searchsorted(oc.ids, out_id), max(oc.ids.size - 1, 0))
    known = (oc.ids[pos] == out_id) if oc.ids.size else np.zeros(out_id.size, bool)
    if not known.all():  # a judgment of an output of another version: not this study's (as the join had it)
        jc = jc.take(known)
        out_id, pos = out_id[known], pos[known]
    crit_code, crit_names = jc["criterion_id"].codes, jc["criterion_id"].names
    item_of = oc["item_id"][pos]
    run_of = oc["run_id"][pos]
    length_of = np.maximum(oc["length"][pos], 0)  # no text: length 0
    runs = {r.id: r for r in session.exec(select(Run).where(Run.version_id == version_id))}
    # per (criterion, output) the latest judgment counts: the last row in id order
    width = int(out_id.max()) + 1 if out_id.size else 1
    key = crit_code.astype(np.int64) * width + out_id
    _, first_from_end = np.unique(key[::-1], return_index=True)
    latest_rows = np.sort(key.size - 1 - first_from_end)
    outs_u, at = np.unique(out_id, return_index=True)  # per output: its run, item and length
    cand_of_run = {rid: runs[rid].candidate_id for rid in np.unique(run_of).tolist()}
    cand_runs: dict[int, int] = {}
    for rid, cid in cand_of_run.items():
        cand_runs[cid] = max(cand_runs.get(cid, rid), rid)
    cands = {c.id: c for c in session.exec(select(Candidate).where(Candidate.id.in_(list(cand_runs))))}  # type: ignore[union-attr]
    order = sorted(cand_runs, key=lambda cid: cands[cid].name)
    infos = []
    for cid in order:
        mine_ = oc["run_id"] == cand_runs[cid]
        cost, ms, err = oc["cost_usd"][mine_], oc["latency_ms"][mine_], oc["error"][mine_]
        costs = cost[~np.isnan(cost)]
        lat = ms[~np.isnan(ms) & ~err].tolist()
        infos.append(CandidateInfo(
            cid, cands[cid].name, cands[cid].model, cand_runs[cid],
            cost_per_1k=(float(costs.sum()) / cost.size * 1000.0) if costs.size and cost.size else None,
            latency_p50_ms=_percentile(lat, 50), latency_p95_ms=_percentile(lat, 95),
            outputs=int(cost.size), output_errors=int(err.sum()),
        ))
    chosen = np.isin(run_of[at], [r for r, c in cand_of_run.items() if cand_runs[c] == r])
    outs_sel, runs_sel, items_sel = outs_u[chosen], run_of[at][chosen], item_of[at][chosen]
    item_ids = [int(i) for i in np.unique(items_sel)]
    row_of = {cid: k for k, cid in enumerate(order)}
    study = StudyData(version_id, rubric, judge_run, infos, item_ids, reads=reads)
    run_ids, run_at = np.unique(runs_sel, return_inverse=True)
    sel_rows = np.array([row_of[cand_of_run[r]] for r in run_ids.tolist()], np.int64)[run_at.ravel()] \
        if run_ids.size else np.zeros(0, np.int64)
    sel_cols = np.searchsorted(np.asarray(item_ids, np.int64), items_sel)
    study.output_index = OutputIndex(outs_sel, sel_rows, sel_cols)
    shape = (len(order), len(item_ids))
    # the latest judgments of the chosen runs' outputs, with their place in the candidates × items arrays
    pos = np.searchsorted(outs_sel, out_id[latest_rows])
    pos = np.minimum(pos, max(outs_sel.size - 1, 0))
    keep = (outs_sel.size > 0) & (outs_sel[pos] == out_id[latest_rows]) if outs_sel.size else np.zeros(0, bool)
    lr, lpos = latest_rows[keep], pos[keep]
    l_crit, l_row, l_col, l_len = crit_code[lr], sel_rows[lpos], sel_cols[lpos], length_of[lr]
    verdict_code, verdict_names = jc["verdict"].codes, jc["verdict"].names
    l_scored = jc["status"].codes[lr] == jc["status"].code("scored")
    l_verdict, l_score = verdict_code[lr], jc["score"][lr]

    # labels: latest per annotator × output × criterion (the same arrays the manifest digests)
    lc = labels_of(session, version_id, rubric_version_id, reads)
    lc = lc.take(lc["output_b_id"] < 0)  # pointwise labels
    l_crit_c = lc["criterion_id"]
    if len(lc):
        from stats.estimate import distinct_rows

        lab_key = distinct_rows(np.stack([l_crit_c.codes, lc["output_id"], lc["annotator_id"]], axis=1)
                                .astype(np.float64))[1]  # one integer per annotator × output × criterion
        _, last_from_end = np.unique(lab_key[::-1], return_index=True)
        lc = lc.take(np.isin(np.arange(len(lc)), len(lc) - 1 - last_from_end))
    l_crit_c = lc["criterion_id"]
    names = {a.id: a.name for a in session.exec(select(Annotator))}
    golden = {g.id: g for g in session.exec(
        select(GoldenUnit).where(GoldenUnit.version_id == version_id, GoldenUnit.rubric_version_id == rubric_version_id,
                                 GoldenUnit.mode == "pointwise"))}
    # per label: whether it was made on an assignment of a drawn unit (then the unit's design counts)
    assigned_keys = np.array([a * (1 << 32) + u for a, u in session.exec(
        select(GoldenAssignment.annotator_id, GoldenAssignment.golden_unit_id))], np.int64)
    unit_of = lc["golden_unit_id"]
    on_unit = np.isin(unit_of, np.fromiter(golden, np.int64, len(golden))) & np.isin(
        lc["annotator_id"] * (1 << 32) + unit_of, assigned_keys)
    strata_cache: dict[tuple, dict[int, str]] = {}
    unit_stratum: dict[int, str] = {}
    for uid in np.unique(unit_of[on_unit]).tolist():  # once per drawn unit, not per label
        unit = golden[uid]
        sel = unit.selection or {}
        if unit.stratum and sel.get("judge_run_id"):
            key = (sel["judge_run_id"], sel.get("criterion"), sel.get("strategy", "stratified"))
            if key not in strata_cache:
                strata_cache[key] = population_strata(session, *key)
            unit_stratum[uid] = unit.stratum
    unit_prob = {uid: g.inclusion_prob for uid, g in golden.items() if g.inclusion_prob is not None}
    adjudicated: dict[tuple[int, str], Adjudication] = {}  # latest per output × criterion
    for adj in session.exec(select(Adjudication).where(Adjudication.rubric_version_id == rubric_version_id,
                                                       Adjudication.output_b_id.is_(None))  # type: ignore[union-attr]
                            .order_by(Adjudication.id)):  # type: ignore[arg-type]
        adjudicated[(adj.output_id, adj.criterion_id)] = adj
    # population strata of stratified draws, by output (one array pass, not a loop over every output)
    pop_out = np.array([o for m in strata_cache.values() for o in m], np.int64)
    pop_stratum = np.array([st for m in strata_cache.values() for st in m.values()], dtype=object)
    pop_r, pop_c, pop_found = study.output_index.lookup(pop_out)

    for crit in crits:
        cid_ = str(crit["id"])
        domain, level = domain_of(crit)
        judge = np.full(shape, np.nan)
        judged = np.zeros(shape, bool)
        length = np.full(shape, np.nan)
        mine = l_crit == (crit_names.index(cid_) if cid_ in crit_names else -1)
        r_, c_ = l_row[mine], l_col[mine]
        judged[r_, c_] = True
        length[r_, c_] = l_len[mine]
        sc = l_scored[mine]
        judge[r_[sc], c_[sc]] = _codes_of(crit, verdict_names, l_verdict[mine][sc], l_score[mine][sc])
        unscored = np.bincount(r_[~sc], minlength=len(order)).astype(int)
        humans: dict[str, np.ndarray] = {}
        sums = np.zeros(shape)
        counts = np.zeros(shape)
        calib = np.zeros(shape, bool)
        strata = np.full(shape, "", dtype=object)
        prob = np.full(shape, np.nan)
        vl = lc["verdict"]
        sel_ = (l_crit_c.codes == l_crit_c.code(cid_)) & ~lc["skipped"] & (vl.codes != vl.code(None))
        ann_, unit_, on_ = lc["annotator_id"][sel_], unit_of[sel_], on_unit[sel_]
        incl_ = lc["inclusion_prob"][sel_]
        r_all, c_all, found = study.output_index.lookup(lc["output_id"][sel_])
        v_all = _codes_of(crit, vl.names, vl.codes[sel_], lc["score"][sel_])
        ok = found & np.isfinite(v_all)
        total = int(ok.sum())
        for a_id in np.unique(ann_[ok]).tolist():
            m = ok & (ann_ == a_id)
            name = names.get(a_id, f"annotator {a_id}")
            if name not in humans:
                humans[name] = np.full(shape, np.nan)
            humans[name][r_all[m], c_all[m]] = v_all[m]
        # usable for calibration: made on an assigned drawn unit, or imported with a declared inclusion probability
        from_unit = ok & on_
        from_import = ok & ~on_ & ~np.isnan(incl_)
        usable = from_unit | from_import
        outside = int((ok & ~usable).sum())
        for k in np.flatnonzero(from_unit).tolist():  # drawn units: a handful, each with its design
            uid = int(unit_[k])
            if uid in unit_stratum:
                strata[r_all[k], c_all[k]] = unit_stratum[uid]
            if uid in unit_prob:
                prob[r_all[k], c_all[k]] = unit_prob[uid]
        prob[r_all[from_import], c_all[from_import]] = incl_[from_import]
        calib[r_all[usable], c_all[usable]] = True
        np.add.at(sums, (r_all[usable], c_all[usable]), v_all[usable])
        np.add.at(counts, (r_all[usable], c_all[usable]), 1)
        # population strata for candidates whose golden units came from a stratified draw (first draw's wins)
        if pop_found.any():
            cell = pop_r * shape[1] + pop_c
            _, first = np.unique(np.where(pop_found, cell, -1), return_index=True)
            first = first[pop_found[first]]
            empty = strata[pop_r[first], pop_c[first]] == ""
            strata[pop_r[first][empty], pop_c[first][empty]] = pop_stratum[first][empty]
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
