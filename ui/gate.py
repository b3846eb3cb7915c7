"""Whether rankings are unlocked, in words, from the statistics area's ranking report."""
from __future__ import annotations

from sqlmodel import Session

from analysis import reports
from analysis.people import Viewer
from storage.models import EvalSet, EvalSetVersion, RubricVersion
from ui import common, queries
from ui.render import inline


def pair_title(s: Session, version_id: int, rubric_version_id: int) -> str:
    v = s.get(EvalSetVersion, version_id)
    es = s.get(EvalSet, v.eval_set_id) if v else None
    r = s.get(RubricVersion, rubric_version_id)
    return f"{es.name if es else '?'}@{v.number if v else '?'} × {r.name if r else '?'} ({r.content_hash[:8] if r else ''})"


def ranking_status(url: str, viewer: Viewer) -> list[str]:
    """One sentence per (version, rubric) with a golden subset: what still blocks its ranking, or that it is open."""
    pairs = queries.golden_pairs(url, viewer)
    lines = []
    with Session(common.engine()) as s:
        for version_id, rubric_id, _n in pairs:
            title = inline(pair_title(s, version_id, rubric_id))
            try:
                report = reports.ranking_report(s, version_id, rubric_id, viewer=viewer)
            except Exception as exc:  # noqa: BLE001 - shown as words, the page must stay up
                lines.append(f"{title}: the ranking could not be computed ({inline(exc)}).")
                continue
            withheld = getattr(report, "withheld", None) or {}
            header = getattr(report, "header", None) or {}
            pairwise = getattr(report, "pairwise", None) or {}
            used = [(pairwise.get("judge_run"), pairwise.get("judge_model"), "pairwise")]
            if header.get("judge_run") not in (None, pairwise.get("judge_run")):
                used.insert(0, (header.get("judge_run"), header.get("judge_model"), "pointwise"))
            # the overview has no choice to offer: it says which runs (the latest of each mode) it looked at
            title += " (" + "; ".join(f"the latest {mode} judge run, {run} with judge {inline(model)}"
                                      for run, model, mode in used if run is not None) + ")"
            if withheld:
                reasons = "; ".join(inline(why) for whys in withheld.values() for why in whys)
                lines.append(f"{title}: rankings are withheld: {reasons}.")
            else:
                lines.append(f"{title}: rankings are unlocked; see the **Rankings** page.")
    return lines or ["Label the golden subset on the **Label** page."]
