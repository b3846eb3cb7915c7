"""Redaction, dedupe, sampling and the ingest pipeline on real prompts; versions on SQLite and PostgreSQL."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from conftest import FIXTURES, SHARED_DATA
from sqlalchemy import text
from sqlmodel import select

from evalsets.dedupe import ExactDeduper, near_duplicates
from evalsets.freeze import ItemDraft, items_of, resolve_version, verify
from evalsets.ingest import IngestOptions, ingest
from evalsets.readers import FieldMapping
from evalsets.readers.base import LogRecord
from evalsets.redact import luhn_ok, redact_record, redact_text
from evalsets.sampling import PoolEntry, allocate, sample
from storage.db import make_engine, session_scope
from storage.errors import InputError, IntegrityError
from storage.models import EvalSet, EvalSetVersion, Item

ARENA = FIXTURES / "logs" / "arena_39.jsonl"
SHAREGPT = FIXTURES / "logs" / "sharegpt_30.json"
ARENA_MAPPING = FieldMapping(prompt_field="turns", id_field="question_id", metadata_fields=("language",))


def sharegpt_prompts() -> list[str]:
    return [d["conversations"][0]["value"] for d in json.loads(SHAREGPT.read_text(encoding="utf-8"))
            if d["conversations"][0]["from"] == "human"]


# --- redaction ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, redacted, kind", [
    ("write to jane.doe+eval@mail.example.org today", "write to [EMAIL] today", "email"),
    ("call me on +44 20 7946 0958 please", "call me on [PHONE] please", "phone"),
    ("or (415) 555-0199", "or [PHONE]", "phone"),
    ("card 4111-1111-1111-1111 exp 12/27", "card [CARD] exp 12/27", "card"),
    ("amex 3782 822463 10005", "amex [CARD]", "card"),
    ("the box at 10.20.30.40 is down", "the box at [IP] is down", "ip"),
    ("ping 2001:db8:85a3::8a2e:370:7334 now", "ping [IP] now", "ip"),
    ("OPENAI_API_KEY=sk-proj-Abc123Def456Ghi789Jkl012", "OPENAI_API_KEY=[API_KEY]", "api_key"),
    ("aws AKIAIOSFODNN7EXAMPLE key", "aws [API_KEY] key", "api_key"),
    ('{"password": "hunter2hunter2hunter2"}', '{"password": "[API_KEY]"}', "api_key"),
    ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345", "Authorization: [API_KEY]", "api_key"),
])
def test_redaction_replaces_each_kind_with_its_placeholder(raw: str, redacted: str, kind: str) -> None:
    counts: Counter = Counter()
    assert redact_text(raw, counts) == redacted
    assert counts == {kind: 1}


@pytest.mark.parametrize("raw", [
    "released 2023-04-05 at 10:30:15",
    "version 1.2.3 and 3.14159265358979",
    "card-like 4111 1111 1111 1112 fails Luhn",
    "std::vector<int> v; a::b::c",
    "order id 1234567 shipped",
    "sk-short",
])
def test_redaction_leaves_lookalikes_alone(raw: str) -> None:
    counts: Counter = Counter()
    assert redact_text(raw, counts) == raw and not counts


def test_luhn() -> None:
    assert luhn_ok("4111111111111111") and luhn_ok("378282246310005") and not luhn_ok("4111111111111112")


def test_redact_record_covers_parts_reference_and_metadata() -> None:
    rec = LogRecord("k", [{"role": "system", "content": "key sk-abcdefghijklmnopqrstuvwx1234"},
                          {"role": "user", "content": [{"type": "text", "text": "mail a@b.io"},
                                                       {"type": "image_url", "image_url": {"url": "http://10.0.0.1/x.png"}}]}],
                    reference="reach 10.0.0.2", meta={"user": {"email": "x@y.com"}, "n": 3})
    counts: Counter = Counter()
    redact_record(rec, counts)
    assert rec.messages[0]["content"] == "key [API_KEY]" and rec.messages[1]["content"][0]["text"] == "mail [EMAIL]"
    assert rec.messages[1]["content"][1]["image_url"]["url"] == "http://[IP]/x.png"
    assert rec.reference == "reach [IP]" and rec.meta == {"user": {"email": "[EMAIL]"}, "n": 3}
    assert counts == {"api_key": 1, "email": 2, "ip": 2}


# --- dedupe ---------------------------------------------------------------------------------------------------

def test_exact_dedupe_ignores_case_and_whitespace() -> None:
    d = ExactDeduper()
    assert [d.is_new(t) for t in ["Hello  World", "hello world\n", "Hello World!", "ＨＥＬＬＯ world"]] == [True, False, True, False]
    assert d.removed == 2


def test_near_duplicates_on_real_prompts_with_threshold() -> None:
    prompts = [p for p in sharegpt_prompts() if len(p.split()) > 60][:10]
    edited = prompts[0].replace(".", ",", 1) + " Thanks!"  # a small edit of a long prompt
    rewritten = " ".join(prompts[1].split()[: len(prompts[1].split()) // 2])  # only its first half
    texts = prompts + [edited, rewritten]
    result = near_duplicates(texts, 0.8)
    assert result[:10] == [None] * 10  # distinct real prompts stay
    assert result[10] == 0 and result[11] is None  # the small edit is caught; half a prompt is not a duplicate
    assert near_duplicates(texts, 0.4)[11] == 1  # a lower threshold catches it
    assert near_duplicates(texts, 1.0) == [None] * 12  # 1.0 turns near-dup detection off
    assert near_duplicates(texts, 0.8) == result  # deterministic


# --- sampling -------------------------------------------------------------------------------------------------

def pool_from_sharegpt() -> list[PoolEntry]:
    prompts = sharegpt_prompts()
    arena = [json.loads(l) for l in ARENA.read_text(encoding="utf-8").splitlines()]
    entries = [PoolEntry(p, len(p), 1, "en") for p in prompts]
    entries += [PoolEntry("\n".join(a["turns"]), len("\n".join(a["turns"])), len(a["turns"]), "en") for a in arena]
    entries += [PoolEntry("¿Cómo puedo invertir una lista en Python sin usar reverse?", 58, 1, "es")]
    return entries


def test_same_seed_same_sample_and_quotas_filled() -> None:
    pool = pool_from_sharegpt()
    quotas = {"longest": 2, "shortest": 2, "non_english": 1, "multi_turn": 3}
    a = sample(pool, 25, seed=7, quotas=quotas)
    b = sample(pool, 25, seed=7, quotas=quotas)
    c = sample(pool, 25, seed=8, quotas=quotas)
    assert a.selected == b.selected and a.report == b.report and a.selected != c.selected
    assert len(a.selected) == 25 == a.report["n_selected"]
    q = a.report["quotas"]
    assert q["non_english"] == {"requested": 1, "filled": 1, "available": 1}
    assert q["multi_turn"]["filled"] == 3 and q["multi_turn"]["available"] == 10
    longest = max(range(len(pool)), key=lambda i: pool[i].length)
    assert a.reasons[longest] == "quota: longest" and a.reasons[len(pool) - 1] == "quota: non_english"
    clusters = a.report["clusters"]
    assert sum(c["size"] for c in clusters) == len(pool) - 8 and sum(c["selected"] for c in clusters) == 17
    assert all(c["selected"] >= 1 for c in clusters) and all(c["top_terms"] for c in clusters)


def test_allocation_is_proportional_with_a_floor() -> None:
    assert allocate([100, 50, 10, 3, 1], 30) == [16, 8, 3, 2, 1]
    assert allocate([500, 300, 200], 10) == [5, 3, 2]
    assert allocate([1000, 2, 1], 10) == [8, 1, 1]  # rare topics still appear
    assert sum(allocate([7, 7, 7], 100)) == 21  # never more than the pool


def test_small_pool_keeps_everything() -> None:
    pool = pool_from_sharegpt()[:5]
    res = sample(pool, 250)
    assert res.selected == list(range(5)) and "every pooled record" in res.report["note"]


# --- ingest ---------------------------------------------------------------------------------------------------

def arena_options(**kw) -> IngestOptions:
    return IngestOptions(fmt="jsonl", mapping=ARENA_MAPPING, **{"sample": 12, "seed": 3, **kw})


def test_ingest_hash_identical_across_backends_and_runs(engine) -> None:
    with session_scope(engine) as s:
        first = ingest(s, [ARENA], "arena", arena_options())
        digest, report = first.version.content_hash, first.report
    other = make_engine("sqlite://")  # a second, independent run on SQLite
    with session_scope(other) as s:
        again = ingest(s, [ARENA], "arena", arena_options())
    assert again.version.content_hash == digest and again.report == report
    with session_scope(engine) as s:
        same = ingest(s, [ARENA], "arena", arena_options())
        assert not same.created and same.version.id == first.version.id
        v = resolve_version(s, "arena@1")
        assert v.item_count == 12 and verify(s, v) == []
        assert v.sampling_report["sampling"]["quotas"]["multi_turn"]["filled"] >= 1
        assert v.source["files"][0]["sha256"] and v.source["options"]["seed"] == 3
        keys = [i.item_key for i in items_of(s, v)]
        assert [x["key"] for x in v.sampling_report["selected"]] == keys
    with session_scope(engine) as s:
        other_seed = ingest(s, [ARENA], "arena", arena_options(seed=4))
        assert other_seed.version.number == 2 and other_seed.version.content_hash != digest


def bad_file(tmp_path: Path, n_bad: int) -> Path:
    lines = ARENA.read_text(encoding="utf-8").splitlines()[:10]
    lines += ['{"question_id": "x%d", "turns": ' % i for i in range(n_bad)]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_failed_ingest_leaves_no_version_and_no_rows(engine, tmp_path: Path) -> None:
    path = bad_file(tmp_path, 25)
    with pytest.raises(InputError) as exc, session_scope(engine) as s:
        ingest(s, [path], "arena", arena_options(sample=5))
    msg = exc.value.message
    assert f"{path}:11: truncated JSON" in msg and f"{path}:30:" in msg and f"{path}:31:" not in msg
    assert "reading stopped" in msg and "--on-error skip" in msg

    def crash_after_flush(stage: str, done: int, total) -> None:
        if stage == "freezing" and done:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError), session_scope(engine) as s:
        ingest(s, [ARENA], "arena", arena_options(), progress=crash_after_flush)
    with session_scope(engine) as s:
        assert s.exec(select(EvalSet)).all() == [] and s.exec(select(EvalSetVersion)).all() == []
        assert s.exec(select(Item)).all() == []


def test_skip_counts_and_stores_malformed_records(engine, tmp_path: Path) -> None:
    path = bad_file(tmp_path, 3)
    with session_scope(engine) as s:
        result = ingest(s, [path], "arena", arena_options(sample=5, on_error="skip"))
    with session_scope(engine) as s:
        v = resolve_version(s, "arena")
        assert v.skipped_count == 3 and v.item_count == 5
        assert v.sampling_report["skipped"]["count"] == 3
        assert v.sampling_report["skipped"]["first_errors"][0].startswith(f"{path}:11: truncated JSON")
    assert result.report["records_read"] == 10


def test_reservoir_when_pool_exceeds_cap(sqlite_engine) -> None:
    opts = arena_options(sample=5, pool_cap=20)
    with session_scope(sqlite_engine) as s:
        r = ingest(s, [ARENA, SHAREGPT], "mixed", IngestOptions(**{**opts.__dict__, "fmt": "auto",
                                                                   "mapping": FieldMapping(), "on_error": "skip"}))
    pool = r.report["pool"]
    assert pool["reservoir_sampled"] and pool["distinct_records"] > 20 and pool["size"] <= 20
    assert "reservoir sample of 20" in pool["note"] and r.report["duplicates"]["near_scope"].startswith("the pool after")
    assert r.version.item_count == 5 and r.report["skipped"]["count"] == 1  # the ShareGPT record without a user turn
    assert [f["format"] for f in r.version.source["files"]] == ["jsonl", "openai"]


def test_redacted_ingest_stores_no_personal_data(sqlite_engine, tmp_path: Path) -> None:
    path = tmp_path / "support.jsonl"
    rows = [{"id": f"t{i}", "messages": [{"role": "user", "content": f"{p[:200]} — reach me at user{i}@corp.example or +1 415 555 01{i:02d}"}]}
            for i, p in enumerate(sharegpt_prompts()[:8])]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with session_scope(sqlite_engine) as s:
        r = ingest(s, [path], "support", IngestOptions(redact=True, sample=0))
    assert r.report["redaction"] == {"enabled": True, "counts": {"email": 8, "phone": 8}}
    with sqlite_engine.connect() as conn:
        stored = " ".join(row[0] for row in conn.execute(text("SELECT CAST(messages AS TEXT) FROM item")))
    assert "@corp.example" not in stored and "[EMAIL]" in stored and "[PHONE]" in stored


# --- edit, diff, export, tamper -------------------------------------------------------------------------------

def test_edit_diff_export_roundtrip_and_tamper(engine, tmp_path: Path) -> None:
    from evalsets.export import export_version
    from evalsets.versions import diff_versions, edit_version

    with session_scope(engine) as s:
        v1 = ingest(s, [ARENA], "arena", arena_options()).version
        keys = [i.item_key for i in items_of(s, v1)]
        new = ItemDraft("extra-1", [{"role": "user", "content": "What is a frozen eval set?"}], reference="An immutable one.")
        changed = ItemDraft(keys[1], [{"role": "user", "content": "A replaced prompt"}])
        v2 = edit_version(s, v1, add=[new], remove=[keys[0]], replace=[changed], note="curation")
        assert v2.number == 2 and v2.parent_id == v1.id
        assert v2.diff == {"added": ["extra-1"], "removed": [keys[0]], "replaced": [keys[1]]}
        d = diff_versions(s, v1, v2)
        assert [x["key"] for x in d["added"]] == ["extra-1"] and d["replaced"][0]["after"] == "A replaced prompt"
        assert d["unchanged"] == 10 and v2.sampling_report["edits"][0]["note"] == "curation"
        with pytest.raises(InputError, match="no item 'nope'"):
            edit_version(s, v2, remove=["nope"])
        with pytest.raises(InputError, match="already in"):
            edit_version(s, v2, add=[new])
        for fmt in ("jsonl", "csv", "parquet"):
            assert export_version(s, v2, tmp_path / f"out.{fmt}") == 12
    # JSONL export reads back into exactly the same version content
    with session_scope(engine) as s:
        back = ingest(s, [tmp_path / "out.jsonl"], "roundtrip", IngestOptions(fmt="openai", sample=0))
        assert back.version.content_hash == v2.content_hash
    import pyarrow.parquet as pq
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.num_rows == 12 and table.column("key").to_pylist()[-1] == "extra-1"
    assert table.column("prompt").to_pylist()[-1] == "What is a frozen eval set?"

    with engine.begin() as conn:
        conn.execute(text("UPDATE item SET reference = 'tampered' WHERE item_key = :k"), {"k": "extra-1"})
    with session_scope(engine) as s:
        assert any("extra-1" in p for p in verify(s, resolve_version(s, "arena@2", check=False)))
        with pytest.raises(IntegrityError):
            resolve_version(s, "arena@2")
        assert verify(s, resolve_version(s, "arena@1")) == []


def test_bad_options_are_input_errors(sqlite_engine) -> None:
    with session_scope(sqlite_engine) as s:
        for opts, where in ((IngestOptions(on_error="ignore"), "--on-error"), (IngestOptions(near_dup_threshold=0), "--near-dup-threshold"),
                            (IngestOptions(sample=-1), "--sample"), (IngestOptions(sample=100, pool_cap=10), "--pool-cap")):
            with pytest.raises(InputError) as exc:
                ingest(s, [ARENA], "x", opts)
            assert exc.value.where == where
        with pytest.raises(InputError, match="no such file"):
            ingest(s, [ARENA.with_name("missing.jsonl")], "x")
        with pytest.raises(InputError, match="invalid set name"):
            ingest(s, [ARENA], "a@b")


def test_demo_freezes_250_arena_prompts(sqlite_engine) -> None:
    from ownbench.demo import ARENA_PROMPTS, freeze_arena_prompts

    source = SHARED_DATA / "chat_logs" / "arena_prompts_1135_with_votes.jsonl"
    if source.exists():  # the shipped copy is the shared file, unchanged
        import gzip
        assert gzip.decompress(ARENA_PROMPTS.read_bytes()) == source.read_bytes()
    with session_scope(sqlite_engine) as s:
        v = freeze_arena_prompts(s)
        label = (v.number, v.item_count)
        items = items_of(s, v)
        assert s.get(EvalSet, v.eval_set_id).name == "arena-prompts"
        report = v.sampling_report
    assert label == (1, 250) and report["records_read"] == 1135 and report["duplicates"]["exact"] > 0
    assert {i.meta["language"] for i in items} == {"English"} and all(i.meta["question_id"] == i.item_key for i in items)
    assert report["sampling"]["k"] >= 10 and report["sampling"]["quotas"]["multi_turn"]["filled"] > 0
    with session_scope(sqlite_engine) as s:
        assert freeze_arena_prompts(s).id == v.id
