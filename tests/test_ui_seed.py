"""A seeded project for the app's tests and benchmark.

Everything judge- or human-shaped here is SIMULATED (drawn from a seeded random generator): judgments, golden
units, assignments and, when asked for, labels. It exists only to give the pages and the labeling queue
something to show; the product never presents such rows as real.

The prompts are real Chatbot Arena questions from ../shared/data/arena_hard_1k (lm-sys/FastChat, Apache-2.0)
when that directory exists, else short fixed prompts.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from evalsets.freeze import ItemDraft, freeze
from storage.db import session_scope
from storage.hashing import content_hash
from storage.models import (
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

ARENA = Path(__file__).resolve().parents[2] / "shared" / "data" / "arena_hard_1k" / "question.jsonl"
XSS_OUTPUT = (
    "Here you go <script>window.__xss = 1; alert('xss')</script> and "
    "<img src=x onerror=\"window.__xss = 2; alert('img')\"> plus ![pixel](http://203.0.113.9/track.png) "
    "and [a link](http://203.0.113.9/phish)"
)
CANDIDATE_NAMES = ["cand-secret-alpha", "cand-secret-beta", "cand-secret-gamma"]
MODEL_NAMES = ["openai/model-alpha-9000", "anthropic/model-beta-9000", "openai/model-gamma-9000"]
JUDGE_MODEL = "openai/judge-model-zeta"
RATIONALE = "JUDGE-RATIONALE: the answer is"

RUBRIC_YAML = """\
name: helpfulness
description: Is the answer helpful and correct?
judge:
  model: openai/judge-model-zeta
  temperature: 0
  mode: pointwise
criteria:
  - id: correct
    question: Is the answer factually correct?
    type: binary
    weight: 1
  - id: helpful
    question: How helpful is the answer?
    type: ordinal
    min: 1
    max: 3
    levels:
      "1": Not helpful at all
      "2": Somewhat helpful
      "3": Fully answers the request
    weight: 1
"""

RUBRIC_SPEC = {
    "name": "helpfulness",
    "description": "Is the answer helpful and correct?",
    "judge": {"model": JUDGE_MODEL, "temperature": 0, "mode": "pointwise"},
    "criteria": [
        {"id": "correct", "question": "Is the answer factually correct?", "type": "binary", "weight": 1,
         "uses_reference": False, "examples": []},
        {"id": "helpful", "question": "How helpful is the answer?", "type": "ordinal", "min": 1, "max": 3,
         "levels": {"1": "Not helpful at all", "2": "Somewhat helpful", "3": "Fully answers the request"},
         "weight": 1, "uses_reference": False, "examples": []},
    ],
}


@dataclass
class Seeded:
    version_id: int
    rubric_version_id: int
    judge_run_id: int
    candidate_ids: list[int]
    annotators: dict[str, int]
    unit_ids: list[int] = field(default_factory=list)
    xss_output_id: int | None = None


def _store_rubric(s: Session) -> RubricVersion:
    """Through the judging area's loader when it is there (so its hash checks pass), else as a bare row."""
    try:
        from judging.rubric import parse_rubric, store_rubric
    except ImportError:
        row = RubricVersion(name="helpfulness", content_hash=content_hash(RUBRIC_SPEC), yaml_text=RUBRIC_YAML,
                            spec=RUBRIC_SPEC)
        s.add(row)
        s.flush()
        return row
    return store_rubric(s, parse_rubric(RUBRIC_YAML, "<seed>"))


def _prompts(n: int) -> list[str]:
    out: list[str] = []
    if ARENA.exists():
        with ARENA.open(encoding="utf-8") as fh:
            for line in fh:
                out.append(json.loads(line)["turns"][0])
                if len(out) >= n:
                    break
    while len(out) < n:
        out.append(f"Explain topic number {len(out)} in two sentences.")
    return out


def seed_project(
    engine: Engine,
    *,
    items: int = 12,
    golden_items: int = 6,
    annotators: tuple[str, ...] = ("alice", "bob"),
    simulated_labels: bool = False,
    human_agreement: float = 0.85,
    seed: int = 7,
) -> Seeded:
    """One eval set version, three candidates with runs, a rubric, a simulated judge run, a golden subset.

    The first candidate's output on the first golden item is XSS_OUTPUT. With `simulated_labels` every
    assignment gets simulated labels that mostly agree with the simulated judge.
    """
    rng = random.Random(seed)
    with session_scope(engine) as s:
        drafts = [ItemDraft(key=f"q{i:03d}", messages=[{"role": "user", "content": p}])
                  for i, p in enumerate(_prompts(items))]
        version = freeze(s, "support", drafts, sampling_report={"strategy": "all", "clusters": 1, "sizes": [items]})
        from evalsets.freeze import items_of

        item_rows = items_of(s, version)
        rubric = _store_rubric(s)
        cand_ids, outputs = [], {}
        for ci, (name, model) in enumerate(zip(CANDIDATE_NAMES, MODEL_NAMES)):
            cand = Candidate(name=name, model=model, config_hash=content_hash({"m": model}),
                             input_price_per_mtok=1.0 + ci, output_price_per_mtok=2.0 + ci)
            s.add(cand)
            s.flush()
            cand_ids.append(cand.id)
            run = Run(candidate_id=cand.id, version_id=version.id, source="gateway", status="done",
                      config={"model": model})
            s.add(run)
            s.flush()
            for it in item_rows:
                text = XSS_OUTPUT if (ci == 0 and it.position == 0) else f"Answer {ci}-{it.position}: " + "ok " * (ci + 3)
                out = Output(run_id=run.id, item_id=it.id, text=text, prompt_tokens=20, completion_tokens=40 + ci,
                             cost_usd=0.0001 * (ci + 1), latency_ms=300.0 + 100 * ci)
                s.add(out)
                s.flush()
                outputs[(ci, it.position)] = out
        s.flush()
        jr = JudgeRun(version_id=version.id, rubric_version_id=rubric.id, judge_model=JUDGE_MODEL, status="done",
                      mode="pointwise")
        s.add(jr)
        s.flush()
        quality = [0.8, 0.6, 0.4]
        judge_verdicts: dict[tuple[int, str], str] = {}
        for (ci, pos), out in outputs.items():
            good = rng.random() < quality[ci]
            level = 3 if good else rng.choice([1, 2])
            for crit, verdict, score in (("correct", "pass" if good else "fail", 1.0 if good else 0.0),
                                         ("helpful", str(level), float(level))):
                judge_verdicts[(out.id, crit)] = verdict
                s.add(Judgment(judge_run_id=jr.id, criterion_id=crit, item_id=out.item_id, output_id=out.id,
                               verdict=verdict, score=score, rationale=f"{RATIONALE} {verdict}",
                               version_hash=version.content_hash, rubric_hash=rubric.content_hash,
                               judge_model=JUDGE_MODEL, cost_usd=0.00005, latency_ms=200.0))
        people = {}
        for name in annotators:
            a = Annotator(name=name)
            s.add(a)
            s.flush()
            people[name] = a.id
        seeded = Seeded(version.id, rubric.id, jr.id, cand_ids, people)
        n_units = 0
        for pos in range(golden_items):
            for ci in range(len(CANDIDATE_NAMES)):
                out = outputs[(ci, pos)]
                unit = GoldenUnit(version_id=version.id, rubric_version_id=rubric.id, mode="pointwise",
                                  item_id=out.item_id, output_id=out.id, stratum=f"{CANDIDATE_NAMES[ci]}|{JUDGE_MODEL}",
                                  inclusion_prob=golden_items / items, selection={"seed": seed, "strategy": "simulated"})
                s.add(unit)
                s.flush()
                seeded.unit_ids.append(unit.id)
                if ci == 0 and pos == 0:
                    seeded.xss_output_id = out.id
                for name, aid in people.items():
                    s.add(GoldenAssignment(golden_unit_id=unit.id, annotator_id=aid, position=n_units))
                n_units += 1
        s.flush()
        if simulated_labels:
            for unit_id in seeded.unit_ids:
                unit = s.get(GoldenUnit, unit_id)
                for who, aid in people.items():
                    for crit in ("correct", "helpful"):
                        jv = judge_verdicts[(unit.output_id, crit)]
                        v = jv if rng.random() < human_agreement else ("fail" if jv == "pass" else "pass") if crit == "correct" \
                            else str(rng.choice([1, 2, 3]))
                        sc = (1.0 if v == "pass" else 0.0) if crit == "correct" else float(v)
                        s.add(Label(annotator_id=aid, rubric_version_id=rubric.id, criterion_id=crit,
                                    item_id=unit.item_id, output_id=unit.output_id, golden_unit_id=unit.id,
                                    verdict=v, score=sc, inclusion_prob=unit.inclusion_prob,
                                    comment=f"COMMENT-OF-{who}"))
    return seeded


def label_count(engine: Engine) -> int:
    with Session(engine) as s:
        return len(s.exec(select(Label.id)).all())


def test_seed_builds_a_blind_queue(sqlite_engine: Engine) -> None:
    seeded = seed_project(sqlite_engine)
    with Session(sqlite_engine) as s:
        assert len(seeded.unit_ids) == 18
        assert len(s.exec(select(GoldenAssignment)).all()) == 36
        assert s.get(Output, seeded.xss_output_id).text == XSS_OUTPUT
    assert label_count(sqlite_engine) == 0
