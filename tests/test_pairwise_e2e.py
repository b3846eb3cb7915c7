"""Pairwise end to end through the real command: pairwise judge verdicts in both orders and pairwise human
labels with a declared design are imported, `ownbench agreement` measures judge–human agreement and position
bias on the pairwise run, and `ownbench rank --judge-run` corrects the Bradley–Terry strengths with the humans.

Prompts and answers are REAL (Chatbot Arena prompts answered by four models, lm-sys/FastChat arena_hard_1k,
Apache-2.0). The judge is a rule applied to those real answers: the longer answer wins, except that when the
two lengths are within 25 % the output shown first wins (a judge with a built-in position bias). The human
labels are SIMULATED from a known Bradley–Terry order so the corrected ranking can be checked against it.

The last test turns it round: REAL human votes (Chatbot Arena battles) and a SIMULATED judge; see its comments."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from sqlmodel import Session, select

from storage.db import session_scope
from storage.models import Candidate, Item, Label, Output, RubricVersion, Run
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


# --- real Chatbot Arena battles ----------------------------------------------------------------------------
#
# The human verdicts below are REAL: 1,135 Chatbot Arena votes (lm-sys/FastChat arena_hard_1k
# question_original.jsonl, Apache-2.0; the package ships an unmodified copy), the voter id as the annotator.
# The answers the voters saw were not kept, so the battles' candidates get runs whose outputs say so
# (`runs import-battles`). The JUDGE is SIMULATED: no real pairwise judge verdicts on these battles exist here, so
# a seeded script stands in for one, with a stated accuracy against the human vote and a stated position bias.
JUDGE_ACCURACY = 0.8  # the judge's own opinion equals the human vote this often, else one of the other two
JUDGE_POSITION_BIAS = 0.2  # in each order, this often the judge says "the output shown first wins" instead
GOLDEN_SHARE = 0.4  # battles drawn uniformly at random whose votes are the golden labels (declared --uniform)
ARENA_SCORE = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}


def _bt_mle(a: np.ndarray, b: np.ndarray, s: np.ndarray, k: int, pseudo: float = 0.01) -> np.ndarray:
    """Bradley–Terry log-strengths by direct maximum likelihood (scipy), written here independently of the
    product: P(i beats j) = σ(θi − θj), a tie half a win each way, plus `pseudo` wins each way on every pair
    that met (the product documents the same 0.01 so that an undefeated candidate stays finite)."""
    from scipy.optimize import minimize

    met = np.zeros((k, k), bool)
    met[a, b] = met[b, a] = True
    pa, pb = np.nonzero(np.triu(met))

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        d = theta[a] - theta[b]
        dp = theta[pa] - theta[pb]
        ll = s * -np.logaddexp(0, -d) + (1 - s) * -np.logaddexp(0, d)
        llp = pseudo * (-np.logaddexp(0, -dp) - np.logaddexp(0, dp))
        g_d = s - 1 / (1 + np.exp(-d))  # ∂ll/∂d
        g_p = pseudo * (1 - 2 / (1 + np.exp(-dp)))
        grad = np.zeros(k)
        np.add.at(grad, a, g_d)
        np.add.at(grad, b, -g_d)
        np.add.at(grad, pa, g_p)
        np.add.at(grad, pb, -g_p)
        return -(ll.sum() + llp.sum()), -grad

    res = minimize(nll, np.zeros(k), jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-15,
                                                                          "maxiter": 10_000})
    return res.x


def _kappa(x: np.ndarray, y: np.ndarray, cats: list[float]) -> float:
    po = float(np.mean(x == y))
    pe = sum(float(np.mean(x == c)) * float(np.mean(y == c)) for c in cats)
    return (po - pe) / (1 - pe)


def test_real_arena_votes_correct_a_simulated_pairwise_judge(sqlite_engine, tmp_path: Path):
    import gzip

    from ownbench.demo import ARENA_PROMPTS

    lines = gzip.decompress(ARENA_PROMPTS.read_bytes()).decode("utf-8").splitlines()
    votes = tmp_path / "arena_votes.jsonl"
    votes.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ownbench_cli("ingest", str(votes), "--name", "arena", "--format", "jsonl", "--prompt-field", "turns",
                 "--id-field", "question_id", "--sample", "0", "--near-dup-threshold", "1", "--quota", "none",
                 cwd=tmp_path, check=True)
    with Session(sqlite_engine) as s:
        keys = {i.item_key for i in s.exec(select(Item))}
    battles = [json.loads(line) for line in lines]
    inside = [r for r in battles if r["question_id"] in keys]  # a repeated prompt is frozen once, by its first id
    assert len(battles) == 1135 and len(inside) == len(keys) == 895

    rec = json.loads(ownbench_cli("runs", "import-battles", str(votes), "--set", "arena@1", "--format", "arena",
                                  "--json", cwd=tmp_path, check=True).stdout)
    models = sorted({m for r in inside for m in (r["model_a"], r["model_b"])})
    assert rec["battles"] == 1135 and rec["not_in_version"] == 240 and len(rec["runs"]) == len(models) == 29
    with Session(sqlite_engine) as s:  # no answer is invented: every output of these runs says it was not kept
        outs = s.exec(select(Output)).all()
        assert outs and all(o.text is None and o.error and "answer not kept" in o.error for o in outs)

    # the simulated judge, both orders; the import merges them (a tie when the orders disagree)
    rng = np.random.default_rng(2023)
    human = np.array([ARENA_SCORE[r["winner"]] for r in inside])
    others = {1.0: (0.0, 0.5), 0.0: (1.0, 0.5), 0.5: (1.0, 0.0)}
    opinion = np.array([h if rng.random() < JUDGE_ACCURACY else others[h][rng.integers(2)] for h in human])
    said = {}
    rows = []
    for first in ("A", "B"):
        biased = rng.random(len(inside)) < JUDGE_POSITION_BIAS
        said[first] = np.where(biased, 1.0 if first == "A" else 0.0, opinion)  # A's score in this order
        for r, v in zip(inside, said[first]):
            rows.append({"item": r["question_id"], "candidate": r["model_a"], "candidate_b": r["model_b"],
                         "criterion": "helpfulness", "verdict": {1.0: "A", 0.0: "B", 0.5: "tie"}[v],
                         "first": first, "judge": "scripted-judge"})
    judge = np.where(said["A"] == said["B"], said["A"], 0.5)
    verdicts = tmp_path / "judge_verdicts.jsonl"
    verdicts.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    imported = json.loads(ownbench_cli("judgments", "import", str(verdicts), "--set", "arena@1", "--rubric",
                                       str(RUBRICS / "helpfulness.yaml"), "--json", cwd=tmp_path, check=True).stdout)
    assert imported["mode"] == "pairwise" and imported["rows"] == 895
    run_id = imported["judge_runs"]["scripted-judge"]

    # Design: GOLDEN_SHARE of the battles drawn uniformly at random (here, by this seeded draw) are the golden
    # subset, imported with --uniform so they correct the judge; the other votes are imported without a design,
    # so they count for agreement only. Lines are the arena file's own, unchanged.
    golden = np.zeros(len(inside), bool)
    golden[rng.choice(len(inside), int(GOLDEN_SHARE * len(inside)), replace=False)] = True
    golden_ids = {r["question_id"] for r, g in zip(inside, golden) if g}
    (tmp_path / "golden.jsonl").write_text("".join(line + "\n" for line, r in zip(lines, battles)
                                                   if r["question_id"] in golden_ids), encoding="utf-8")
    (tmp_path / "rest.jsonl").write_text("".join(line + "\n" for line, r in zip(lines, battles)
                                                 if r["question_id"] not in golden_ids), encoding="utf-8")
    lab = json.loads(ownbench_cli("labels", "import", str(tmp_path / "golden.jsonl"), "--set", "arena@1",
                                  "--rubric", "helpfulness", "--format", "arena", "--uniform", "--json",
                                  cwd=tmp_path, check=True).stdout)
    n_golden = int(golden.sum())
    assert lab["mode"] == "pairwise" and lab["labels"] == lab["calibration_usable"] == n_golden
    assert lab["mapped"] == {"tie (bothbad)": sum(r["winner"] == "tie (bothbad)" for r, g in zip(inside, golden) if g)}
    assert lab["annotators"] == len({r["judge"] for r, g in zip(inside, golden) if g}) and lab["not_in_version"] == 0
    assert "turns" in lab["ignored_fields"]
    rest = json.loads(ownbench_cli("labels", "import", str(tmp_path / "rest.jsonl"), "--set", "arena@1", "--rubric",
                                   "helpfulness", "--format", "arena", "--json", cwd=tmp_path, check=True).stdout)
    assert rest["labels"] == 895 - n_golden and rest["calibration_usable"] == 0 and rest["not_in_version"] == 240

    # agreement on all 895 voted battles, checked against the same figures computed here
    res = ownbench_cli("agreement", "--set", "arena@1", "--rubric", "helpfulness", "--judge-run", str(run_id),
                       "--json", "--bootstrap", "200", cwd=tmp_path, check=True)
    (c,) = json.loads(res.stdout)["criteria"]
    jh, jn = c["judge_vs_human"], c["judge_vs_human_without_ties"]
    decisive = (judge != 0.5) & (human != 0.5)
    assert jh["n"] == 895 and jn["n"] == int(decisive.sum())
    assert abs(jh["percent"]["value"] - np.mean(judge == human)) < 1e-12
    assert abs(jn["percent"]["value"] - np.mean(judge[decisive] == human[decisive])) < 1e-12
    assert abs(jh["kappa"]["value"] - _kappa(judge, human, [0.0, 0.5, 1.0])) < 1e-9
    conf = np.array(jh["confusion"])  # rows judge, columns human; order B, tie, A
    for r_, jv in enumerate((0.0, 0.5, 1.0)):
        for c_, hv in enumerate((0.0, 0.5, 1.0)):
            assert conf[r_, c_] == int(((judge == jv) & (human == hv)).sum())
    assert c["alpha_judge_vs_human"]["value"] is not None
    pb = c["position_bias"]
    first_share = np.mean(np.concatenate([said["A"], 1 - said["B"]]))  # the first-shown output's score
    assert abs(pb["judge"]["first_position_share"]["value"] - first_share) < 1e-12 and first_share > 0.55
    assert pb["judge"]["swap_inconsistency"]["n"] == 895
    assert abs(pb["judge"]["swap_inconsistency"]["value"] - np.mean(said["A"] != said["B"])) < 1e-12
    assert abs(pb["human"]["first_position_share"]["value"] - human.mean()) < 1e-12  # real voters' side A share

    # the human-corrected Bradley–Terry ranking
    rep = json.loads(ownbench_cli("rank", "--set", "arena@1", "--rubric", "helpfulness", "--judge-run", str(run_id),
                                  "--json", "--bootstrap", "500", cwd=tmp_path, check=True).stdout)
    (pc,) = rep["pairwise"]["criteria"]
    assert pc["golden"] == n_golden and pc["battles"] == 895 and rep["withheld"] == {}
    human_only = {r["candidate"]: r["strength"] for r in pc["human_only"]}
    corrected = {r["candidate"]: r["strength"] for r in pc["calibrated"]}
    # human-only strengths equal an independent maximum-likelihood fit on the same golden votes
    idx = {m: i for i, m in enumerate(models)}
    ga = np.array([idx[r["model_a"]] for r, g in zip(inside, golden) if g])
    gb = np.array([idx[r["model_b"]] for r, g in zip(inside, golden) if g])
    theta = _bt_mle(ga, gb, human[golden], len(models))
    present = sorted(set(ga) | set(gb))
    assert sorted(human_only) == [models[i] for i in present]
    ours = np.array([theta[i] for i in present]) - np.mean([theta[i] for i in present])
    product = np.array([human_only[models[i]]["value"] for i in present])
    product -= product.mean()
    assert np.max(np.abs(ours - product)) < 1e-3, np.max(np.abs(ours - product))
    assert [r["candidate"] for r in pc["human_only"]] == [models[present[i]] for i in np.argsort(-ours)]
    # the judge narrows the intervals and keeps the top of the ranking
    width = {name: (corrected[name]["high"] - corrected[name]["low"], e["high"] - e["low"])
             for name, e in human_only.items()}
    narrower = [w_c < w_h for w_c, w_h in width.values()]
    assert np.median([w_c for w_c, _ in width.values()]) < np.median([w_h for _, w_h in width.values()])
    assert np.mean(narrower) >= 0.8, width
    # the top: the humans' leader is one of the two corrected leaders and may be first (rank range from 1);
    # the corrected leader is one the golden votes alone cannot tell apart from theirs (intervals overlap)
    leader_h, leader_c = pc["human_only"][0]["candidate"], pc["calibrated"][0]["candidate"]
    ranks = {r["candidate"]: r["rank"] for r in pc["calibrated"]}
    assert leader_h in [r["candidate"] for r in pc["calibrated"][:2]] and ranks[leader_h][0] == 1
    assert human_only[leader_c]["high"] >= human_only[leader_h]["low"]
    md = ownbench_cli("rank", "--set", "arena@1", "--rubric", "helpfulness", "--judge-run", str(run_id), "--markdown",
                      "--bootstrap", "200", cwd=tmp_path, check=True).stdout
    assert "human only, golden battles [95 % CI]" in md and f"| {leader_c} | {corrected[leader_c]['value']:.3f} [" in md


def test_arena_votes_on_candidates_without_answers_and_bad_battle_lines(sqlite_engine, tmp_path: Path):
    with session_scope(sqlite_engine) as s:
        seed_version(s, n_items=3, candidates=MODELS[:1])
    keys, _ = _answers(sqlite_engine)
    votes = tmp_path / "votes.jsonl"
    votes.write_text("".join(json.dumps(r) + "\n" for r in [
        {"question_id": keys[0], "model_a": "gpt-4", "model_b": "palm-2", "winner": "tie (bothbad)", "judge": "u1"},
        {"question_id": keys[1], "model_a": "palm-2", "model_b": "gpt-4", "winner": "model_a", "judge": "u2"},
        {"question_id": "elsewhere", "model_a": "palm-2", "model_b": "gpt-4", "winner": "model_b", "judge": "u3"}]))
    before = ownbench_cli("labels", "import", str(votes), "--set", "arena@1", "--rubric", str(RUBRICS / "helpfulness.yaml"),
                          "--format", "arena", cwd=tmp_path)
    assert before.returncode == 2 and "candidate_b 'palm-2' has no run on this version" in " ".join(before.stderr.split())
    rec = json.loads(ownbench_cli("runs", "import-battles", str(votes), "--set", "arena@1", "--format", "arena",
                                  "--json", cwd=tmp_path, check=True).stdout)
    assert [r["candidate"] for r in rec["runs"]] == ["palm-2"] and rec["runs"][0]["items"] == 2
    assert rec["candidates_with_runs"] == ["gpt-4"] and rec["not_in_version"] == 1
    with Session(sqlite_engine) as s:  # the refused import above stored nothing, not even its rubric
        assert s.exec(select(RubricVersion).where(RubricVersion.name == "helpfulness")).first() is None
    # a rubric name no judge has stored yet is taken from the project, else the shipped rubrics, and said
    named = ownbench_cli("labels", "import", str(votes), "--set", "arena@1", "--rubric", "helpfulness",
                         "--format", "arena", "--json", cwd=tmp_path, check=True)
    assert "rubric helpfulness:" in named.stderr and "(shipped)" in named.stderr
    lab = json.loads(named.stdout)
    assert lab["labels"] == 2 and lab["not_in_version"] == 1 and lab["mapped"] == {"tie (bothbad)": 1}
    with Session(sqlite_engine) as s:
        labels = {lab.verdict: lab.comment for lab in s.exec(select(Label))}
    assert labels == {"tie": "arena winner: tie (bothbad)", "A": None}

    # the same from a pairwise verdict file (ownbench columns), before its judgments are imported
    judged = tmp_path / "judged.csv"
    judged.write_text(f"item,candidate,candidate_b,criterion,verdict,judge\n{keys[2]},gpt-4,mistral,helpfulness,B,j\n")
    rec = json.loads(ownbench_cli("runs", "import-battles", str(judged), "--set", "arena@1", "--json", cwd=tmp_path,
                                  check=True).stdout)
    assert [(r["candidate"], r["items"]) for r in rec["runs"]] == [("mistral", 1)]
    ownbench_cli("judgments", "import", str(judged), "--set", "arena@1", "--rubric", str(RUBRICS / "helpfulness.yaml"),
                 cwd=tmp_path, check=True)

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question_id": keys[0], "model_a": "gpt-4", "model_b": "palm-2", "winner": "left",
                               "judge": "u1"}) + "\n" + json.dumps({"question_id": keys[0], "judge": "u1"}) + "\n")
    for cmd in (("runs", "import-battles", str(bad), "--set", "arena@1", "--format", "arena"),
                ("labels", "import", str(bad), "--set", "arena@1", "--rubric", "helpfulness", "--format", "arena")):
        res = ownbench_cli(*cmd, cwd=tmp_path)
        err = " ".join(res.stderr.split())
        assert res.returncode == 2 and "bad.jsonl:1: winner 'left' is not one of model_a" in err
        assert "bad.jsonl:2: missing model_a, model_b, winner" in err
