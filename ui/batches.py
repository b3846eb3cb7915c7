"""Provider batches (Batch API submissions) for the Runs page: what was sent, and where each one stands."""
from __future__ import annotations

from typing import Any

import streamlit as st
from sqlmodel import Session, select

from storage.models import ProviderBatch
from ui.common import QUERY_TTL, _engine_for


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def batches_table(url: str) -> list[dict[str, Any]]:
    with Session(_engine_for(url)) as s:
        rows = s.exec(select(ProviderBatch).order_by(ProviderBatch.id.desc()).limit(50)).all()  # type: ignore[union-attr]
        return [{"batch": b.batch_id or "(not created yet)", "for": f"{b.kind} run {b.judge_run_id or b.run_id}",
                 "model": b.model, "status": b.status, "requests": b.request_count,
                 "answered": (b.counts or {}).get("completed"), "failed": (b.counts or {}).get("failed"),
                 "submitted": b.created_at, "finished": b.completed_at} for b in rows]
