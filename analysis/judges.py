"""Judges compared: every pointwise judge run on one version × rubric, side by side, against the same humans.

What decides which judge is worth paying for is how much it narrows the calibrated intervals. Prediction-
powered intervals are valid whatever the judge; a judge that tracks the humans makes them narrower than the
human-only intervals from the same golden labels, a useless one leaves them as wide. Per judge run, over its
model-graded criteria with a scale (binary, ordinal) and every candidate:

- `width`: the mean calibrated 95 % interval width, each divided by its criterion's scale range (so binary and
  1..5 criteria weigh alike); `human_width`: the same for the human-only intervals;
- `width_ratio` = width / human_width (below 1: the judge helps), and `label_multiplier` = ratio⁻², how many
  times more golden labels human-only estimates would need for intervals as narrow;
- `narrowing_per_usd`: (1 − ratio) per dollar of 1,000 judgments.

The recommendation: among judges that beat human-only (ratio below 1), the cheapest whose width is within
`margin` (default 10 %) of the narrowest; a judge without a known price is only recommended when no priced
judge qualifies. When no judge beats human-only it says so. Check criteria are exact and the same in every
judge run: they are left out of the comparison.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlmodel import Session, select

from analysis.data import load_study
from analysis.people import Viewer
from analysis.reports import _clean, _est, _f, agreement_report, calibrate_criterion
from stats.estimate import Estimate
from storage.errors import InputError
from storage.models import JudgeRun, Judgment

DEFAULT_MARGIN = 0.10


@dataclass
class JudgesReport:
    header: dict[str, Any]
    margin: float
    judges: list[dict[str, Any]] = field(default_factory=list)
    recommendation: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _clean({"header": self.header, "margin": self.margin, "judges": self.judges,
                       "recommendation": self.recommendation})

    def to_markdown(self) -> str:
        h = self.header
        intro = (f"{len(self.judges)} pointwise judge run(s) against the same golden labels. Width: mean calibrated "
                 "95 % interval width (scale-normalised) over model-graded criteria and candidates; human-only "
                 "width from the same labels; ratio below 1 means the judge narrows the intervals.")
        out = [f"# Judges compared: {h['set']} · rubric {h['rubric']} ({h['rubric_hash'][:8]})", "", intro, ""]
        cols = ["judge run", "judge", "α judge–human [95 % CI]", "κ judge–human [95 % CI]", "leniency",
                "verbosity /1k chars", "self-pref.", "position bias", "unscored", "$ / 1k judgments",
                "latency p50 / p95 ms", "width", "human-only width", "ratio", "labels ×", "narrowing per $"]
        out += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for j in self.judges:
            cells = [str(j["judge_run"]) + (" (panel)" if j["source"] == "panel" else ""), j["judge_model"],
                     _cell(j.get("alpha")), _cell(j.get("kappa")), _cell(j.get("leniency")),
                     _cell(j.get("verbosity")), _cell(j.get("self_preference")),
                     (f"{_f(j.get('position_bias'), 3)} (pairwise run {j.get('position_bias_run')})"
                      if j.get("position_bias") is not None else "n/a (pointwise)"),
                     f"{_f(j['unscored_share'], 3)} of {j['judgments']}",
                     _f(j.get("cost_per_1k_usd"), 4) if j.get("cost_per_1k_usd") is not None else "unknown",
                     f"{_f(j.get('latency_p50_ms'), 0)} / {_f(j.get('latency_p95_ms'), 0)}",
                     _f(j.get("width")), _f(j.get("human_width")), _f(j.get("width_ratio")),
                     _f(j.get("label_multiplier"), 2), _f(j.get("narrowing_per_usd"), 3)]
            out.append("| " + " | ".join(cells) + " |")
        out += ["", f"**Recommendation** (margin {self.margin:.0%}): {self.recommendation.get('text', '')}", ""]
        for j in self.judges:
            for note in j.get("notes") or []:
                out.append(f"- judge run {j['judge_run']}: {note}")
        return "\n".join(out).rstrip() + "\n"


def _cell(e: Estimate | None) -> str:
    return _est(e) if e is not None else "n/a"


def _pooled(values: list[Estimate]) -> Estimate | None:
    """Mean of per-criterion estimates (value and bounds averaged; n summed): one figure per judge."""
    ok = [e for e in values if e is not None and math.isfinite(e.value)]
    if not ok:
        return None
    if len(ok) == 1:
        return ok[0]
    return Estimate(float(np.mean([e.value for e in ok])), float(np.nanmean([e.low for e in ok])),
                    float(np.nanmean([e.high for e in ok])), sum(e.n for e in ok), f"mean over {len(ok)} criteria")


def _est_of(d: dict | None) -> Estimate | None:
    return Estimate(**d) if d and d.get("value") is not None else None


def judge_runs(session: Session, version_id: int, rubric_version_id: int) -> list[JudgeRun]:
    return list(session.exec(select(JudgeRun).where(
        JudgeRun.version_id == version_id, JudgeRun.rubric_version_id == rubric_version_id,
        JudgeRun.mode == "pointwise").order_by(JudgeRun.id)))  # type: ignore[arg-type]


def _position_bias(session: Session, version_id: int, rubric_version_id: int,
                   judge_model: str) -> tuple[float | None, int | None]:
    """The first-shown output's score share in this judge model's latest pairwise run on the same set × rubric,
    and that run's id (the comparison says which run it took)."""
    from analysis.pairwise import judge_position_bias, load_battles

    run = session.exec(select(JudgeRun).where(
        JudgeRun.version_id == version_id, JudgeRun.rubric_version_id == rubric_version_id,
        JudgeRun.mode == "pairwise", JudgeRun.judge_model == judge_model).order_by(JudgeRun.id.desc())).first()  # type: ignore[union-attr]
    if run is None:
        return None, None
    shares = []
    for bt in load_battles(session, version_id, rubric_version_id, run).values():
        e = judge_position_bias(bt).get("first_position_share")
        if e is not None and math.isfinite(e.value):
            shares.append(e.value)
    return (float(np.mean(shares)) if shares else None), run.id


def compare_judges(session: Session, version_id: int, rubric_version_id: int, *, viewer: Viewer,
                   margin: float = DEFAULT_MARGIN, n_boot: int = 1000, seed: int = 0) -> JudgesReport:
    """Every pointwise judge run of this version × rubric, side by side, and which one to use (reviewers and
    owners only: it holds judge verdicts against everyone's labels)."""
    from analysis.reports import _header

    viewer.require("review", "comparing judges")

    if not 0 <= margin < 1:
        raise InputError(f"margin {margin} is not between 0 and 1", where="--margin", hint="e.g. 0.1 for 10 %")
    runs = judge_runs(session, version_id, rubric_version_id)
    if not runs:
        raise InputError("no pointwise judge run for this eval set version and rubric version",
                         hint="judge the outputs first: `ownbench judge --set NAME@VERSION --rubric FILE --judge MODEL`")
    report: JudgesReport | None = None
    for run in runs:
        study = load_study(session, version_id, rubric_version_id, run.id)
        if report is None:
            header = _header(session, study)
            report = JudgesReport({k: header[k] for k in ("set", "version_hash", "rubric", "rubric_hash")}, margin)
        graded = [c for c, cd in study.criteria.items()
                  if cd.criterion.get("type") in ("binary", "ordinal") and not cd.criterion.get("check")]
        entry: dict[str, Any] = {"judge_run": run.id, "judge_model": run.judge_model, "source": run.source,
                                 "criteria": graded, "notes": []}
        if run.source == "panel":
            members = ", ".join(str(m["judge_run"]) for m in (run.params or {}).get("members", []))
            entry["notes"].append(f"panel of judge runs {members} ({(run.params or {}).get('ordinal_rule')} for "
                                  f"ordinal criteria; ties: {(run.params or {}).get('tie_rule')})")
        agreement = agreement_report(session, version_id, rubric_version_id, run.id, viewer=viewer, n_boot=n_boot,
                                     seed=seed)
        alphas, kappas, len_, verb, selfp = [], [], [], [], []
        for c in agreement.criteria:
            if c["criterion"] not in graded or c.get("note"):
                continue
            alphas.append(_est_of(c.get("alpha_judge_vs_human")))
            pairs = sorted((p for p in c.get("pairs") or [] if p.get("kind") == "judge-human"), key=lambda p: -p["n"])
            if pairs:
                kappas.append(_est_of(pairs[0].get("kappa")))
            b = c.get("bias") or {}
            len_.append(_est_of(b.get("leniency")))
            verb.append(_est_of(b.get("verbosity")))
            sp = b.get("self_preference") or {}
            selfp.append(_est_of(sp.get("difference")))
        entry.update(alpha=_pooled(alphas), kappa=_pooled(kappas), leniency=_pooled(len_), verbosity=_pooled(verb),
                     self_preference=_pooled(selfp))
        entry["position_bias"], entry["position_bias_run"] = _position_bias(session, version_id,
                                                                             rubric_version_id, run.judge_model)
        # widths: calibrated vs human-only, scale-normalised
        widths, human = [], []
        for cid in graded:
            cd = study.criteria[cid]
            scale = (max(cd.domain) - min(cd.domain)) or 1.0
            for row in calibrate_criterion(study, cd).rows:
                cal, hum = row.get("calibrated"), row.get("human_only")
                if cal is not None and hum is not None and all(map(math.isfinite, (cal.low, cal.high, hum.low, hum.high))):
                    widths.append((cal.high - cal.low) / scale)
                    human.append((hum.high - hum.low) / scale)
        if widths:
            w, hw = float(np.mean(widths)), float(np.mean(human))
            entry.update(width=w, human_width=hw, width_ratio=w / hw if hw > 0 else None)
            if entry["width_ratio"]:
                entry["label_multiplier"] = entry["width_ratio"] ** -2
        else:
            entry.update(width=None, human_width=None, width_ratio=None)
            entry["notes"].append("no calibrated interval yet (too few golden labels on its judged outputs)")
        # cost, latency, unscored: the model-graded judgments of the run
        rows = list(session.exec(select(Judgment.status, Judgment.cost_usd, Judgment.latency_ms).where(
            Judgment.judge_run_id == run.id, Judgment.criterion_id.in_(graded))))  # type: ignore[attr-defined]
        n = len(rows)
        costs = [c for _, c, _ in rows if c is not None]
        lat = [x for _, _, x in rows if x is not None]
        entry["judgments"] = n
        entry["unscored_share"] = (sum(1 for s, _, _ in rows if s != "scored") / n) if n else None
        entry["cost_per_1k_usd"] = (sum(costs) / n * 1000) if costs and len(costs) == n else None
        if costs and len(costs) < n:
            entry["notes"].append(f"{n - len(costs)} of {n} judgments have no recorded cost: cost unknown")
        entry["latency_p50_ms"] = float(np.percentile(lat, 50)) if lat else None
        entry["latency_p95_ms"] = float(np.percentile(lat, 95)) if lat else None
        ratio, cost = entry.get("width_ratio"), entry.get("cost_per_1k_usd")
        entry["narrowing_per_usd"] = ((1 - ratio) / cost) if ratio is not None and cost else None
        report.judges.append(entry)
    assert report is not None
    report.recommendation = recommend(report.judges, margin)
    return report


def recommend(judges: list[dict[str, Any]], margin: float) -> dict[str, Any]:
    """The cheapest judge whose width is within `margin` of the narrowest, among those that beat human-only."""
    useful = [j for j in judges if j.get("width_ratio") is not None and j["width_ratio"] < 1.0]
    if not [j for j in judges if j.get("width_ratio") is not None]:
        return {"judge_run": None, "text": "no judge run has calibrated intervals yet: label more golden units "
                                           "(`ownbench golden select`, then the Label page)"}
    if not useful:
        return {"judge_run": None, "text": "no judge beats human-only: every judge's calibrated intervals are as wide "
                                           "as the human-only ones; label more, or try a better judge"}
    best = min(j["width"] for j in useful)
    close = [j for j in useful if j["width"] <= best * (1 + margin)]
    priced = [j for j in close if j.get("cost_per_1k_usd") is not None]
    pick = min(priced, key=lambda j: (j["cost_per_1k_usd"], j["width"])) if priced else min(close, key=lambda j: j["width"])
    cost = pick.get("cost_per_1k_usd")
    text = (f"judge run {pick['judge_run']} (`{pick['judge_model']}`): width {pick['width']:.3f} vs narrowest "
            f"{best:.3f} and human-only {pick['human_width']:.3f}, "
            + (f"${cost:.4f} per 1,000 judgments" if cost is not None else "cost unknown")
            + f"; the cheapest within {margin:.0%} of the narrowest")
    return {"judge_run": pick["judge_run"], "judge_model": pick["judge_model"], "best_width": best, "text": text,
            "within_margin": [j["judge_run"] for j in close]}
