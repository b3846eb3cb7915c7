"""Storage on SQLite and PostgreSQL: migrations match the tables, freeze is atomic and verifiable."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel, select

from evalsets.freeze import ItemDraft, freeze, resolve_version, verify
from storage.db import session_scope
from storage.errors import InputError, IntegrityError
from storage.models import EvalSet, EvalSetVersion, Item

DRAFTS = [
    ItemDraft("a", [{"role": "user", "content": "Explain WAL mode in SQLite."}], meta={"lang": "en"}),
    ItemDraft("b", [{"role": "user", "content": "¿Qué es un índice?"}], reference="Una estructura…"),
    ItemDraft("c", [{"role": "system", "content": "be brief"}, {"role": "user", "content": "2+2?"}]),
]
# The hash of DRAFTS' canonical JSON, pinned: it must not move across backends, runs or releases.
PINNED = "d3f2bac72eff26eca30122d975abc05501079206c2e7b301478966cd4f5b77e7"


def test_migrations_match_tables(engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == [], f"tables and migrations differ; add a new migration: {diff}"


def test_freeze_verify_and_resolve(engine) -> None:
    with session_scope(engine) as s:
        v = freeze(s, "support", DRAFTS, sampling_report={"pool": 3})
        digest = v.content_hash
    with session_scope(engine) as s:
        v = resolve_version(s, "support@1")
        assert v.content_hash == digest and v.item_count == 3
        assert verify(s, v) == []
        assert resolve_version(s, "support").id == v.id
        assert resolve_version(s, digest[:12]).id == v.id
        items = s.exec(select(Item).where(Item.version_id == v.id).order_by(Item.position)).all()
        assert [i.messages for i in items] == [d.messages for d in DRAFTS]


def test_hash_is_identical_across_backends_and_runs(engine) -> None:
    from evalsets.freeze import version_hash

    with session_scope(engine) as s:
        digest = freeze(s, "support", DRAFTS).content_hash
    assert digest == version_hash(d.payload() for d in DRAFTS)
    assert digest == PINNED


def test_refreezing_same_content_returns_same_version(engine) -> None:
    with session_scope(engine) as s:
        a = freeze(s, "support", DRAFTS)
    with session_scope(engine) as s:
        b = freeze(s, "support", DRAFTS)
        assert a.id == b.id
        assert s.exec(select(EvalSetVersion)).all().__len__() == 1


def test_new_version_records_parent_and_diff(engine) -> None:
    with session_scope(engine) as s:
        first = freeze(s, "support", DRAFTS)
    changed = [DRAFTS[0], ItemDraft("b", [{"role": "user", "content": "What is an index?"}]), ItemDraft("d", [{"role": "user", "content": "hi"}])]
    with session_scope(engine) as s:
        second = freeze(s, "support", changed)
        assert second.number == 2 and second.parent_id == first.id
        assert second.diff == {"added": ["d"], "removed": ["c"], "replaced": ["b"]}


def test_tampering_fails_verify_and_is_refused(engine) -> None:
    with session_scope(engine) as s:
        freeze(s, "support", DRAFTS)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE item SET reference = 'tampered' WHERE item_key = 'a'")
        )
    with session_scope(engine) as s:
        v = resolve_version(s, "support@1", check=False)
        problems = verify(s, v)
        assert any("'a'" in p for p in problems) and any("version hash" in p for p in problems)
        with pytest.raises(IntegrityError, match="failed verification"):
            resolve_version(s, "support@1")


def test_failed_freeze_leaves_nothing(engine) -> None:
    bad = DRAFTS + [ItemDraft("a", [{"role": "user", "content": "duplicate key"}])]
    with pytest.raises(InputError, match="more than once"):
        with session_scope(engine) as s:
            freeze(s, "support", bad)
    with pytest.raises(Exception):
        with session_scope(engine) as s:  # a failure after rows were flushed must roll them all back
            freeze(s, "support", DRAFTS)
            raise RuntimeError("crash after flush")
    with session_scope(engine) as s:
        assert s.exec(select(EvalSet)).all() == []
        assert s.exec(select(Item)).all() == []


def test_unknown_version_names_the_known_sets(engine) -> None:
    with session_scope(engine) as s:
        freeze(s, "support", DRAFTS)
    with session_scope(engine) as s, pytest.raises(InputError, match="sets: support"):
        resolve_version(s, "suport@1")
