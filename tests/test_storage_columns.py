"""Columns read as arrays (storage/columns.py) hold exactly what the ORM reads, NULLs included, whatever the chunk
size, on SQLite and PostgreSQL; their digest (manifest format 3) changes with any value and only for its row.
The verdicts in the database are SIMULATED (tests/test_analysis_reports.py seeds them)."""
from __future__ import annotations

import math

import numpy as np
from sqlalchemy import func
from sqlmodel import select

from analysis.rowdigest import columnset_rowset
from analysis.stored import judged_outputs, judgments_of, labels_of, outputs_of
from storage.columns import Categorical, ColumnSet, read_columns
from storage.db import session_scope
from storage.models import JudgeRun, Judgment, Label, Output
from tests.test_analysis_reports import seed_study


def _odd_rows(engine) -> dict[str, int]:
    """NULLs, JSON details, a pairwise judgment and a failed output among the simulated ones."""
    with session_scope(engine) as s:
        outs = s.exec(select(Output).order_by(Output.id)).all()
        outs[0].cost_usd = None
        outs[1].text, outs[1].error = None, "provider said 500, then the retries ran out"
        outs[2].latency_ms = None
        run = s.exec(select(JudgeRun)).first()
        pair = Judgment(judge_run_id=run.id, criterion_id="correct", item_id=outs[3].item_id, output_id=outs[3].id,
                        output_b_id=outs[4].id, status="scored", verdict="tie", score=0.5,
                        details={"orders": [{"first": "a", "verdict": "A"}, {"first": "b", "verdict": "B"}]},
                        version_hash="v", rubric_hash="r", judge_model="openai/gpt-4o-mini")
        unscored = Judgment(judge_run_id=run.id, criterion_id="correct", item_id=outs[5].item_id,
                            output_id=outs[5].id, status="unscored", verdict=None, score=None,
                            unscored_reason="the reply was not JSON", version_hash="v", rubric_hash="r",
                            judge_model="openai/gpt-4o-mini")
        odd = Judgment(judge_run_id=run.id, criterion_id="correct", item_id=outs[6].item_id, output_id=outs[6].id,
                       status="scored", verdict="pass", score=0.1 + 0.2, version_hash="v", rubric_hash="r",
                       judge_model="openai/gpt-4o-mini")
        s.add_all([pair, unscored, odd])
        s.flush()
        return {"run": run.id, "pair": pair.id, "unscored": unscored.id, "odd": odd.id}


def _values(col) -> list:
    """Plain values, NaN as None (NaN != NaN)."""
    if isinstance(col, Categorical):
        return [col.names[c] for c in col.codes.tolist()]
    return [None if isinstance(v, float) and math.isnan(v) else v for v in col.tolist()]


def test_columns_match_the_orm_with_nulls_json_and_any_chunk_size(engine):
    seed_study(engine, items=25, golden=10, k=1, seed=2)
    ids = _odd_rows(engine)
    t = Judgment.__table__
    with session_scope(engine) as s:
        cols = {"criterion_id": ("t", t.c.criterion_id), "output_id": ("i", t.c.output_id),
                "status": ("t", t.c.status), "verdict": ("t", t.c.verdict), "score": ("f", t.c.score)}
        sparse = {"output_b_id": ("i", t.c.output_b_id), "details": ("t", t.c.details)}
        where = t.c.judge_run_id == ids["run"]
        whole = read_columns(s, t, cols, where, sparse=sparse, constants={"judge_run_id": ids["run"]})
        small = read_columns(s, t, cols, where, sparse=sparse, constants={"judge_run_id": ids["run"]}, chunk=7)
        rows = s.exec(select(Judgment).where(Judgment.judge_run_id == ids["run"]).order_by(Judgment.id)).all()
        assert whole.ids.tolist() == small.ids.tolist() == [j.id for j in rows]
        for name in [*cols, *sparse]:
            assert _values(whole[name]) == _values(small[name]), name
        by_id = dict(zip(whole.ids.tolist(), range(len(whole))))
        for j in rows:
            k = by_id[j.id]
            assert whole["verdict"].names[whole["verdict"].codes[k]] == j.verdict
            assert whole["status"].names[whole["status"].codes[k]] == j.status
            got = whole["score"][k]
            assert (math.isnan(got) and j.score is None) or got == j.score  # exact: 0.1 + 0.2 stays 0.30000000000000004
            assert whole["output_b_id"][k] == (j.output_b_id if j.output_b_id is not None else -1)
            assert whole["judge_run_id"][k] == ids["run"]
        details = whole["details"]
        assert details.names[details.codes[by_id[ids["pair"]]]] is not None
        assert "orders" in details.names[details.codes[by_id[ids["pair"]]]]
        assert details.names[details.codes[by_id[ids["unscored"]]]] is None

        o = Output.__table__
        outs = read_columns(s, o, {"item_id": ("i", o.c.item_id), "length": ("i", func.length(o.c.text)),
                                   "cost_usd": ("f", o.c.cost_usd), "latency_ms": ("f", o.c.latency_ms)},
                            None, sparse={"error": ("b", o.c.error.is_not(None))}, chunk=5)
        orm = s.exec(select(Output).order_by(Output.id)).all()
        assert outs.ids.tolist() == [x.id for x in orm]
        assert outs["length"].tolist() == [len(x.text) if x.text is not None else -1 for x in orm]
        assert outs["error"].tolist() == [x.error is not None for x in orm]
        assert [None if math.isnan(v) else v for v in outs["cost_usd"].tolist()] == [x.cost_usd for x in orm]
        assert [None if math.isnan(v) else v for v in outs["latency_ms"].tolist()] == [x.latency_ms for x in orm]


def test_take_and_concat_keep_ids_in_order_and_merge_names():
    a = ColumnSet("t", np.array([1, 4, 6]), {"v": Categorical(np.array([0, 1, 0], np.int32), ["pass", "fail"]),
                                             "x": np.array([1.0, 2.0, 3.0])}, {"v": "t", "x": "f"})
    b = ColumnSet("t", np.array([2, 5]), {"v": Categorical(np.array([0, 1], np.int32), ["tie", "pass"]),
                                          "x": np.array([9.0, 8.0])}, {"v": "t", "x": "f"})
    both = ColumnSet.concat([a, b])
    assert both.ids.tolist() == [1, 2, 4, 5, 6]
    assert _values(both["v"]) == ["pass", "tie", "fail", "pass", "pass"]
    assert both["x"].tolist() == [1.0, 9.0, 2.0, 8.0, 3.0]
    kept = both.take(both["x"] > 2.5)
    assert kept.ids.tolist() == [2, 5, 6] and _values(kept["v"]) == ["tie", "pass", "pass"]


def test_the_digest_follows_every_value_and_names_only_the_changed_row(engine):
    seed_study(engine, items=25, golden=10, k=1, seed=4)
    with session_scope(engine) as s:
        reads: dict = {}
        judgments = judgments_of(s, [1], reads)
        outputs = judged_outputs(judgments, outputs_of(s, 1, reads))
        labels = labels_of(s, 1, 1, reads)
        assert len(labels) == len(s.exec(select(Label.id)).all())
        first = {name: columnset_rowset(cs) for name, cs in
                 (("judgments", judgments), ("outputs", outputs), ("labels", labels))}
        again = columnset_rowset(judgments_of(s, [1]))
        assert again.sha256 == first["judgments"].sha256 and again.fingerprints() == first["judgments"].fingerprints()
    target = int(judgments.ids[3])
    flips = {"verdict": lambda v: "'pass'" if v == "fail" else "'fail'",
             "score": lambda v: repr((v or 0.0) + 0.25),
             "status": lambda v: "'scored'" if v == "unscored" else "'unscored'",
             "output_b_id": lambda v: "2"}
    for column, flip in flips.items():
        with engine.begin() as conn:  # plain SQL, as someone with database access would edit it
            raw = conn.connection.driver_connection
            cur = raw.cursor()
            cur.execute(f"SELECT {column} FROM judgment WHERE id = {target}")
            old = cur.fetchone()[0]
            cur.execute(f"UPDATE judgment SET {column} = {flip(old)} WHERE id = {target}")
        with session_scope(engine) as s:
            now = columnset_rowset(judgments_of(s, [1]))
        assert now.sha256 != first["judgments"].sha256, column
        differ = [i for i in now.rows if now.rows[i] != first["judgments"].rows[i]]
        assert differ == [target], column
        with engine.begin() as conn:
            raw = conn.connection.driver_connection
            cur = raw.cursor()
            restore = "NULL" if old is None else f"'{old}'" if isinstance(old, str) else repr(old)
            cur.execute(f"UPDATE judgment SET {column} = {restore} WHERE id = {target}")
        with session_scope(engine) as s:
            assert columnset_rowset(judgments_of(s, [1])).sha256 == first["judgments"].sha256, column
