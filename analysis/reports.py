"""Agreement, ranking and compare reports: the numbers the CLI and the app both show.

Every estimate carries its n and a 95 % interval. Calibrated numbers come first; judge-only numbers appear
only where the judge agrees with the humans well enough (or with `force`, marked "uncalibrated"); a ranking is
withheld, with the reason in words, while there are too few golden labels for any interval to mean anything.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlmodel import Session

from analysis.data import CriterionData, StudyData, load_study
from analysis.manifest import attach_json, attach_markdown, build_manifest
from analysis.people import Viewer
from stats.estimate import Estimate
from stats.gate import GateConfig, GateDecision, check_gate

UNCALIBRATED = "uncalibrated"


def _f(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


# Why a coefficient has no value although both raters labeled units: chance agreement is 1 (one category
# everywhere), so κ and α are 0/0. Reports say so instead of showing a number or failing.
UNDEFINED_ONE_CATEGORY = "undefined: every unit got the same single label, so chance agreement is 1 (0/0)"


def _est(e: Estimate | None, digits: int = 3, *, undefined: str | None = None) -> str:
    """`value [low, high]`; "n/a" without data; `undefined` (the reason) when units exist but no value does."""
    value = None if e is None else e.value
    if value is None or not math.isfinite(value):
        return undefined if undefined and e is not None and e.n else "n/a"
    return f"{value:.{digits}f} [{_f(e.low, digits)}, {_f(e.high, digits)}]"


def _d(e: Estimate | None) -> dict | None:
    return e.to_dict() if e is not None else None


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN → None, numpy scalars → Python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, Estimate):
        return obj.to_dict()
    return obj


def _family(model: str) -> str:
    """A model's family from its model string: 'openai/gpt-4o-mini' → 'gpt', 'anthropic/claude-3' → 'claude'."""
    base = model.rsplit("/", 1)[-1].lower()
    head = base.replace("_", "-").split("-")[0]
    return "".join(ch for ch in head if ch.isalpha()) or head


def _header(session: Session, study: StudyData) -> dict[str, Any]:
    from evalsets.freeze import version_label
    from storage.models import EvalSetVersion

    version = session.get(EvalSetVersion, study.version_id)
    return {"set": version_label(session, version) if version else str(study.version_id),
            "version_hash": version.content_hash if version else None,
            "rubric": study.rubric.name, "rubric_hash": study.rubric.content_hash,
            "judge_run": study.judge_run.id, "judge_model": study.judge_run.judge_model}


# --- agreement -------------------------------------------------------------------------------------------------


@dataclass
class AgreementReport:
    header: dict[str, Any]
    criteria: list[dict[str, Any]] = field(default_factory=list)
    position_bias: list[dict[str, Any]] = field(default_factory=list)  # from a pairwise judge run, if any
    manifest: dict[str, Any] | None = None  # what it was computed from (analysis/manifest.py)

    def to_dict(self) -> dict[str, Any]:
        return attach_json(_clean({"header": self.header, "criteria": self.criteria,
                                   "position_bias": self.position_bias}), self.manifest)

    def to_markdown(self) -> str:
        h = self.header
        lines = [f"# Judge–human agreement: {h['set']} · rubric {h['rubric']} ({h['rubric_hash'][:8]})",
                 "", f"Judge: `{h['judge_model']}` (judge run {h['judge_run']}). Intervals are 95 % bootstrap "
                 "intervals over units; n is the number of units both raters labeled.", ""]
        for c in self.criteria:
            if c.get("type") == "pairwise":
                lines += _pairwise_agreement_markdown(c)
                continue
            kind = "check: computed exactly, the judge here is the check itself" if c.get("check") else c["type"]
            lines += [f"## {c['criterion']} ({kind}, {c['level']})", "",
                      f"Human labels: {c['labels_total']} on {c['units']} units by {len(c['annotators'])} "
                      f"annotator(s); {c['outside']} label(s) made outside an assignment (agreement only). "
                      f"{c.get('adjudicated', 0)} unit(s) adjudicated by a reviewer: agreement compares the "
                      "annotators' own labels; calibration uses the adjudicated label there.", ""]
            if c.get("note"):
                lines += [c["note"], ""]
                continue
            lines += ["| measure | value [95 % CI] | n |", "|---|---|---|"]
            for name, key in (("Krippendorff's alpha, judge vs human", "alpha_judge_vs_human"),
                              ("Krippendorff's alpha, all humans", "alpha_humans"),
                              ("Krippendorff's alpha, humans + judge", "alpha_with_judge"),
                              ("Fleiss' kappa, humans", "fleiss_humans")):
                e = c.get(key)
                if e and (e.get("value") is not None or e.get("n")):
                    lines.append(f"| {name} | {_est(Estimate(**e), undefined=UNDEFINED_ONE_CATEGORY)} | {e['n']} |")
            lines.append("")
            if c.get("fleiss_note"):
                lines += [f"Fleiss: {c['fleiss_note']}.", ""]
            lines += ["| raters | kind | n | agreement | Cohen's κ | κ linear | κ quadratic |", "|---|---|---|---|---|---|---|"]
            for p in c["pairs"]:
                cells = [_est(Estimate(**p[k]), undefined=UNDEFINED_ONE_CATEGORY) if p.get(k) else "–"
                         for k in ("percent", "kappa", "kappa_linear", "kappa_quadratic")]
                lines.append(f"| {' vs '.join(p['raters'])} | {p['kind']} | {p['n']} | " + " | ".join(cells) + " |")
            lines.append("")
            for p in c["pairs"]:
                if p["kind"] == "judge-human":
                    lines += [f"Confusion, rows {p['raters'][0]}, columns {p['raters'][1]} (labels {c['label_names']}): "
                              f"`{p['confusion']}`", ""]
            b = c.get("bias") or {}
            if b:
                lines += ["Judge bias on golden units:", ""]
                for name, key in (("leniency (judge − human)", "leniency"), ("verbosity slope per 1,000 chars", "verbosity")):
                    if b.get(key):
                        lines.append(f"- {name}: {_est(Estimate(**b[key]))} (n={b[key]['n']})")
                sp = b.get("self_preference")
                if sp and sp.get("difference"):
                    lines.append(f"- self-preference (own family − others): {_est(Estimate(**sp['difference']))}")
                lines.append("")
            at = c.get("alt_test")
            if at:
                if at.get("passed") is None:
                    lines += [f"Alt-Test: {at['reason']}.", ""]
                else:
                    verdict = "may replace a human annotator" if at["passed"] else "may NOT replace a human annotator"
                    lines += [f"Alt-Test (ε={at['epsilon']}, BY-FDR q={at['q']}): winning rate {_f(at['winning_rate'])} "
                              f"vs threshold {at['threshold']}: the judge {verdict}; advantage probability "
                              f"{_f(at['advantage_probability'])}.", ""]
        if self.position_bias:
            lines += ["## Position bias (pairwise judge run)", ""]
            for pb in self.position_bias:
                e, sw = pb.get("first_position_share"), pb.get("swap_inconsistency")
                if e:
                    lines.append(f"- {pb['criterion']}: first-shown output's score share {_est(e)} (0.5 = none, "
                                 f"n={e.n}, binomial p = {_f(pb.get('p_value'), 4)})"
                                 + (f"; swap inconsistency {_est(sw)} (n={sw.n})" if sw else ""))
            lines.append("")
        return attach_markdown("\n".join(lines).rstrip() + "\n", self.manifest)


def _units_with_humans(cd: CriterionData) -> tuple[np.ndarray, np.ndarray]:
    any_h = np.zeros(cd.judge.shape, bool)
    for arr in cd.humans.values():
        any_h |= np.isfinite(arr)
    return np.nonzero(any_h)


def agreement_report(
    session: Session, version_id: int, rubric_version_id: int, judge_run_id: int | None = None, *, viewer: Viewer,
    n_boot: int = 2000, seed: int = 0, epsilon: float = 0.2, alt_threshold: float = 0.5,
    alpha_level: str | None = None,
) -> AgreementReport:
    """Judge–human and human–human agreement per criterion, judge-bias diagnostics and the Alt-Test.
    `alpha_level` sets Krippendorff's level of measurement for criteria with a scale (default: nominal for
    binary, ordinal for ordinal criteria); categorical criteria stay nominal."""
    viewer.require("review", "agreement")
    from stats.agreement import criterion_agreement
    from stats.alt_test import alt_test
    from stats.bias import leniency, self_preference, verbosity
    from storage.models import JudgeRun

    run = session.get(JudgeRun, judge_run_id) if judge_run_id is not None else None
    if run is not None and run.mode == "pairwise" and run.version_id == version_id \
            and run.rubric_version_id == rubric_version_id:
        return _pairwise_agreement_report(session, version_id, rubric_version_id, run, n_boot=n_boot, seed=seed)
    study = load_study(session, version_id, rubric_version_id, judge_run_id)
    report = AgreementReport(_header(session, study))
    judge_family = _family(study.judge_run.judge_model)
    for cid, cd in study.criteria.items():
        rows, cols = _units_with_humans(cd)
        entry: dict[str, Any] = {
            "criterion": cid, "type": cd.criterion.get("type"), "level": cd.level, "units": int(rows.size),
            "labels_total": cd.labels_total, "outside": cd.outside, "annotators": sorted(cd.humans),
            "adjudicated": cd.adjudicated, "label_names": _label_names(cd), "unscored": int(cd.unscored.sum()),
            "check": bool(cd.criterion.get("check")),
        }
        if rows.size == 0:
            entry["note"] = "No human labels on this criterion yet: nothing to compare the judge with."
            report.criteria.append(entry)
            continue
        judge = cd.judge[rows, cols]
        ratings = {"judge": judge, **{name: arr[rows, cols] for name, arr in sorted(cd.humans.items())}}
        level = alpha_level if alpha_level and cd.criterion.get("type") in ("binary", "ordinal") else cd.level
        entry["level"] = level
        ca = criterion_agreement(ratings, level=level, labels=cd.domain, judge="judge", n_boot=n_boot, seed=seed)  # type: ignore[arg-type]
        entry.update({
            "alpha_judge_vs_human": _d(ca.alpha_judge_vs_human), "alpha_humans": _d(ca.alpha_humans),
            "alpha_with_judge": _d(ca.alpha_with_judge), "fleiss_humans": _d(ca.fleiss_humans),
            "fleiss_note": ca.fleiss_note,
            "pairs": [{k: (_d(v) if isinstance(v, Estimate) else v) for k, v in p.items()} for p in ca.pairs],
        })
        if cd.criterion.get("type") in ("binary", "ordinal"):
            hm = np.nanmean(np.stack([ratings[n] for n in cd.humans]), axis=0) if cd.humans else judge * np.nan
            length = cd.length[rows, cols]
            same_family = np.array([_family(c.model) == judge_family for c in study.candidates], bool)
            fam = same_family[rows] if rows.size else np.zeros(0, bool)
            sp = self_preference(judge, hm, fam) if fam.any() and (~fam).any() else None
            entry["bias"] = {"leniency": _d(leniency(judge, hm)), "verbosity": _d(verbosity(judge, hm, length)),
                             "self_preference": ({k: _d(v) for k, v in sp.items()} if sp else None),
                             "judge_family": judge_family}
        names = sorted(cd.humans)
        entry["alt_test"] = alt_test(np.stack([cd.humans[n][rows, cols] for n in names]), judge, epsilon=epsilon,
                                     threshold=alt_threshold, discrete=cd.criterion.get("type") != "ordinal",
                                     names=names)
        report.criteria.append(entry)
    from analysis.pairwise import position_bias_section

    report.position_bias = position_bias_section(session, version_id, rubric_version_id)
    report.manifest = build_manifest(session, "agreement", version_id, rubric_version_id,
                                     [study.judge_run.id, *(pb.get("judge_run") for pb in report.position_bias)],
                                     reads=study.reads)
    return report


def _pairwise_agreement_report(session: Session, version_id: int, rubric_version_id: int, run: Any, *,
                               n_boot: int, seed: int) -> AgreementReport:
    from analysis.pairwise import pairwise_agreement
    from evalsets.freeze import version_label
    from storage.models import EvalSetVersion, RubricVersion

    version = session.get(EvalSetVersion, version_id)
    rubric = session.get(RubricVersion, rubric_version_id)
    header = {"set": version_label(session, version) if version else str(version_id),
              "version_hash": version.content_hash if version else None, "rubric": rubric.name if rubric else "?",
              "rubric_hash": rubric.content_hash if rubric else "?", "judge_run": run.id,
              "judge_model": run.judge_model, "mode": "pairwise"}
    report = AgreementReport(header)
    report.criteria = pairwise_agreement(session, version_id, rubric_version_id, run, n_boot=n_boot, seed=seed)
    return report


def _pairwise_agreement_markdown(c: dict[str, Any]) -> list[str]:
    lines = [f"## {c['criterion']} (pairwise: A / B / tie)", "",
             (f"Human pairwise labels: {c['labels_total']} on {c['units']} of {c['battles']} battles by "
              f"{len(c['annotators'])} annotator(s); one comparison per human label."), ""]
    if c.get("note"):
        return lines + [c["note"], ""]
    jh, nt = c["judge_vs_human"], c["judge_vs_human_without_ties"]
    lines += ["| measure, judge vs human | value [95 % CI] | n |", "|---|---|---|",
              f"| agreement, A / B / tie | {_est(jh['percent'])} | {jh['n']} |",
              f"| Cohen's κ, A / B / tie | {_est(jh['kappa'])} | {jh['n']} |",
              f"| Krippendorff's α (nominal), A / B / tie | {_est(c['alpha_judge_vs_human'])} | {jh['n']} |",
              f"| agreement without ties | {_est(nt['percent'])} | {nt['n']} |",
              f"| Cohen's κ without ties | {_est(nt['kappa'])} | {nt['n']} |"]
    if c.get("alpha_humans"):
        lines.append(f"| Krippendorff's α (nominal), humans | {_est(c['alpha_humans'])} | {c['alpha_humans'].n} |")
    conf = jh["confusion"]
    lines += ["", "Confusion, rows judge, columns human:", "", "| judge \\ human | B | tie | A |", "|---|---|---|---|"]
    lines += [f"| {name} | " + " | ".join(str(v) for v in row) + " |" for name, row in zip(("B", "tie", "A"), conf)]
    lines.append("")
    for who, label in (("judge", "judge: first-shown output's score share over both orders"),
                       ("human", "humans: score share of the output shown as A")):
        pb = c["position_bias"][who]
        e = pb.get("first_position_share")
        if e:
            sw = pb.get("swap_inconsistency")
            lines.append(f"- position bias, {label}: {_est(e)} (0.5 = none, n={e.n}, binomial p = "
                         f"{_f(pb.get('p_value'), 4)})" + (f"; swap inconsistency {_est(sw)} (n={sw.n})" if sw else ""))
    return lines + [""]


def _label_names(cd: CriterionData) -> list[str]:
    t = cd.criterion.get("type")
    if t == "binary":
        return ["fail", "pass"]
    if t == "categorical":
        return list(cd.criterion.get("labels") or [])
    return [str(int(v)) for v in cd.domain]


# --- calibration per criterion ------------------------------------------------------------------------------


@dataclass
class _Calibration:
    z: np.ndarray  # candidates × items influence values (NaN outside the population)
    rows: list[dict[str, Any]]
    warnings: list[str]


def _design(cd: CriterionData, r: int) -> dict[str, Any]:
    """How candidate r's golden labels were drawn → the arguments of `ppi_mean`."""
    pop = cd.judged[r]
    lab = cd.calib[r]
    strata = cd.strata[r][pop]
    if lab.any() and all(s for s in cd.strata[r][lab]) and all(s for s in strata):
        return {"strata": strata.astype(str)}
    probs = cd.inclusion_prob[r][lab]
    if lab.any() and np.isfinite(probs).all() and np.ptp(probs) > 1e-12:
        return {"inclusion_prob": np.where(lab, cd.inclusion_prob[r], np.nan)[pop]}
    return {}  # one equal-probability draw: a simple random sample


def calibrate_criterion(study: StudyData, cd: CriterionData, *, force: bool = False,
                        lam: float | None = None) -> _Calibration:
    """Per candidate the calibrated mean (power-tuned PPI++ λ by default; `lam` fixes it, λ = 1 being plain
    PPI as papers report it), the human-only and judge-only means and, for binary criteria, Rogan–Gladen."""
    from stats.calibration import (
        human_only_mean,
        judge_only_mean,
        ppi_mean,
        rogan_gladen,
        sensitivity_specificity,
    )

    if cd.criterion.get("check"):
        from analysis.checks import exact_calibration

        return _Calibration(*exact_calibration(study, cd))
    k, n = cd.judge.shape
    binary = cd.criterion.get("type") == "binary"
    clip = (0.0, 1.0) if binary else (min(cd.domain), max(cd.domain))
    z = np.full((k, n), np.nan)
    rows, warnings = [], []
    lab_all = cd.calib
    se = npos = sp = nneg = float("nan")
    if binary and lab_all.any():
        weights = None
        se, npos, sp, nneg = sensitivity_specificity(cd.judge[lab_all], cd.human_mean[lab_all], weights)
    for r, cand in enumerate(study.candidates):
        pop = cd.judged[r]
        yhat = cd.judge[r][pop]
        lab = cd.calib[r][pop]
        y = np.where(cd.calib[r], cd.human_mean[r], np.nan)[pop]
        design = _design(cd, r)
        cal = ppi_mean(yhat, y, lab, clip=clip, lam=lam, **design)
        hum = human_only_mean(y, lab, clip=clip, **design)
        zz = np.full(n, np.nan)
        zz[pop] = cal.z
        z[r] = zz
        warnings += [f"{cand.name}: {w}" for w in cal.warnings]
        row = {"candidate": cand.name, "model": cand.model, "outputs": int(pop.sum()), "golden": int(lab.sum()),
               "unscored": int(cd.unscored[r]), "calibrated": cal.estimate, "lambda": cal.lam,
               "human_only": hum.estimate, "judge_only": judge_only_mean(yhat, clip=clip),
               "design": "stratified" if "strata" in design else "inverse-probability" if design else "random sample",
               "cost_per_1k_usd": cand.cost_per_1k, "latency_p50_ms": cand.latency_p50_ms,
               "latency_p95_ms": cand.latency_p95_ms}
        if binary:
            p_obs = float(np.nanmean(yhat)) if np.isfinite(yhat).any() else float("nan")
            row["rogan_gladen"] = rogan_gladen(p_obs, int(np.isfinite(yhat).sum()), se, npos, sp, nneg)
        rows.append(row)
    return _Calibration(z, rows, warnings)


def _alpha_judge_human(cd: CriterionData) -> float | None:
    from stats.agreement import krippendorff_alpha

    jcol, hcol = [], []
    for arr in cd.humans.values():
        ok = np.isfinite(arr) & np.isfinite(cd.judge)
        jcol.append(cd.judge[ok])
        hcol.append(arr[ok])
    if not jcol or sum(x.size for x in jcol) == 0:
        return None
    a = krippendorff_alpha(np.stack([np.concatenate(jcol), np.concatenate(hcol)]), cd.level, cd.domain)  # type: ignore[arg-type]
    return a if math.isfinite(a) else None


def _gate(study: StudyData, crits: list[str], gate: GateConfig) -> tuple[GateDecision, dict[str, float | None]]:
    labels = {c: {cand.name: int(study.criteria[c].calib[r].sum()) for r, cand in enumerate(study.candidates)}
              for c in crits}
    alpha = {c: _alpha_judge_human(study.criteria[c]) for c in crits}
    unusable = {c: int(study.criteria[c].outside) for c in crits}
    return check_gate(labels, alpha, gate, unusable=unusable), alpha


# --- ranking ---------------------------------------------------------------------------------------------------


@dataclass
class RankingReport:
    header: dict[str, Any]
    criteria: list[dict[str, Any]] = field(default_factory=list)
    force: bool = False
    pairwise: dict[str, Any] | None = None  # Bradley–Terry from a pairwise judge run, when there is one
    manifest: dict[str, Any] | None = None  # what it was computed from (analysis/manifest.py)

    @property
    def withheld(self) -> dict[str, list[str]]:
        out = {c["criterion"]: c["withheld"] for c in self.criteria if c.get("withheld")}
        for c in (self.pairwise or {}).get("criteria", []):  # withheld corrected Bradley–Terry strengths too
            if c.get("withheld"):
                out.setdefault(f"pairwise:{c['criterion']}", []).append(c["withheld"])
        return out

    def to_dict(self) -> dict[str, Any]:
        return attach_json(_clean({"header": self.header, "force": self.force, "withheld": self.withheld,
                                   "criteria": self.criteria, "pairwise": self.pairwise}), self.manifest)

    def to_markdown(self) -> str:
        h = self.header
        out = [f"# Ranking: {h['set']} · rubric {h['rubric']} ({h['rubric_hash'][:8]})", "",
               f"Judge `{h['judge_model']}` (judge run {h['judge_run']}), calibrated against human golden labels "
               f"(prediction-powered, {h.get('lambda', 'PPI++')}). Estimates with 95 % intervals; rank = range of "
               "ranks compatible with the intervals; pairwise differences: paired bootstrap over items, Holm-adjusted. "
               "Where a reviewer adjudicated a disagreement, calibration uses the adjudicated label instead of the "
               "annotators' mean.", ""]
        for c in self.criteria:
            out += [f"## {c['criterion']} ({'check, exact' if c.get('exact') else c['type']})", ""]
            if c.get("note"):
                out += [c["note"], ""]
            for reason in c.get("withheld") or []:
                out.append(f"- **Ranking withheld**: {reason}")
            if c.get("judge_hidden"):
                out.append(f"- **Judge-only numbers hidden**: {c['judge_hidden']}")
            if c.get("withheld") or c.get("judge_hidden"):
                out.append("")
            if c.get("adjudicated"):
                out += [f"Adjudicated labels used in calibration: {c['adjudicated']}.", ""]
            if c.get("alpha_judge_vs_human") is not None:
                out += [f"Judge–human Krippendorff's alpha: {_f(c['alpha_judge_vs_human'])}.", ""]
            rows = c.get("rows") or []
            if not rows:
                continue
            show_judge = any("judge_only" in r for r in rows)
            cols = ["rank", "candidate", "calibrated [95 % CI]", "n golden", "human only, weighted as drawn [95 % CI]"]
            if c["type"] == "binary":
                cols.append("Rogan–Gladen [95 % CI]")
            if show_judge:
                cols.append("judge only [95 % CI]" + (f" ({UNCALIBRATED})" if c.get("judge_marked") else ""))
            cols += ["outputs", "unscored", "$ / 1k items", "latency p50 / p95 ms", "Pareto"]
            out += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            for r in rows:
                cells = [r.get("rank_label", "–"), r["candidate"], _est(r.get("calibrated")), str(r["golden"]),
                         _est(r.get("human_only"))]
                if c["type"] == "binary":
                    cells.append(_est(r.get("rogan_gladen")))
                if show_judge:
                    cells.append(_est(r.get("judge_only")) + (f" {UNCALIBRATED}" if c.get("judge_marked") else ""))
                cost = r.get("cost_per_1k_usd")
                cells += [str(r["outputs"]), str(r["unscored"]), _f(cost, 2) if cost is not None else "n/a",
                          f"{_f(r.get('latency_p50_ms'), 0)} / {_f(r.get('latency_p95_ms'), 0)}",
                          "yes" if r.get("pareto") else ""]
                out.append("| " + " | ".join(cells) + " |")
            out.append("")
            sig = [p for p in c.get("pairs") or [] if p.get("p_holm") is not None and p["p_holm"] < 0.05]
            if c.get("pairs"):
                from stats.ranking import ESTIMANDS

                est = c["pairs"][0].get("estimand", "own")
                out += [(f"Significant paired differences (Holm p < 0.05): {len(sig)} of {len(c['pairs'])} pairs. "
                         f"Each difference is the {ESTIMANDS[est]}; its interval and p-value come from the same "
                         "paired bootstrap over items."), ""]
                for p in sig:
                    out.append(f"- {p['a']} − {p['b']}: {_est(p['difference'])}, p (Holm) = {_f(p['p_holm'], 4)}")
                if sig:
                    out.append("")
            for w in c.get("warnings") or []:
                out.append(f"- note: {w}")
        out += _pairwise_markdown(self.pairwise)
        return attach_markdown("\n".join(out).rstrip() + "\n", self.manifest)


def _pairwise_markdown(section: dict[str, Any] | None) -> list[str]:
    if not section:
        return []
    out = ["", f"## Pairwise: Bradley–Terry strengths (judge run {section['judge_run']}, `{section['judge_model']}`)", "",
           "Log-strengths (0 = average), 95 % bootstrap intervals over battles; ties count half a win. Corrected "
           "strengths use the golden human pairwise labels (prediction-powered, Chatzi et al. 2024).", ""]
    for c in section["criteria"]:
        out += [f"### {c['criterion']}: {c['battles']} battles, {c['unscored']} unscored, {c['golden']} golden", ""]
        if c.get("note"):
            out += [c["note"], ""]
            continue
        if c.get("withheld"):
            out.append(f"- **Corrected strengths withheld**: {c['withheld']}")
        if c.get("judge_hidden"):
            out.append(f"- **Judge-only strengths hidden**: {c['judge_hidden']}")
        out.append("")
        if c.get("calibrated"):
            human = {r["candidate"]: r["strength"] for r in c.get("human_only") or []}
            out += ["| rank | candidate | corrected strength [95 % CI] | human only, golden battles [95 % CI] |",
                    "|---|---|---|---|"]
            for r in c["calibrated"]:
                lo, hi = r["rank"]
                h = _est(human[r["candidate"]]) if r["candidate"] in human else "no golden battle"
                out.append(f"| {lo if lo == hi else f'{lo}–{hi}'} | {r['candidate']} | {_est(r['strength'])} | {h} |")
            out.append("")
        if c.get("judge_only"):
            mark = f" ({UNCALIBRATED})" if any(r.get("marked") for r in c["judge_only"]) else ""
            out += [f"| candidate | judge-only strength [95 % CI]{mark} |", "|---|---|"]
            for r in sorted(c["judge_only"], key=lambda r: -r["strength"].value):
                out.append(f"| {r['candidate']} | {_est(r['strength'])}{mark} |")
            out.append("")
        pb = c.get("position_bias") or {}
        if pb.get("first_position_share"):
            e = pb["first_position_share"]
            out.append(f"- position bias: first-shown output's score share {_est(e)} (0.5 = none; n={e.n}, "
                       f"binomial p = {_f(pb.get('p_value'), 4)})")
        if pb.get("swap_inconsistency"):
            e = pb["swap_inconsistency"]
            out.append(f"- swap inconsistency: {_est(e)} of pairs change verdict when the order is swapped (n={e.n})")
        out.append("")
    return out


def _pairwise_only(session: Session, version_id: int, rubric_version_id: int, pairwise: dict[str, Any] | None,
                   force: bool) -> RankingReport:
    from evalsets.freeze import version_label
    from storage.models import EvalSetVersion, RubricVersion

    version = session.get(EvalSetVersion, version_id)
    rubric = session.get(RubricVersion, rubric_version_id)
    header = {"set": version_label(session, version) if version else str(version_id),
              "version_hash": version.content_hash if version else None, "rubric": rubric.name if rubric else "?",
              "rubric_hash": rubric.content_hash if rubric else "?", "judge_run": (pairwise or {}).get("judge_run"),
              "judge_model": (pairwise or {}).get("judge_model")}
    return RankingReport(header, [], force=force, pairwise=pairwise,
                         manifest=build_manifest(session, "rank", version_id, rubric_version_id,
                                                 [(pairwise or {}).get("judge_run")]))


def ranking_report(
    session: Session, version_id: int, rubric_version_id: int, *, viewer: Viewer, force: bool = False,
    gate: GateConfig = GateConfig(), judge_run_id: int | None = None, n_boot: int = 2000, seed: int = 0,
    estimand: str = "own", lam: float | None = None,
) -> RankingReport:
    """Candidates ranked per criterion by calibrated estimate, gated (see `stats.gate`)."""
    viewer.require("review", "rankings")
    from analysis.pairwise import latest_pairwise_run, pairwise_section
    from stats.ranking import pareto_front, rank_by_influence, rank_ranges
    from storage.errors import InputError
    from storage.models import JudgeRun

    chosen = session.get(JudgeRun, judge_run_id) if judge_run_id is not None else None
    if judge_run_id is not None and (chosen is None or chosen.version_id != version_id
                                     or chosen.rubric_version_id != rubric_version_id):
        raise InputError(f"judge run {judge_run_id} does not belong to this version and rubric", where="--judge-run",
                         hint="list them with `ownbench judge-runs list --set … --rubric …`")
    pairwise_run = chosen.id if chosen is not None and chosen.mode == "pairwise" else None
    pairwise = pairwise_section(session, version_id, rubric_version_id, n_boot=min(n_boot, 2000), seed=seed,
                                min_labels=gate.min_labels, min_alpha=gate.min_alpha, force=force,
                                judge_run_id=pairwise_run)
    if pairwise_run is not None:  # a pairwise run asked for: Bradley–Terry only
        return _pairwise_only(session, version_id, rubric_version_id, pairwise, force)
    try:
        study = load_study(session, version_id, rubric_version_id, judge_run_id)
    except InputError:
        if judge_run_id is not None or latest_pairwise_run(session, version_id, rubric_version_id) is None:
            raise
        return _pairwise_only(session, version_id, rubric_version_id, pairwise, force)
    report = RankingReport(_header(session, study), force=force, pairwise=pairwise)
    report.header["lambda"] = "PPI++, λ power-tuned" if lam is None else f"PPI, λ fixed at {lam:g}"
    numeric = [c for c, cd in study.criteria.items() if cd.criterion.get("type") in ("binary", "ordinal")]
    # check criteria are exact: no calibration, so no gate (see analysis/checks.py)
    decision, alpha = _gate(study, [c for c in numeric if not study.criteria[c].criterion.get("check")], gate)
    for cid, cd in study.criteria.items():
        entry: dict[str, Any] = {"criterion": cid, "type": cd.criterion.get("type"), "adjudicated": cd.adjudicated}
        if cd.criterion.get("check"):
            from analysis.checks import exact_entry

            report.criteria.append(exact_entry(study, cd, n_boot=n_boot, seed=seed))
            continue
        if cid not in numeric:
            entry["note"] = ("Categorical criterion: agreement only (see `ownbench agreement`); a ranking needs a "
                             "criterion with a scale (binary or ordinal).")
            report.criteria.append(entry)
            continue
        entry["alpha_judge_vs_human"] = alpha[cid]
        entry["withheld"] = decision.withheld.get(cid, [])
        if cid in decision.judge_hidden:
            entry["judge_hidden"] = decision.judge_hidden[cid] + (" (shown anyway with --force, marked "
                                                                   f"{UNCALIBRATED!r})" if force else "")
        show_judge = force or decision.judge_shown(cid)
        entry["judge_marked"] = force or bool(entry["withheld"])
        cal = calibrate_criterion(study, cd, force=force, lam=lam)
        rows = cal.rows
        if entry["withheld"]:
            # no calibrated interval means anything yet; with --force the judge's own numbers, marked
            entry["rows"] = ([{"candidate": r["candidate"], "judge_only": r["judge_only"], "outputs": r["outputs"],
                               "unscored": r["unscored"], "golden": r["golden"],
                               "cost_per_1k_usd": r["cost_per_1k_usd"], "latency_p50_ms": r["latency_p50_ms"],
                               "latency_p95_ms": r["latency_p95_ms"]} for r in rows] if force else [])
            report.criteria.append(entry)
            continue
        names = [c.name for c in study.candidates]
        ranking = rank_by_influence(cal.z, names, n_boot=n_boot, seed=seed, n_labeled=[r["golden"] for r in rows],
                                    method="calibrated (PPI++)", estimand=estimand)
        quality = np.array([r["calibrated"].value for r in rows])
        cost = np.array([r["cost_per_1k_usd"] if r["cost_per_1k_usd"] is not None else np.nan for r in rows])
        front = pareto_front(quality, cost)
        # shown intervals: the PPI++ t intervals (their coverage is what the simulations check); rank ranges
        # from their overlap; paired differences from the paired bootstrap
        ranges = rank_ranges(quality, np.array([r["calibrated"].low for r in rows]),
                             np.array([r["calibrated"].high for r in rows]))
        ordered = []
        for i in ranking.order:
            r = dict(rows[i])
            lo, hi = ranges[i]
            r["rank"] = [lo, hi]
            r["rank_label"] = str(lo) if lo == hi else f"{lo}–{hi}"
            r["pareto"] = bool(front[i]) if np.isfinite(cost[i]) else None  # no cost known: no claim
            if not show_judge:
                r.pop("judge_only", None)
            ordered.append(r)
        entry["rows"] = ordered
        entry["pairs"] = ranking.pairs
        entry["warnings"] = cal.warnings
        report.criteria.append(entry)
    report.manifest = build_manifest(session, "rank", version_id, rubric_version_id,
                                     [study.judge_run.id, (pairwise or {}).get("judge_run")], reads=study.reads)
    return report


# --- compare ---------------------------------------------------------------------------------------------------


@dataclass
class CompareReport:
    header: dict[str, Any]
    baseline: str
    candidate: str
    level: float
    criteria: list[dict[str, Any]] = field(default_factory=list)
    regressions: list[dict[str, Any]] = field(default_factory=list)
    manifest: dict[str, Any] | None = None  # what it was computed from (analysis/manifest.py)

    @property
    def regressed(self) -> bool:
        """A drop significant at the configured level after Holm's correction across criteria."""
        return any(c.get("significant_drop") for c in self.criteria)

    def to_dict(self) -> dict[str, Any]:
        return attach_json(_clean({"header": self.header, "baseline": self.baseline, "candidate": self.candidate,
                                   "level": self.level, "regressed": self.regressed, "criteria": self.criteria,
                                   "regressions": self.regressions}), self.manifest)

    def to_markdown(self) -> str:
        h = self.header
        withheld = [c["criterion"] for c in self.criteria if c.get("withheld")]
        verdict = ("**Significant regression**" if self.regressed else
                   f"**Withheld** on {', '.join(withheld)}: no verdict there; no significant regression on the rest"
                   if withheld and len(withheld) < len(self.criteria) else
                   "**Withheld**: too few golden labels for a verdict" if withheld else "No significant regression")
        out = [f"# Compare: {self.candidate} vs baseline {self.baseline}", "",
               f"{h['set']} · rubric {h['rubric']} ({h['rubric_hash'][:8]}) · judge `{h['judge_model']}`. "
               f"{verdict} at level {self.level} (Holm across criteria).", "",
               "| criterion | baseline | candidate | difference [95 % CI] | p | p (Holm) | n items | verdict |",
               "|---|---|---|---|---|---|---|---|"]
        for c in self.criteria:
            if c.get("withheld"):
                out.append(f"| {c['criterion']} | – | – | withheld | – | – | – | {'; '.join(c['withheld'])} |")
                continue
            v = "significant drop" if c["significant_drop"] else (
                "significant gain" if c["significant_gain"] else "no significant change")
            out.append(f"| {c['criterion']} | {_est(c['baseline'])} | {_est(c['candidate'])} | {_est(c['difference'])} | "
                       f"{_f(c['p_value'], 4)} | {_f(c['p_holm'], 4)} | {c['difference']['n'] if isinstance(c['difference'], dict) else c['difference'].n} | {v} |")
        out.append("")
        one_sided = max((c.get("items_only_one_answered") or 0 for c in self.criteria), default=0)
        out += ["Each difference is the mean difference over the items both candidates answered; its interval and "
                "p-value come from the same paired bootstrap over those items"
                + (f" ({one_sided} item(s) answered by only one of them are left out)." if one_sided else "."), ""]
        for c in self.criteria:
            for key, label in (("mcnemar_judge", "judge verdicts"), ("mcnemar_human", "human labels")):
                m = c.get(key)
                if m:
                    out.append(f"- {c['criterion']}: exact McNemar on paired {label}: baseline-only pass "
                               f"{m['a_only']}, candidate-only pass {m['b_only']}, p = {_f(m['p_value'], 4)} (n={m['n']})"
                               + (f" — {UNCALIBRATED}" if key == "mcnemar_judge" else ""))
        for c in self.criteria:
            if c.get("regressions_note"):
                out.append(f"- {c['criterion']}: {c['regressions_note']}")
        out += ["", f"## Per-item regressions ({len(self.regressions)})", "",
                "Items where the baseline was good and the candidate bad (by human label where both were "
                "labeled, otherwise by the judge).", ""]
        if self.regressions:
            out += ["| item | criterion | baseline | candidate | by |", "|---|---|---|---|---|"]
            for r in self.regressions[:200]:
                out.append(f"| {r['item']} | {r['criterion']} | {r['baseline']} | {r['candidate']} | {r['source']} |")
            if len(self.regressions) > 200:
                out.append(f"\n… and {len(self.regressions) - 200} more (see --json).")
        return attach_markdown("\n".join(out).rstrip() + "\n", self.manifest)


def compare_report(
    session: Session, version_id: int, rubric_version_id: int, baseline: str, candidate: str, *, viewer: Viewer,
    level: float = 0.05, gate: GateConfig = GateConfig(), judge_run_id: int | None = None,
    n_boot: int = 2000, seed: int = 0, force: bool = False, lam: float | None = None,
) -> CompareReport:
    """Per criterion the calibrated difference candidate − baseline on the same items (paired bootstrap over
    items of the prediction-powered influence values), its p-value, Holm across criteria; the per-item list of
    regressions; exact McNemar on paired binary verdicts beside it."""
    from sqlmodel import select

    viewer.require("review", "comparisons of candidates")
    from stats.estimate import percentile_interval
    from stats.ranking import bootstrap_item_means, bootstrap_p_value, holm, mcnemar_exact
    from storage.errors import InputError
    from storage.models import Item

    if baseline == candidate:
        raise InputError("baseline and candidate are the same", where="--candidate", hint="compare two candidates")
    study = load_study(session, version_id, rubric_version_id, judge_run_id)
    names = [c.name for c in study.candidates]
    for name, flag in ((baseline, "--baseline"), (candidate, "--candidate")):
        if name not in names:
            raise InputError(f"candidate {name!r} has no judged outputs in this judge run", where=flag,
                             hint=f"judged candidates: {', '.join(names) or 'none'}")
    ib, ic = names.index(baseline), names.index(candidate)
    report = CompareReport(_header(session, study), baseline, candidate, level)
    keys = {i.id: i.item_key for i in session.exec(select(Item).where(Item.version_id == version_id))}
    numeric = [c for c, cd in study.criteria.items() if cd.criterion.get("type") in ("binary", "ordinal")]
    decision, alpha = _gate(_restrict(study, [ib, ic]), numeric, gate)
    for cid in numeric:  # check criteria are exact: never withheld, their verdicts always listed
        if study.criteria[cid].criterion.get("check"):
            decision.withheld.pop(cid, None)
            decision.judge_hidden.pop(cid, None)
    tested = []
    for cid in numeric:
        cd = study.criteria[cid]
        entry: dict[str, Any] = {"criterion": cid, "type": cd.criterion.get("type"), "withheld": decision.withheld.get(cid, []),
                                 "alpha_judge_vs_human": alpha.get(cid), "significant_drop": False,
                                 "significant_gain": False}
        # per-item regressions: human label where both outputs were labeled, else the judge's verdicts (only
        # where the judge may stand in for the humans, or with force)
        judge_listed = force or decision.judge_shown(cid)
        if not judge_listed:
            entry["regressions_note"] = ("per-item regressions by the judge are hidden: " + decision.judge_hidden[cid])
        for col, item_id in enumerate(study.item_ids):
            hb, hc = cd.human_mean[ib, col], cd.human_mean[ic, col]
            jb, jc = cd.judge[ib, col], cd.judge[ic, col]
            if np.isfinite(hb) and np.isfinite(hc):
                b, c, src = hb, hc, "human"
            elif judge_listed and np.isfinite(jb) and np.isfinite(jc):
                b, c, src = jb, jc, "judge" if decision.judge_shown(cid) else f"judge ({UNCALIBRATED})"
            else:
                continue
            worse = (b >= 0.5 and c < 0.5) if cd.criterion.get("type") == "binary" else c < b
            if worse:
                report.regressions.append({"item": keys.get(item_id, str(item_id)), "criterion": cid,
                                           "baseline": _verdict(cd, b), "candidate": _verdict(cd, c), "source": src})
        if cd.criterion.get("type") == "binary":
            entry["mcnemar_human"] = mcnemar_exact(cd.human_mean[ib], cd.human_mean[ic]) if (
                np.isfinite(cd.human_mean[ib]) & np.isfinite(cd.human_mean[ic])).any() else None
            if force or decision.judge_shown(cid):
                entry["mcnemar_judge"] = mcnemar_exact(cd.judge[ib], cd.judge[ic])
        if entry["withheld"]:
            report.criteria.append(entry)
            continue
        cal = calibrate_criterion(_restrict(study, [ib, ic]), _restrict_cd(cd, [ib, ic]), lam=lam)
        z = cal.z
        both = np.isfinite(z[0]) & np.isfinite(z[1])
        boot = bootstrap_item_means(z[:, both], n_boot=n_boot, seed=seed)
        d = float(np.mean(z[1, both] - z[0, both]))
        dd = boot[1] - boot[0]
        entry["baseline"] = cal.rows[0]["calibrated"]
        entry["candidate"] = cal.rows[1]["calibrated"]
        entry["difference"] = percentile_interval(d, dd, int(both.sum()), "candidate − baseline, paired bootstrap; "
                                                  "mean difference over the items both candidates answered")
        entry["estimand"] = "shared"
        entry["items_only_one_answered"] = int((np.isfinite(z[0]) ^ np.isfinite(z[1])).sum())
        entry["p_value"] = bootstrap_p_value(d, dd, int(both.sum()))
        entry["warnings"] = cal.warnings
        tested.append(entry)
        report.criteria.append(entry)
    adj = holm(np.array([e["p_value"] for e in tested])) if tested else []
    for e, p in zip(tested, adj):
        e["p_holm"] = float(p)
        e["significant_drop"] = bool(e["difference"].value < 0 and p < level)
        e["significant_gain"] = bool(e["difference"].value > 0 and p < level)
    report.manifest = build_manifest(session, "compare", version_id, rubric_version_id, [study.judge_run.id],
                                     {"baseline": baseline, "candidate": candidate}, reads=study.reads)
    return report


def _verdict(cd: CriterionData, v: float) -> str:
    t = cd.criterion.get("type")
    if t == "binary":
        return "pass" if v >= 0.5 else "fail"
    return f"{v:g}"


def _restrict_cd(cd: CriterionData, rows: list[int]) -> CriterionData:
    return CriterionData(cd.criterion, cd.domain, cd.level, cd.judge[rows], cd.judged[rows], cd.unscored[rows],
                         {k: v[rows] for k, v in cd.humans.items()}, cd.human_mean[rows], cd.calib[rows],
                         cd.strata[rows], cd.inclusion_prob[rows], cd.outside, cd.labels_total, cd.length[rows])


def _restrict(study: StudyData, rows: list[int]) -> StudyData:
    s = StudyData(study.version_id, study.rubric, study.judge_run, [study.candidates[r] for r in rows], study.item_ids)
    s.criteria = {c: _restrict_cd(cd, rows) for c, cd in study.criteria.items()}
    return s
