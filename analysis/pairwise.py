"""Pairwise judgments (A vs B on the same item) as battles: Bradley–Terry strengths, corrected with golden
human pairwise labels in the prediction-powered way, and the judge's position bias.

Scores follow the shared encoding: A's win 1, tie 0.5, B's win 0. Human pairwise labels count for the
correction when they were made on an assigned golden unit or carry an inclusion probability; within each pair
of candidates the labeled battles are treated as a simple random sample of that pair's battles.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlmodel import Session, select

from storage.models import Annotator, Candidate, GoldenAssignment, JudgeRun, Judgment, Label, Output, Run

POSITION_SCORE = {"1": 1.0, "2": 0.0, "tie": 0.5}


@dataclass
class Battles:
    criterion: str
    names: list[str]
    a: np.ndarray
    b: np.ndarray
    judge: np.ndarray  # A's score by the judge (NaN unscored)
    human: np.ndarray  # mean human score for A (NaN unlabeled)
    labeled: np.ndarray  # usable for the correction
    first_ab: np.ndarray  # score of the first-shown output, A shown first (NaN unknown)
    first_ba: np.ndarray  # same with B shown first
    humans: dict[str, np.ndarray] | None = None  # annotator → A's score by that annotator (NaN unlabeled)


def judge_position_bias(bt: Battles) -> dict[str, Any]:
    """The judge's first-shown score share over every presentation (both orders), and, on pairs shown both
    ways, the swap inconsistency. Only the inconsistency is taken from the paired call: its share would count
    the A-first presentations alone."""
    from stats.bias import position_bias

    out = position_bias(np.concatenate([bt.first_ab, bt.first_ba]), None)
    both = np.isfinite(bt.first_ab) & np.isfinite(bt.first_ba)
    if both.any():
        swap = position_bias(bt.first_ab[both], bt.first_ba[both]).get("swap_inconsistency")
        if swap is not None:
            out["swap_inconsistency"] = swap
    return out


def latest_pairwise_run(session: Session, version_id: int, rubric_version_id: int) -> JudgeRun | None:
    return session.exec(select(JudgeRun).where(JudgeRun.version_id == version_id,
                                               JudgeRun.rubric_version_id == rubric_version_id,
                                               JudgeRun.mode == "pairwise").order_by(JudgeRun.id.desc())).first()  # type: ignore[union-attr]


def load_battles(session: Session, version_id: int, rubric_version_id: int, judge_run: JudgeRun) -> dict[str, Battles]:
    cand_of_run = {r.id: r.candidate_id for r in session.exec(select(Run).where(Run.version_id == version_id))}
    names = {c.id: c.name for c in session.exec(select(Candidate))}
    out_cand: dict[int, int] = {}
    for o_id, run_id in session.exec(select(Output.id, Output.run_id).where(Output.run_id.in_(list(cand_of_run)))):  # type: ignore[union-attr]
        out_cand[o_id] = cand_of_run[run_id]
    latest: dict[tuple[str, int, int], Judgment] = {}
    for j in session.exec(select(Judgment).where(Judgment.judge_run_id == judge_run.id).order_by(Judgment.id)):  # type: ignore[arg-type]
        if j.output_b_id is not None:
            latest[(j.criterion_id, j.output_id, j.output_b_id)] = j
    assigned = set(session.exec(select(GoldenAssignment.annotator_id, GoldenAssignment.golden_unit_id)).all())
    human: dict[tuple[str, int, int], dict[int, float]] = {}
    usable: set[tuple[str, int, int]] = set()
    for lab in session.exec(select(Label).where(Label.rubric_version_id == rubric_version_id,
                                                Label.output_b_id.is_not(None)).order_by(Label.id)):  # type: ignore[union-attr]
        if lab.score is None or lab.skipped:
            continue
        key = (lab.criterion_id, lab.output_id, lab.output_b_id)
        score = float(lab.score)
        flipped = (lab.criterion_id, lab.output_b_id, lab.output_id)
        if key not in latest and flipped in latest:  # labeled with A and B the other way round than judged
            key, score = flipped, 1.0 - score
        human.setdefault(key, {})[lab.annotator_id] = score  # type: ignore[index]
        if (lab.golden_unit_id and (lab.annotator_id, lab.golden_unit_id) in assigned) or lab.inclusion_prob:
            usable.add(key)  # type: ignore[arg-type]
    ann_names = {a.id: a.name for a in session.exec(select(Annotator))}
    cids = sorted({out_cand[o] for (_, o, ob) in latest if o in out_cand and ob in out_cand} |
                  {out_cand[ob] for (_, o, ob) in latest if o in out_cand and ob in out_cand}, key=lambda c: names[c])
    index = {c: i for i, c in enumerate(cids)}
    out: dict[str, Any] = {}
    for crit in sorted({k[0] for k in latest}):
        keys = [k for k in latest if k[0] == crit and k[1] in out_cand and k[2] in out_cand]
        rows = []
        for key in keys:
            j = latest[key]
            fa = fb = np.nan
            for entry in (j.details or {}).get("orders", []):
                if entry.get("status") == "scored" and entry.get("position_verdict") in POSITION_SCORE:
                    if entry.get("first") == "A":
                        fa = POSITION_SCORE[entry["position_verdict"]]
                    else:
                        fb = POSITION_SCORE[entry["position_verdict"]]
            h = human.get(key)
            rows.append((index[out_cand[key[1]]], index[out_cand[key[2]]],
                         j.score if j.status == "scored" and j.score is not None else np.nan,
                         float(np.mean(list(h.values()))) if h else np.nan, key in usable and bool(h), fa, fb))
        arr = list(zip(*rows)) if rows else [[]] * 7
        per_ann: dict[str, np.ndarray] = {}
        for pos, key in enumerate(keys):
            for ann, score in (human.get(key) or {}).items():
                name = ann_names.get(ann, str(ann))
                per_ann.setdefault(name, np.full(len(keys), np.nan))[pos] = score
        out[crit] = Battles(crit, [names[c] for c in cids], np.array(arr[0], int), np.array(arr[1], int),
                            np.array(arr[2], float), np.array(arr[3], float), np.array(arr[4], bool),
                            np.array(arr[5], float), np.array(arr[6], float), per_ann)
    return out


def pairwise_section(session: Session, version_id: int, rubric_version_id: int, *, n_boot: int = 2000,
                     seed: int = 0, min_labels: int = 30, min_alpha: float = 0.667,
                     force: bool = False, judge_run_id: int | None = None) -> dict[str, Any] | None:
    """Bradley–Terry strengths per criterion: judge-only and prediction-powered; None without a pairwise run.
    `judge_run_id` picks the pairwise run (default: the latest, and the section says it was picked so)."""
    run = (session.get(JudgeRun, judge_run_id) if judge_run_id is not None
           else latest_pairwise_run(session, version_id, rubric_version_id))
    if run is None:
        return None
    # imported only here: scipy.stats costs seconds of start-up that a pointwise ranking does not need
    from stats.agreement import krippendorff_alpha
    from stats.bias import position_bias
    from stats.ranking import bradley_terry, ppi_bradley_terry, rank_ranges

    section: dict[str, Any] = {"judge_run": run.id, "judge_model": run.judge_model,
                               "judge_run_picked": "given" if judge_run_id is not None else "latest pairwise run",
                               "criteria": []}
    for crit, bt in load_battles(session, version_id, rubric_version_id, run).items():
        k = len(bt.names)
        scored = np.isfinite(bt.judge)
        entry: dict[str, Any] = {"criterion": crit, "battles": int(bt.a.size), "unscored": int((~scored).sum()),
                                 "golden": int(bt.labeled.sum())}
        if k < 2 or scored.sum() == 0:
            entry["note"] = "not enough scored battles"
            section["criteria"].append(entry)
            continue
        both_rated = scored & np.isfinite(bt.human)
        alpha = (krippendorff_alpha(np.stack([bt.judge[both_rated], bt.human[both_rated]]), "ordinal",
                                    [0.0, 0.5, 1.0]) if both_rated.sum() >= 2 else float("nan"))
        entry["alpha_judge_vs_human"] = alpha
        if not (np.isfinite(alpha) and alpha >= min_alpha):
            entry["judge_hidden"] = (f"judge–human Krippendorff's alpha (ordinal: B < tie < A) on {crit!r} is "
                                     + (f"{alpha:.3f}, below {min_alpha}" if np.isfinite(alpha) else "not measurable yet")
                                     + ": the judge cannot stand in for the humans; corrected strengths only")
        if force or "judge_hidden" not in entry:
            judge_bt = bradley_terry(bt.a[scored], bt.b[scored], bt.judge[scored], k, n_boot=n_boot, seed=seed)
            entry["judge_only"] = [{"candidate": n, "strength": e, "marked": "uncalibrated" if force else None}
                                   for n, e in zip(bt.names, judge_bt)]
        if bt.labeled.sum() >= min_labels:
            cal = ppi_bradley_terry(bt.a, bt.b, bt.judge, bt.human, bt.labeled, k, n_boot=n_boot, seed=seed)
            ranges = rank_ranges(np.array([e.value for e in cal]), np.array([e.low for e in cal]),
                                 np.array([e.high for e in cal]))
            order = np.argsort([-e.value for e in cal])
            entry["calibrated"] = [{"candidate": bt.names[i], "strength": cal[i], "rank": list(ranges[i])} for i in order]
            # the same golden battles without the judge: what the correction is measured against
            hl = bt.labeled & np.isfinite(bt.human)
            human = bradley_terry(bt.a[hl], bt.b[hl], bt.human[hl], k, n_boot=n_boot, seed=seed)
            entry["human_only"] = [{"candidate": bt.names[i], "strength": human[i]}
                                   for i in np.argsort([-e.value for e in human]) if human[i].n > 0]
        else:
            entry["withheld"] = (f"{int(bt.labeled.sum())} golden human pairwise labels on {crit!r}; at least "
                                 f"{min_labels} are needed before the corrected strengths mean anything")
        entry["position_bias"] = judge_position_bias(bt)
        section["criteria"].append(entry)
    return section


def position_bias_section(session: Session, version_id: int, rubric_version_id: int,
                          judge_run_id: int | None = None) -> list[dict[str, Any]]:
    """Per criterion of a pairwise judge run (default: the latest): first-position win share and swap
    inconsistency."""
    run = (session.get(JudgeRun, judge_run_id) if judge_run_id is not None
           else latest_pairwise_run(session, version_id, rubric_version_id))
    if run is None:
        return []
    out = []
    for crit, bt in load_battles(session, version_id, rubric_version_id, run).items():
        out.append({"criterion": crit, "judge_run": run.id, **judge_position_bias(bt)})
    return out


PAIR_LABELS = [0.0, 1.0, 2.0]  # codes of B wins, tie, A wins (twice A's score: whole numbers for the κ code)
PAIR_NAMES = ["B", "tie", "A"]


def pairwise_agreement(session: Session, version_id: int, rubric_version_id: int, run: JudgeRun, *,
                       n_boot: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
    """Judge–human agreement on a pairwise run, per criterion: one reliability unit per human label (judge
    verdict, that human's verdict) on A/B/tie, so it measures how well the judge stands in for one human;
    percent agreement with ties and without (units where neither said tie), Cohen's κ and Krippendorff's α
    (nominal) on A/B/tie, the confusion matrix; position bias of the judge (first-shown output's score share
    over both orders) beside the humans' (share for the output they saw as A); human–human α where a battle
    has two or more human labels."""
    from stats.agreement import alpha_interval, pair_agreement
    from stats.bias import position_bias

    out = []
    for crit, bt in load_battles(session, version_id, rubric_version_id, run).items():
        humans = bt.humans or {}
        jcol, hcol, hfirst = [], [], []
        for arr in humans.values():
            ok = np.isfinite(arr) & np.isfinite(bt.judge)
            jcol.append(bt.judge[ok])
            hcol.append(arr[ok])
            hfirst.append(arr[np.isfinite(arr)])
        j = 2 * np.concatenate(jcol) if jcol else np.zeros(0)
        h = 2 * np.concatenate(hcol) if hcol else np.zeros(0)
        labeled_units = int(np.isfinite(bt.human).sum())
        entry: dict[str, Any] = {"criterion": crit, "type": "pairwise", "level": "nominal", "units": labeled_units,
                                 "battles": int(bt.a.size), "labels_total": int(sum(np.isfinite(a).sum() for a in humans.values())),
                                 "outside": 0, "annotators": sorted(humans), "label_names": PAIR_NAMES,
                                 "unscored": int((~np.isfinite(bt.judge)).sum())}
        if j.size == 0:
            entry["note"] = "No human pairwise label on a scored battle yet: nothing to compare the judge with."
            out.append(entry)
            continue
        pa = pair_agreement(j, h, PAIR_LABELS, n_boot=n_boot, seed=seed)
        decisive = (j != 1) & (h != 1)
        pn = pair_agreement(j[decisive], h[decisive], [0.0, 2.0], n_boot=n_boot, seed=seed)
        entry["judge_vs_human"] = {"n": pa["n"], "percent": pa["percent"], "kappa": pa["kappa"],
                                   "confusion": pa["confusion"].tolist()}
        entry["judge_vs_human_without_ties"] = {"n": pn["n"], "percent": pn["percent"], "kappa": pn["kappa"]}
        entry["alpha_judge_vs_human"] = alpha_interval(np.stack([j, h]), "nominal", value_domain=PAIR_LABELS,
                                                       n_boot=n_boot, seed=seed)
        if len(humans) >= 2:
            hm = 2 * np.stack(list(humans.values()))
            if (np.isfinite(hm).sum(axis=0) >= 2).sum() >= 2:
                entry["alpha_humans"] = alpha_interval(hm, "nominal", value_domain=PAIR_LABELS, n_boot=n_boot,
                                                       seed=seed)
        entry["position_bias"] = {"judge": judge_position_bias(bt),
                                  "human": position_bias(np.concatenate(hfirst) if hfirst else np.zeros(0), None)}
        out.append(entry)
    return out
