"""Annotator names: one rule for every way a name arrives (the Label page, `golden select --annotators`,
`labels import`, a proxy header), and a get-or-create that holds when several processes open the same new
name at once."""
from __future__ import annotations

from sqlmodel import Session, select

from storage.models import Annotator
from storage.names import check_name



def check_annotator_name(name: object, *, where: str = "annotator") -> str:
    """The name, stripped; InputError when it breaks the one rule for names (`storage.names`)."""
    return check_name(name, "annotator", where=where)


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
