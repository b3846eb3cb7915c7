"""People, their roles and who may read what.

A `Viewer` is whoever asks: a signed-in person with a role, the local user of a single-user app (an owner), or
the command line (the operator, an owner). Queries that return judge verdicts, candidate names, other
people's labels, agreement or rankings take the viewer and refuse (`AccessDenied`) when its role does not
allow them; the app's pages only call them, so hiding a menu entry is never what keeps data blind.

Roles: owner (everything, manages people), reviewer (agreement, adjudication, rankings, runs, people and
progress), annotator (the Label page and their own progress, nothing else).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from storage.errors import InputError
from storage.models import ROLES, Annotator

OWNER, REVIEWER, ANNOTATOR = ROLES
# What each role may do. Pages and queries name the capability they need, never a role.
CAPABILITIES: dict[str, frozenset[str]] = {
    OWNER: frozenset({"label", "review", "operate", "manage_people"}),
    REVIEWER: frozenset({"label", "review"}),
    ANNOTATOR: frozenset({"label"}),
}
# review: judge verdicts and rationales, candidate names, everyone's labels, agreement, adjudication, rankings,
#         runs, people and progress. operate: eval sets, rubrics, starting runs. manage_people: the owners' page.



class AccessDenied(InputError):
    """The viewer's role does not allow this read or write."""


@dataclass(frozen=True)
class Viewer:
    name: str
    role: str
    annotator_id: int | None = None
    mode: str = "cli"  # cli | single-user | oidc | header

    def can(self, capability: str) -> bool:
        return capability in CAPABILITIES.get(self.role, frozenset())

    def require(self, capability: str, what: str) -> None:
        if not self.can(capability):
            raise AccessDenied(f"{what} is not available to {self.name} ({self.role})",
                               hint="an owner can change your role on the People page or with `ownbench users role`")


CLI = Viewer("command line", OWNER, None, "cli")


def check_name(name: str, where: str = "name") -> str:
    """A person's identity as stored: the one rule for names (`storage.names`), which allows e-mail addresses."""
    from storage.names import check_name as check

    if not (name or "").strip():
        raise InputError("the name is empty", where=where, hint="give the identity people sign in with, e.g. an e-mail")
    return check(name, "annotator", where=where)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}", where="role", hint="one of: " + ", ".join(ROLES))
    return role


def person(session: Session, name: str) -> Annotator | None:
    return session.exec(select(Annotator).where(Annotator.name == name)).first()


def add(session: Session, name: str, role: str = ANNOTATOR) -> Annotator:
    """Add a person, or give a removed person a role again; an existing person keeps their role (refused)."""
    name, role = check_name(name), check_role(role)
    found = person(session, name)
    if found is not None and found.role is not None:
        raise InputError(f"{name} is already a {found.role}", where="name",
                         hint=f"change a role with `ownbench users role {name} ROLE`")
    if found is None:
        found = Annotator(name=name, role=role)
    found.role = role
    session.add(found)
    session.flush()
    return found


def set_role(session: Session, name: str, role: str) -> Annotator:
    role = check_role(role)
    found = person(session, name)
    if found is None or found.role is None:
        raise InputError(f"no person called {name!r}", where="name", hint="`ownbench users list` shows everyone")
    if found.role == OWNER and role != OWNER:
        _keep_an_owner(session, found)
    found.role = role
    session.add(found)
    session.flush()
    return found


def remove(session: Session, name: str) -> Annotator:
    """Take a person's role away; their labels stay, attributed to them."""
    found = person(session, name)
    if found is None or found.role is None:
        raise InputError(f"no person called {name!r}", where="name", hint="`ownbench users list` shows everyone")
    if found.role == OWNER:
        _keep_an_owner(session, found)
    found.role = None
    session.add(found)
    session.flush()
    return found


def _keep_an_owner(session: Session, leaving: Annotator) -> None:
    others = session.exec(select(Annotator).where(Annotator.role == OWNER, Annotator.id != leaving.id)).first()
    if others is None:
        raise InputError(f"{leaving.name} is the last owner", where="role",
                         hint="make someone else an owner first: nobody could manage people otherwise")


def everyone(session: Session, *, include_removed: bool = False) -> list[Annotator]:
    rows = session.exec(select(Annotator).order_by(Annotator.name)).all()
    return [a for a in rows if include_removed or a.role is not None]


def signed_in(session: Session, identity: str, mode: str, owners: tuple[str, ...] = ()) -> Viewer | None:
    """The viewer for a signed-in identity, or None when that person has no role here.

    Identities listed in OWNBENCH_OWNERS (`owners`) are owners, created on their first sign-in: that is how a
    fresh deployment gets its first owner without the command line. Nobody else is created by signing in.
    """
    identity = (identity or "").strip()
    if not identity:
        return None
    found = person(session, identity)
    if identity in owners:
        if found is None:
            found = Annotator(name=check_name(identity, "OWNBENCH_OWNERS"), role=OWNER)
        found.role = OWNER
        session.add(found)
        session.flush()
    if found is None or found.role is None:
        return None
    return Viewer(found.name, found.role, found.id, mode)
