"""Demo seeding: the shipped Chatbot Arena prompts (Apache-2.0, see demo_data/) frozen as `arena-prompts`."""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlmodel import Session

    from evalsets.ingest import IngestOptions, Progress
    from storage.models import EvalSetVersion

DEMO_DATA = Path(str(resources.files("ownbench") / "demo_data"))
ARENA_PROMPTS = DEMO_DATA / "arena_prompts_1135.jsonl.gz"
ARENA_SET = "arena-prompts"
ARENA_SAMPLE = 250


def arena_options() -> IngestOptions:
    from evalsets.ingest import IngestOptions
    from evalsets.readers import FieldMapping

    return IngestOptions(
        fmt="jsonl",
        mapping=FieldMapping(prompt_field="turns", id_field="question_id",
                             metadata_fields=("language", "question_id", "turn")),
        sample=ARENA_SAMPLE,
        seed=0,
        description="1,135 real Chatbot Arena prompts (lm-sys/FastChat, Apache-2.0), 250 sampled by topic",
    )


def freeze_arena_prompts(session: Session, progress: Progress | None = None) -> EvalSetVersion:
    """Ingest the shipped arena prompts and freeze 250 of them; running it again returns the same version."""
    from evalsets.ingest import ingest

    return ingest(session, [ARENA_PROMPTS], ARENA_SET, arena_options(), progress).version
