"""What every page shares: the engine (cached once per process), sessions, who is signed in and their role,
picking a version / rubric, and a plain way to say that a part of ownbench is not available."""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, select

from analysis import people
from analysis.people import Viewer
from storage.errors import InputError
from storage.models import Annotator, EvalSet, EvalSetVersion, RubricVersion
from storage.names import check_name
from ui.render import inline

QUERY_TTL = 10  # seconds: read queries are cached briefly; labeling never reads from a cache


def database_url() -> str:
    """The same database as the CLI: OWNBENCH_DATABASE_URL, else OWNBENCH_HOME/ownbench.db."""
    from storage.db import configured_url

    return configured_url()


@st.cache_resource(show_spinner=False)
def _engine_for(url: str) -> Engine:
    from storage.db import make_engine

    return make_engine(url)


def engine() -> Engine:
    return _engine_for(database_url())


def db_label() -> str:
    return make_url(database_url()).render_as_string(hide_password=True)


@contextmanager
def session() -> Iterator[Session]:
    """A session that commits on success and rolls back everything on error."""
    from storage.db import session_scope

    with session_scope(engine()) as s:
        yield s


_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def secret_env() -> dict[str, str]:
    """Top-level `NAME = "value"` entries of `.streamlit/secrets.toml` (e.g. OPENAI_API_KEY): handed to
    background runs as environment variables, the same way the CLI reads keys; never stored or shown."""
    try:
        items = dict(st.secrets)
    except Exception:  # noqa: BLE001 - no secrets file is the normal case
        return {}
    return {k: v for k, v in items.items() if isinstance(v, str) and _ENV_NAME.match(k)}


def show_input_error(exc: InputError) -> None:
    """The same words the CLI prints, as an error box."""
    from ui.render import safe_markdown

    st.error(safe_markdown(exc.message))


# --- identity ---------------------------------------------------------------------------------------------------


def mode() -> str:
    """oidc | header | single-user, as ui.serve checked it at start-up (see ui.auth)."""
    from ui import auth

    try:
        oidc = "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file is the normal case
        oidc = False
    try:
        return auth.deployment_mode(auth.environ(), oidc)
    except auth.ConfigError as exc:  # started without ui.serve's check (`streamlit run ui/app.py`): refuse here too
        _refuse(f"Refused: {exc}")
        raise


def _refuse(message: str) -> None:
    st.title("ownbench")
    st.error(message)
    st.stop()


def viewer() -> Viewer:
    """Who uses this session. Stops the script (sign-in button, or the reason) when nobody with a role is here."""
    from ui import auth

    env = auth.environ()
    how = mode()
    if how == "single-user":
        picked = st.session_state.get("annotator") or None
        annotator_id = None
        if picked:
            with session() as s:
                found = people.person(s, picked)
                annotator_id = found.id if found is not None else None
        return Viewer(picked or "local user", people.OWNER, annotator_id, how)
    if how == "header":
        headers = st.context.headers
        if not auth.header_trusted(headers, env):
            _refuse("Refused: this request did not come through the authenticating proxy (its shared secret is "
                    "missing or wrong).")
        identity = (headers.get(env[auth.AUTH_HEADER_ENV]) or "").strip()
        if not identity:
            _refuse(f"Refused: the proxy did not say who you are (no `{env[auth.AUTH_HEADER_ENV]}` header).")
    else:
        if not st.user.is_logged_in:
            st.title("ownbench")
            st.write("Sign in to label, review or manage this project.")
            st.button("Sign in", type="primary", on_click=st.login)
            st.stop()
        identity = str(st.user.get("email") or st.user.get("sub") or "")
    with session() as s:
        found = people.signed_in(s, identity, how, auth.owners_from_env(env))
    if found is None:
        st.title("ownbench")
        st.warning(f"You are signed in as {escape_name(identity)}, who has no role in this project yet. Ask an "
                   "owner to add you on the People page or with `ownbench users add YOUR-IDENTITY`.")
        if how == "oidc":
            st.button("Sign out", on_click=st.logout)
        st.stop()
    return found  # type: ignore[return-value]


def require(capability: str, what: str) -> Viewer:
    """The viewer, if their role allows `capability`; otherwise the page stops with the reason (nothing read)."""
    v = viewer()
    if not v.can(capability):
        st.error(f"{what} is not available to {inline(v.name)} ({v.role}).")
        st.stop()
    return v


def current_annotator() -> str | None:
    """Whose labels the Label page saves: the signed-in person; in single-user mode the name picked in the sidebar
    (kept in this session only, never taken from the URL)."""
    v = viewer()
    if v.mode == "single-user":
        return st.session_state.get("annotator") or None
    return v.name


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def annotator_names(url: str) -> list[str]:
    """Everyone who has a role and may label."""
    with Session(_engine_for(url)) as s:
        return [a.name for a in s.exec(select(Annotator).where(Annotator.role.is_not(None))  # type: ignore[union-attr]
                                       .order_by(Annotator.name))]


def identity_sidebar(v: Viewer) -> str | None:
    """The sidebar block that says who is here; returns the annotator's name (None: nobody picked yet)."""
    if v.mode != "single-user":
        st.sidebar.markdown(f"**Signed in** as {escape_name(v.name)} ({v.role})")
        if v.mode == "oidc":
            st.sidebar.button("Sign out", on_click=st.logout, key="sign-out")
        return v.name
    st.sidebar.info("Single-user mode: no sign-in, listening on 127.0.0.1 only; whoever uses this app is its owner "
                    "and labels under the name picked here.")
    st.sidebar.markdown("**Label as**")
    names = annotator_names(database_url())
    current = st.session_state.get("annotator")
    typed_before = [current] if current and current not in names else []  # a new name typed earlier
    options = ["—"] + names + typed_before + ["(new name)"]
    index = options.index(current) if current in options else 0
    picked = st.sidebar.selectbox("Your name", options, index=index, key="annotator_pick",
                                  label_visibility="collapsed")
    if picked == "(new name)":
        typed = st.sidebar.text_input("New annotator name", key="annotator_new").strip()
        picked = "—"
        if typed:
            try:
                picked = check_name(typed, "annotator", where="new annotator name")
            except InputError as exc:
                st.sidebar.error(inline(exc.what) + "  \n" + inline(exc.hint))
    name = None if picked == "—" else picked
    st.session_state["annotator"] = name
    return name


def escape_name(name: str) -> str:
    return inline(name)  # the one renderer for untrusted text


# --- pickers ----------------------------------------------------------------------------------------------------


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def version_choices(url: str) -> list[tuple[int, str]]:
    """(version id, "set@N · hash · n items") newest first."""
    with Session(_engine_for(url)) as s:
        rows = s.exec(
            select(EvalSetVersion, EvalSet.name)
            .join(EvalSet, EvalSet.id == EvalSetVersion.eval_set_id)
            .order_by(EvalSet.name, EvalSetVersion.number.desc())  # type: ignore[attr-defined]
        ).all()
        return [(v.id, f"{name}@{v.number} · {v.content_hash[:12]} · {v.item_count} items") for v, name in rows]


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def rubric_choices(url: str) -> list[tuple[int, str]]:
    with Session(_engine_for(url)) as s:
        rows = s.exec(select(RubricVersion).order_by(RubricVersion.name, RubricVersion.id.desc())).all()  # type: ignore[union-attr]
        return [(r.id, f"{r.name} · {r.content_hash[:12]} · {r.created_at:%Y-%m-%d %H:%M}") for r in rows]


def pick(label: str, choices: list[tuple[int, str]], key: str) -> int | None:
    if not choices:
        return None
    ids = [c[0] for c in choices]
    labels = dict(choices)
    return st.selectbox(label, ids, format_func=lambda i: labels[i], key=key)


def clear_read_caches() -> None:
    st.cache_data.clear()
