"""Annotator names: one rule for every way a name arrives (the Label page, `golden select --annotators`,
`labels import`, a proxy header), and a get-or-create that holds when several processes open the same new
name at once."""
from __future__ import annotations

import unicodedata

from sqlmodel import Session, select

from storage.errors import InputError
from storage.models import Annotator

MAX_NAME = 200  # the column's length on every backend


def check_annotator_name(name: object, *, where: str = "annotator") -> str:
    """The name, stripped; InputError when it is empty, too long, or holds control characters."""
    text = str(name if name is not None else "").strip()
    if not text:
        raise InputError("annotator name is empty", where=where, hint="pick or type a name")
    if len(text) > MAX_NAME:
        raise InputError(f"annotator name is {len(text)} characters long; the limit is {MAX_NAME}", where=where,
                         hint="use a shorter name, e.g. the person's e-mail address or initials")
    bad = next((ch for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn")), None)
    if bad is not None:
        raise InputError(f"annotator name contains the invisible or control character U+{ord(bad):04X}",
                         where=where, hint="type the name with letters, digits, spaces and punctuation only")
    return text


def get_or_create_annotator(session: Session, name: object, *, where: str = "annotator") -> Annotator:
    """The annotator called `name`, created on first use. The insert ignores a row another process has just
    committed (ON CONFLICT DO NOTHING), so concurrent first uses of one name all get that one row."""
    text = check_annotator_name(name, where=where)
    found = session.exec(select(Annotator).where(Annotator.name == text)).first()
    if found is not None:
        return found
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    row = Annotator(name=text)
    session.execute(insert(Annotator.__table__).values(name=row.name, created_at=row.created_at)  # type: ignore[attr-defined]
                    .on_conflict_do_nothing(index_elements=["name"]))
    return session.exec(select(Annotator).where(Annotator.name == text)).one()
