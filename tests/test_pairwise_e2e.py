"""Pairwise end to end through the real command: pairwise judge verdicts in both orders and pairwise human
labels with a declared design are imported, `ownbench agreement` measures judge–human agreement and position
bias on the pairwise run, and `ownbench rank --judge-run` corrects the Bradley–Terry strengths with the humans.

Prompts and answers are REAL (Chatbot Arena prompts answered by four models, lm-sys/FastChat arena_hard_1k,
Apache-2.0). The judge is a rule applied to those real answers: the longer answer wins, except that when the
two lengths are within 25 % the output shown first wins (a judge with a built-in position bias). The human
labels are SIMULATED from a known Bradley–Terry order so the corrected ranking can be checked against it."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from sqlmodel import Session, select

from storage.db import session_scope
from storage.models import Candidate, Item, Output, Run
from tests.conftest_loopback import ownbench_cli
from tests.test_judging_support import RUBRICS, seed_version

MODELS = ("gpt-4", "claude-v1", "Llama-2-70b-chat", "vicuna-7b-v1.5")
TRUTH = {"gpt-4": 1.2, "claude-v1": 0.5, "Llama-2-70b-chat": -0.4, "vicuna-7b-v1.5": -1.3}  # human strengths


def _length_judge(first: str, second: str) -> str:
    """"1" when the output shown first wins, "2" when the second does."""
    a, b = len(first), len(second)
    if max(a, b) <= 1.25 * min(a, b):
        return "1"
    return "1" if a > b else "2"


def _answers(engine) -> tuple[list[str], dict[str, dict[str, str]]]:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        keys = {i.id: i.item_key for i in s.exec(select(Item))}
        out: dict[str, dict[str, str]] = {}
        for run in s.exec(select(Run)):
            name = s.get(Candidate, run.candidate_id).name  # type: ignore[union-attr]
            out[name] = {keys[o.item_id]: o.text or "" for o in s.exec(select(Output).where(Output.run_id == run.id))}
    return sorted(keys.values()), out


def test_pairwise_labels_and_verdicts_give_agreement_position_bias_and_a_corrected_ranking(sqlite_engine, tmp_path: Path):
    with session_scope(sqlite_engine) as s:
        seed_version(s, n_items=60, candidates=MODELS)
    keys, answers = _answers(sqlite_engine)
    pairs = [(x, y) for i, x in enumerate(MODELS) for y in MODELS[i + 1:]]
    rows = []
    for x, y in pairs:
        for k in keys:
            for first in ("A", "B"):
                shown = (answers[x][k], answers[y][k]) if first == "A" else (answers[y][k], answers[x][k])
                said = _length_judge(*shown)
                winner = first if said == "1" else ("B" if first == "A" else "A")
                rows.append({"item": k, "candidate": x, "candidate_b": y, "criterion": "helpfulness",
                             "verdict": winner, "first": first, "judge": "length-rule"})
    verdicts = tmp_path / "pairwise_verdicts.jsonl"
    verdicts.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    res = ownbench_cli("judgments", "import", str(verdicts), "--set", "arena@1", "--rubric",
                       str(RUBRICS / "helpfulness.yaml"), "--json", cwd=tmp_path, check=True)
    imported = json.loads(res.stdout)
    assert imported["mode"] == "pairwise" and imported["rows"] == len(pairs) * len(keys)  # both orders → one each
    run_id = imported["judge_runs"]["length-rule"]

    # humans: 25 battles per pair drawn uniformly at random, three annotators, some rows written B-then-A
    rng = np.random.default_rng(7)
    with (tmp_path / "human_pairs.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["item_key", "candidate_a", "candidate_b", "annotator", "label"])
        w.writeheader()
        for x, y in pairs:
            for k in rng.choice(keys, 25, replace=False):
                p_x = 1 / (1 + np.exp(TRUTH[y] - TRUTH[x]))
                u = rng.random()
                label = "tie" if u > 0.9 else ("A" if u < 0.9 * p_x else "B")
                if rng.random() < 0.3:  # the same verdict, with the candidates listed the other way round
                    w.writerow({"item_key": k, "candidate_a": y, "candidate_b": x, "annotator": f"ann{rng.integers(3)}",
                                "label": {"A": "B", "B": "A", "tie": "tie"}[label]})
                else:
                    w.writerow({"item_key": k, "candidate_a": x, "candidate_b": y, "annotator": f"ann{rng.integers(3)}",
                                "label": label})
    res = ownbench_cli("labels", "import", str(tmp_path / "human_pairs.csv"), "--set", "arena@1", "--rubric",
                       "helpfulness", "--uniform", "--json", cwd=tmp_path, check=True)
    lab = json.loads(res.stdout)
    assert lab["mode"] == "pairwise" and lab["labels"] == 150 and lab["calibration_usable"] == 150

    listed = json.loads(ownbench_cli("judge-runs", "list", "--json", cwd=tmp_path, check=True).stdout)
    assert [(r["id"], r["mode"], r["judge_model"], r["judgments"], r["set"]) for r in listed] == [
        (run_id, "pairwise", "length-rule", 360, "arena@1")]

    # agreement picks the only (pairwise) run and says so
    res = ownbench_cli("agreement", "--set", "arena@1", "--rubric", "helpfulness", "--json", "--bootstrap", "200",
                       cwd=tmp_path, check=True)
    assert f"using judge run {run_id} (pairwise" in " ".join(res.stderr.split())
    (c,) = json.loads(res.stdout)["criteria"]
    jh = c["judge_vs_human"]
    assert jh["n"] == 150 and sum(map(sum, jh["confusion"])) == 150
    assert 0 <= jh["percent"]["value"] <= 1 and c["judge_vs_human_without_ties"]["n"] <= 150
    assert c["alpha_judge_vs_human"]["value"] is not None
    judge_pb = c["position_bias"]["judge"]
    assert judge_pb["first_position_share"]["value"] > 0.5 and judge_pb["swap_inconsistency"]["n"] == 360
    assert c["position_bias"]["human"]["first_position_share"]["n"] == 150
    md = ownbench_cli("agreement", "--set", "arena@1", "--rubric", "helpfulness", "--judge-run", str(run_id),
                      "--markdown", "--bootstrap", "200", cwd=tmp_path, check=True).stdout
    assert "agreement without ties" in md and "position bias, judge" in md and "Confusion, rows judge" in md

    # rank on the pairwise run: the human-corrected Bradley–Terry order is the humans' order
    res = ownbench_cli("rank", "--set", "arena@1", "--rubric", "helpfulness", "--judge-run", str(run_id), "--json",
                       "--bootstrap", "300", cwd=tmp_path, check=True)
    rep = json.loads(res.stdout)
    (pc,) = rep["pairwise"]["criteria"]
    assert rep["pairwise"]["judge_run"] == run_id and pc["golden"] == 150
    order = [r["candidate"] for r in pc["calibrated"]]
    assert order[0] == "gpt-4" and order[-1] == "vicuna-7b-v1.5", order
    assert rep["withheld"] == {}

    # with too few golden labels the corrected section is withheld, and the JSON says so
    rep = json.loads(ownbench_cli("rank", "--set", "arena@1", "--rubric", "helpfulness", "--judge-run", str(run_id),
                                  "--json", "--bootstrap", "200", "--min-labels", "500", cwd=tmp_path, check=True).stdout)
    assert list(rep["withheld"]) == ["pairwise:helpfulness"]

    out = tmp_path / "export.jsonl"
    ownbench_cli("labels", "export", str(out), "--set", "arena@1", "--rubric", "helpfulness", cwd=tmp_path, check=True)
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(r["source"] == "judge" and r["candidate_b"] is not None for r in exported) == 360
    assert sum(r["source"] == "human" and r["candidate_b"] is not None for r in exported) == 150


def test_pairwise_label_import_refuses_bad_rows_with_file_and_line(sqlite_engine, tmp_path: Path):
    with session_scope(sqlite_engine) as s:
        seed_version(s, n_items=3, candidates=MODELS[:2])
    keys, _ = _answers(sqlite_engine)
    rows = [{"item_key": keys[0], "candidate_a": "gpt-4", "candidate_b": "claude-v1", "annotator": "a", "label": "A"}]
    verdicts = tmp_path / "v.jsonl"
    verdicts.write_text(json.dumps({"item": keys[0], "candidate": "gpt-4", "candidate_b": "claude-v1",
                                    "criterion": "helpfulness", "verdict": "A", "judge": "j"}) + "\n")
    ownbench_cli("judgments", "import", str(verdicts), "--set", "arena@1", "--rubric",
                 str(RUBRICS / "helpfulness.yaml"), cwd=tmp_path, check=True)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in [
        *rows, {**rows[0], "label": "left"}, {**rows[0], "candidate_b": "gpt-4"}, {**rows[0], "winner": "A"}]))
    res = ownbench_cli("labels", "import", str(bad), "--set", "arena@1", "--rubric", "helpfulness", cwd=tmp_path)
    err = " ".join(res.stderr.split())
    assert res.returncode == 2
    assert "bad.jsonl:2: pairwise label 'left' is not A, B or tie" in err
    assert "bad.jsonl:3: candidate_a and candidate_b are the same" in err
    assert "bad.jsonl:4: unknown field(s) winner" in err
