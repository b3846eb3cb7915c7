"""Eval sets: versions with hash, size and sampling report; an item browser with search; the diff between two
versions; freezing a new version from an upload with the same readers and errors as `ownbench ingest`."""
from __future__ import annotations

import tempfile
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st
from sqlmodel import Session, select

from evalsets import ingest as ingest_mod
from evalsets import versions as versions_mod
from storage.errors import InputError
from storage.models import EvalSet, EvalSetVersion, Item
from ui import common
from ui.render import inline, show_chat, show_controls, show_text

viewer = common.require("operate", "The Eval sets page")  # checked here, where the page reads data
st.title("Eval sets")
url = common.database_url()
eng = common.engine()


@st.cache_data(ttl=common.QUERY_TTL, show_spinner=False)
def versions_table(url: str) -> list[dict]:
    with Session(common._engine_for(url)) as s:
        rows = s.exec(select(EvalSetVersion, EvalSet.name).join(EvalSet, EvalSet.id == EvalSetVersion.eval_set_id)
                      .order_by(EvalSet.name, EvalSetVersion.number)).all()
        return [{"version": f"{name}@{v.number}", "id": v.id, "hash": v.content_hash, "items": v.item_count,
                 "skipped records": v.skipped_count, "parent": v.parent_id, "frozen": v.created_at} for v, name in rows]


versions = versions_table(url)
browse, diff_tab, upload = st.tabs(["Versions and items", "Diff", "Freeze from a file"])

with browse:
    if not versions:
        st.info("No eval set yet: freeze one from a log file in the **Freeze from a file** tab.")
    else:
        st.dataframe(pd.DataFrame(versions).drop(columns=["id"]), hide_index=True, width="stretch")
        labels = {v["id"]: f"{v['version']} · {v['hash'][:12]} · {v['items']} items" for v in versions}
        vid = st.selectbox("Version", list(labels), format_func=labels.get, index=len(labels) - 1, key="sets-version")
        with Session(eng) as s:
            version = s.get(EvalSetVersion, vid)
            report = (version.sampling_report or {}) if version else {}
        st.caption(f"SHA-256 `{version.content_hash}`" if version else "")
        sampling = report.get("sampling") or {}
        clusters = sampling.get("clusters") or []
        if clusters:
            st.markdown(f"**Sampling**: {inline(sampling.get('method', '?'))}, seed {inline(sampling.get('seed'))}, "
                        f"{inline(sampling.get('n_selected'))} of a pool of {inline(sampling.get('pool_size'))}")
            cdf = pd.DataFrame([{"cluster": show_controls(f"{c['id']}: {' '.join(map(str, c.get('top_terms', [])[:4]))}"),
                                 "in the pool": c["size"], "selected": c["selected"]} for c in clusters])
            long = cdf.melt("cluster", var_name="count of", value_name="prompts")
            chart = alt.Chart(long).mark_bar().encode(
                y=alt.Y("cluster:N", sort=None, title=None), x=alt.X("prompts:Q"),
                color=alt.Color("count of:N"), yOffset="count of:N", tooltip=["cluster", "count of", "prompts"])
            st.altair_chart(chart, width="stretch")
        if report:
            with st.expander("Full sampling report"):
                st.json({k: v for k, v in report.items() if k != "selected"})
        query = st.text_input("Search the items (key or text)", key="sets-search")
        with Session(eng) as s:
            items = s.exec(select(Item).where(Item.version_id == vid).order_by(Item.position)).all()
        if query:
            q = query.lower()
            items = [i for i in items if q in i.item_key.lower() or q in str(i.messages).lower()]
        st.caption(f"{len(items)} item(s)")
        page_size = 20
        pages = max(1, (len(items) + page_size - 1) // page_size)
        page = st.number_input("Page", min_value=1, max_value=pages, value=1, key="sets-page") if pages > 1 else 1
        for item in items[(page - 1) * page_size: page * page_size]:
            first = next((m for m in item.messages if m.get("role") == "user"), {})
            preview = inline(f"{item.item_key} — {first.get('content', '')}", limit=110)
            with st.expander(f"{item.position + 1}\\. {preview}"):
                show_chat(st, item.messages)
                if item.reference:
                    st.markdown("**Reference answer**")
                    show_text(st, item.reference)
                if item.meta:
                    st.json(item.meta, expanded=False)

with diff_tab:
    if len(versions) < 2:
        st.info("A diff needs two versions.")
    else:
        labels = {v["id"]: v["version"] for v in versions}
        c1, c2 = st.columns(2)
        a = c1.selectbox("From", list(labels), format_func=labels.get, key="diff-a")
        b = c2.selectbox("To", list(labels), format_func=labels.get, index=len(labels) - 1, key="diff-b")
        if a != b:
            with Session(eng) as s:
                d = versions_mod.diff_versions(s, s.get(EvalSetVersion, a), s.get(EvalSetVersion, b))
            st.markdown(f"**{inline(d['from']['ref'])}** ({d['from']['items']} items) → **{inline(d['to']['ref'])}** "
                        f"({d['to']['items']} items): {len(d['added'])} added, {len(d['removed'])} removed, "
                        f"{len(d['replaced'])} replaced, {d['unchanged']} unchanged")
            for kind in ("added", "removed", "replaced"):
                if d[kind]:
                    st.markdown(f"**{kind.capitalize()}**")
                    st.dataframe(pd.DataFrame(d[kind]), hide_index=True, width="stretch")

with upload:
    from evalsets.readers import FORMATS, FieldMapping

    with st.form("freeze-upload"):
        files = st.file_uploader("Log files (JSONL, JSON, CSV/TSV, Parquet; .gz too)", accept_multiple_files=True)
        name = st.text_input("Eval set name", placeholder="support-bot")
        c1, c2, c3 = st.columns(3)
        fmt = c1.selectbox("Format", ["auto", *FORMATS])
        sample = c2.number_input("Sample (0 keeps all)", min_value=0, value=250)
        seed = c3.number_input("Seed", min_value=0, value=0)
        c4, c5, c6 = st.columns(3)
        prompt_field = c4.text_input("Prompt field (optional)")
        id_field = c5.text_input("Id field (optional)")
        reference_field = c6.text_input("Reference field (optional)")
        on_error = st.radio("Malformed records", ["fail", "skip"], horizontal=True)
        redact = st.checkbox("Redact e-mails, phone numbers, keys …")
        submitted = st.form_submit_button("Freeze", type="primary")
    if submitted:
        if not files:
            st.error("Choose at least one file.")
        else:
            with tempfile.TemporaryDirectory() as tmp:
                paths = []
                for f in files:
                    path = Path(tmp) / Path(f.name).name  # the file's own name: errors say file:line
                    path.write_bytes(f.getvalue())
                    paths.append(path)
                options = ingest_mod.IngestOptions(
                    fmt=fmt, sample=int(sample), seed=int(seed), on_error=on_error, redact=redact,
                    mapping=FieldMapping(prompt_field=prompt_field or None, id_field=id_field or None,
                                         reference_field=reference_field or None))
                try:
                    options.check()
                    with common.session() as s:
                        result = ingest_mod.ingest(s, paths, name.strip(), options)
                        label = f"{name.strip()}@{result.version.number}"
                        digest = result.version.content_hash
                        count = result.version.item_count
                    common.clear_read_caches()
                    if result.created:
                        st.success(f"Froze {inline(label)}: {count} items, hash {digest[:12]}")
                    else:
                        st.info(f"This content is already frozen as {inline(label)} (hash {digest[:12]}).")
                except InputError as exc:
                    common.show_input_error(exc)
