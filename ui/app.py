"""The ownbench app: `streamlit run ui/app.py` (or `ownbench app`). A router over thin pages."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run ui/app.py` from a source checkout
    sys.path.insert(0, str(ROOT))

import streamlit as st

from ui import common

# A local file: a `:material/…:` or emoji icon makes every page load fetch its favicon from a CDN.
st.set_page_config(page_title="ownbench", page_icon=str(Path(__file__).with_name("static") / "favicon.png"),
                   layout="wide")

# Not "pages/": Streamlit treats a pages/ folder beside the entry point as the old multipage layout and
# then runs a page directly (without this router) when a deep link like /label is the first request.
PAGES = Path(__file__).with_name("views")
pages = [
    st.Page(str(PAGES / "overview.py"), title="Overview", icon=":material/home:", default=True),  # served at /
    st.Page(str(PAGES / "eval_sets.py"), title="Eval sets", icon=":material/folder_open:", url_path="eval-sets"),
    st.Page(str(PAGES / "rubrics.py"), title="Rubrics", icon=":material/rule:", url_path="rubrics"),
    st.Page(str(PAGES / "runs.py"), title="Runs", icon=":material/play_circle:", url_path="runs"),
    st.Page(str(PAGES / "label.py"), title="Label", icon=":material/label:", url_path="label"),
    st.Page(str(PAGES / "agreement.py"), title="Agreement", icon=":material/handshake:", url_path="agreement"),
    st.Page(str(PAGES / "rankings.py"), title="Rankings", icon=":material/leaderboard:", url_path="rankings"),
]
page = st.navigation(pages)

with st.sidebar:
    st.caption(f"Database: `{common.db_label()}`")
common.identity_sidebar()

page.run()
