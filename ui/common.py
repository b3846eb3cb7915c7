"""What every page shares: the engine (cached once per process), sessions, the annotator's identity,
picking a version / rubric, and a plain way to say that a part of ownbench is not available."""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, select

from storage.errors import InputError
from storage.models import Annotator, EvalSet, EvalSetVersion, RubricVersion
from storage.names import check_name
from ui.render import inline

AUTH_HEADER_ENV = "OWNBENCH_AUTH_HEADER"  # e.g. X-Forwarded-User behind an authenticating proxy
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


# --- identity -------------------------------------------------------------------------------------------------


def auth_header_name() -> str | None:
    name = os.environ.get(AUTH_HEADER_ENV)
    if not name:
        try:
            name = st.secrets.get("auth_header")  # type: ignore[assignment]
        except Exception:  # noqa: BLE001 - no secrets file is the normal case
            name = None
    return name or None


def current_annotator() -> str | None:
    """The annotator's name: from the deployment's auth header when one is configured, else as picked."""
    header = auth_header_name()
    if header:
        value = st.context.headers.get(header)
        return value.strip() if value else None
    return st.session_state.get("annotator") or st.query_params.get("annotator") or None


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def annotator_names(url: str) -> list[str]:
    with Session(_engine_for(url)) as s:
        return [a.name for a in s.exec(select(Annotator).order_by(Annotator.name))]


def identity_sidebar() -> str | None:
    """The sidebar block that says who is labeling; returns the annotator's name (None: nobody yet)."""
    header = auth_header_name()
    st.sidebar.markdown("**Annotator**")
    if header:
        name = current_annotator()
        if name:
            st.sidebar.markdown(f"Signed in as {inline(name)}")
        else:
            st.sidebar.warning(f"This deployment identifies annotators by the `{header}` header, which is missing.")
        return name
    names = annotator_names(database_url())
    current = current_annotator()
    options = ["—"] + names + (["(new name)"])
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
    if name != st.session_state.get("annotator"):
        st.session_state["annotator"] = name
        if name:
            st.query_params["annotator"] = name
        elif "annotator" in st.query_params:
            del st.query_params["annotator"]
    return name


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
