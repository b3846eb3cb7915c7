"""The ownbench app: `streamlit run ui/app.py` (or `ownbench app`). A router over thin pages."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run ui/app.py` from a source checkout
    sys.path.insert(0, str(ROOT))

import streamlit as st

from ui import common
from ui.render import inline

# A local file: a `:material/…:` or emoji icon makes every page load fetch its favicon from a CDN.
st.set_page_config(page_title="ownbench", page_icon=str(Path(__file__).with_name("static") / "favicon.png"),
                   layout="wide")

# Not "pages/": Streamlit treats a pages/ folder beside the entry point as the old multipage layout and
# then runs a page directly (without this router) when a deep link like /label is the first request.
PAGES = Path(__file__).with_name("views")
viewer = common.viewer()  # stops here with a sign-in button (or the reason) when nobody with a role is signed in
# (file, title, icon, url path, capability). Each page checks the capability again where it reads data:
# leaving a page out of the menu is a convenience, not what keeps it closed.
PAGE_TABLE = [
    ("overview.py", "Overview", ":material/home:", None, "review"),
    ("eval_sets.py", "Eval sets", ":material/folder_open:", "eval-sets", "operate"),
    ("rubrics.py", "Rubrics", ":material/rule:", "rubrics", "operate"),
    ("runs.py", "Runs", ":material/play_circle:", "runs", "review"),
    ("label.py", "Label", ":material/label:", "label", "label"),
    ("agreement.py", "Agreement", ":material/handshake:", "agreement", "review"),
    ("adjudication.py", "Adjudication", ":material/gavel:", "adjudication", "review"),
    ("rankings.py", "Rankings", ":material/leaderboard:", "rankings", "review"),
    ("judges.py", "Judges", ":material/balance:", "judges", "review"),
    ("people.py", "People", ":material/group:", "people", "review"),
]
allowed = [row for row in PAGE_TABLE if viewer.can(row[4])]
pages = [
    st.Page(str(PAGES / f), title=title, icon=icon, default=f == "overview.py",  # the default page is served at /
            **({"url_path": path} if path else {}))
    for f, title, icon, path, _cap in allowed
]
if viewer.can("review"):
    page = st.navigation(pages)
else:
    # An annotator has the Label page only: / leads to it, /label (the link people are sent) is it, and the menu
    # is hidden. (Were Label the default page it would be served at / and /label would be "Page not found".)
    label_page = pages[0]

    def start() -> None:
        st.switch_page(label_page)

    page = st.navigation([st.Page(start, title="Start", default=True), *pages], position="hidden")

with st.sidebar:
    if viewer.can("operate"):
        st.caption(f"Database: {inline(common.db_label())}")
common.identity_sidebar(viewer)

page.run()
