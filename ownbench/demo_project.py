"""`ownbench demo`: a project built from real data shipped in the repository (see demo_data/*/ATTRIBUTION).

478 Chatbot Arena prompts with GPT-4 reference answers are ingested, 250 are sampled and frozen as
`arena-hard`, the recorded answers of five models are imported as runs (source "imported"), the shipped
rubrics are stored, and a judge run starts in the background when a judge is configured. Nothing here
invents a label or a verdict: judgments come from the configured judge, labels from people in the app.
Every step is idempotent: running the demo again reuses what is already there.
"""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from storage.db import project_dir, session_scope
from storage.errors import InputError
from storage.hashing import file_hash
from storage.models import Job, JudgeRun, RubricVersion, Run

DEMO_DATA = Path(str(resources.files("ownbench") / "demo_data" / "arena_hard_1k"))
DEMO_MODELS = ("gpt-4", "claude-v1", "gpt-3.5-turbo", "vicuna-13b-v1.5", "Llama-2-70b-chat")
SET_NAME = "arena-hard"
DEMO_RUBRIC = "helpfulness"
SOURCE_LINE = ("lm-sys/FastChat, fastchat/llm_judge/data/arena_hard_1k/ at commit "
               "396a8b2f2f06c18300e1efa364a981262b339b8c, Apache-2.0")

JUDGE_MODEL_ENV = "OWNBENCH_JUDGE_MODEL"
JUDGE_API_BASE_ENV = "OWNBENCH_JUDGE_API_BASE"
JUDGE_API_KEY_ENV = "OWNBENCH_JUDGE_API_KEY_ENV"  # the NAME of the variable holding the key
JUDGE_LIMIT_ENV = "OWNBENCH_DEMO_JUDGE_LIMIT"

HOW_TO_CONFIGURE_JUDGE = (
    "No judge is configured. Set OWNBENCH_JUDGE_MODEL to a LiteLLM model string (e.g. openai/gpt-4o-mini) "
    "with its key in the provider's usual variable (e.g. OPENAI_API_KEY), or run the local judge with "
    "`make local-judge` (found on 127.0.0.1:8090 by itself); then start a judge run on the Runs page "
    "(or `ownbench judge`). Labeling need not wait: draw a golden subset by candidate alone on the Agreement "
    "page (or `ownbench golden select --strategy candidate`)."
)

Say = Callable[[str], None]


@dataclass
class DemoResult:
    version: str
    version_id: int
    items: int
    runs: list[str] = field(default_factory=list)
    rubrics: list[str] = field(default_factory=list)
    other_sets: list[str] = field(default_factory=list)
    judge_job_id: int | None = None
    judge_message: str = ""


LOCAL_JUDGE_ENV = "OWNBENCH_LOCAL_JUDGE"  # base URL of the local judge; "off" disables looking for it
LOCAL_JUDGE_URL = "http://127.0.0.1:8090/v1"  # `make local-judge`
LOCAL_JUDGE_MODEL = "openai/qwen2.5-coder-0.5b"
# The demo slice: the first 20 items × 5 candidates = 100 outputs. The gate opens at 30 golden labels per
# criterion with at least 5 per candidate, among judged outputs; the Agreement page draws 60 units by default,
# 12 per candidate out of 20: enough, with room for skipped or unusable ones.
LOCAL_JUDGE_DEFAULT_LIMIT = 20
# Measured: the demo's slice, 100 judgments, took 8 min 26 s on an idle 2-core machine (5.1 s a judgment, 2
# threads); on cores busy with other work it went at about 20 s a judgment.
LOCAL_SECONDS_PER_JUDGMENT = 5
HOW_TO_START_LOCAL_JUDGE = (
    "No judge is configured and no local judge answers at {base}. For the whole loop offline, start one with "
    "`make local-judge` (the first time it compiles llama-cpp-python, 6–13 min on 2 cores) and run `make demo` "
    "again: it then judges a slice of the demo set in the background. Labeling need not wait: draw a golden "
    "subset by candidate alone on the Agreement page (or `ownbench golden select --strategy candidate`)."
)


@dataclass
class LocalJudge:
    """What looking for the local judge found: its config when it gave a real verdict, else why not."""

    config: dict[str, str] | None
    message: str


def find_local_judge(verdict_timeout_s: float = 120) -> LocalJudge:
    """The local judge of `make local-judge`, when it answers `GET /v1/models` and a real chat completion with a
    valid verdict (a server that lists models but cannot judge is not taken); its slots come from `/props`."""
    import urllib.request

    from gateway.servers import server_slots
    from judging.local_model import ask_verdict

    base = os.environ.get(LOCAL_JUDGE_ENV, LOCAL_JUDGE_URL).strip().rstrip("/")
    if base.lower() in ("", "off", "0", "no"):
        return LocalJudge(None, HOW_TO_CONFIGURE_JUDGE)
    try:
        with urllib.request.urlopen(base + "/models", timeout=1.5) as resp:
            if resp.status != 200:
                raise OSError(f"HTTP {resp.status}")
    except OSError:
        return LocalJudge(None, HOW_TO_START_LOCAL_JUDGE.format(base=base))
    try:
        ask_verdict(base, timeout_s=verdict_timeout_s)
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        return LocalJudge(None, f"a server answers at {base} but gave no valid verdict to a real chat request "
                                f"({exc}); no judge run started. Restart it with `make local-judge`.")
    slots = server_slots(base) or 1
    return LocalJudge({"model": LOCAL_JUDGE_MODEL, "api_base": base, "local": "yes", "slots": str(slots)}, "")


def local_judge() -> dict[str, str] | None:
    """The local judge's config when it is up and gives real verdicts, else None."""
    return find_local_judge().config


def judge_config_from_env() -> dict[str, str] | None:
    """The judge the environment names, else the local judge if it runs, else None (the Runs page then says
    how to configure one)."""
    model = os.environ.get(JUDGE_MODEL_ENV, "").strip()
    if not model:
        return local_judge()
    cfg = {"model": model}
    if os.environ.get(JUDGE_API_BASE_ENV):
        cfg["api_base"] = os.environ[JUDGE_API_BASE_ENV].strip()
    if os.environ.get(JUDGE_API_KEY_ENV):
        cfg["api_key_env"] = os.environ[JUDGE_API_KEY_ENV].strip()
    return cfg


def _read_jsonl_gz(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _first_turn(answer: dict[str, Any]) -> str | None:
    choices = answer.get("choices") or []
    turns = choices[0].get("turns") if choices else None
    return turns[0] if turns else None


def prepare_prompts(work: Path) -> Path:
    """The prompts with their reference answers as one JSONL log file for the ordinary ingest."""
    refs = {a["question_id"]: _first_turn(a) for a in _read_jsonl_gz(DEMO_DATA / "reference_answer" / "gpt-4.jsonl.gz")}
    out = work / "arena_hard_prompts.jsonl"
    with out.open("w", encoding="utf-8") as fh:
        for q in _read_jsonl_gz(DEMO_DATA / "question.jsonl.gz"):
            row = {"id": q["question_id"], "prompt": q["turns"][0], "reference": refs.get(q["question_id"]),
                   "category": q.get("category"), "language": q.get("language")}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return out


def prepare_answers(work: Path, model: str, keys: set[str]) -> Path:
    """One model's recorded answers to the frozen items, in the import format (item_key, output, model)."""
    out = work / "answers" / f"{model}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for a in _read_jsonl_gz(DEMO_DATA / "model_answer" / f"{model}.jsonl.gz"):
            if a["question_id"] in keys and (text := _first_turn(a)) is not None:
                fh.write(json.dumps({"item_key": a["question_id"], "output": text, "model": a.get("model_id", model)},
                                    ensure_ascii=False) + "\n")
    return out


def build_demo(
    engine: Engine,
    work: Path,
    *,
    sample: int = 250,
    seed: int = 0,
    start_judge: bool = True,
    say: Say = lambda _m: None,
) -> DemoResult:
    from evalsets.freeze import version_label
    from evalsets.ingest import IngestOptions, ingest
    from evalsets.readers import FieldMapping
    from gateway.imports import import_run
    from judging.rubric import RUBRICS_DIR, load_rubric, rubric_files, store_rubric

    work.mkdir(parents=True, exist_ok=True)
    say(f"data: {SOURCE_LINE}")
    prompts = prepare_prompts(work)
    options = IngestOptions(
        fmt="jsonl",
        mapping=FieldMapping(prompt_field="prompt", id_field="id", reference_field="reference",
                             metadata_fields=("category", "language")),
        sample=sample, seed=seed,
        description=f"Chatbot Arena prompts with GPT-4 reference answers ({SOURCE_LINE})",
    )
    with session_scope(engine) as s:
        result = ingest(s, [prompts], SET_NAME, options)
        version = result.version
        label = version_label(s, version)
        keys = set(s.exec(select_keys(version.id)).all())
        say(f"eval set {label}: {version.item_count} items, hash {version.content_hash[:12]}"
            + ("" if result.created else " (already frozen)"))
        demo = DemoResult(version=label, version_id=int(version.id), items=version.item_count)

    for model in DEMO_MODELS:
        path = prepare_answers(work, model, keys)
        shipped = DEMO_DATA / "model_answer" / f"{model}.jsonl.gz"
        with session_scope(engine) as s:
            imported = import_run(s, path, model, demo.version_id)
            run = s.get(Run, imported.run.id)
            if run is not None and imported.created:
                run.config = {**(run.config or {}), "shipped_file": f"demo_data/arena_hard_1k/model_answer/{shipped.name}",
                              "shipped_file_sha256": file_hash(str(shipped)), "data_source": SOURCE_LINE}
                s.add(run)
        demo.runs.append(f"{model}: {imported.imported} outputs" + ("" if imported.created else " (already imported)"))
        say(f"run {model}: {imported.imported} of {imported.total_items} items "
            + ("imported" if imported.created else "(imported before)"))

    with session_scope(engine) as s:
        for origin, path in rubric_files():
            row = store_rubric(s, load_rubric(path))
            demo.rubrics.append(f"{row.name} ({row.content_hash[:8]})")
            say(f"rubric {row.name} ({row.content_hash[:8]}): {path} ({origin})")
    if not demo.rubrics:
        raise InputError("no rubric file found to store", where=str(RUBRICS_DIR),
                         hint="reinstall ownbench: the shipped rubrics are missing from the installation")

    try:
        from ownbench import demo as arena_demo  # the eval-set area's second demo set, when present
    except ImportError:
        arena_demo = None  # type: ignore[assignment]
    if arena_demo is not None and hasattr(arena_demo, "freeze_arena_prompts"):
        with session_scope(engine) as s:
            other = arena_demo.freeze_arena_prompts(s)
            name = version_label(s, other) if hasattr(other, "eval_set_id") else str(other)
            demo.other_sets.append(name)
            say(f"eval set {name} (1,135 Chatbot Arena prompts, sampled)")

    if start_judge:
        demo.judge_job_id, demo.judge_message = start_demo_judge(engine, demo)
        say(demo.judge_message)
    return demo


def select_keys(version_id: int):  # type: ignore[no-untyped-def]
    from storage.models import Item

    return select(Item.item_key).where(Item.version_id == version_id)


def judge_argv(version: str, rubric: str, job_id: int, cfg: dict[str, str], limit: int | None) -> list[str]:
    """`ownbench judge … --job ID`: the same command a person would type, run in the background."""
    argv = [sys.executable, "-c", "from ownbench.cli import main; main()", "judge", "--set", version,
            "--rubric", rubric, "--judge", cfg["model"], "--job", str(job_id)]
    if cfg.get("api_base"):
        argv += ["--api-base", cfg["api_base"]]
    if cfg.get("api_key_env"):
        argv += ["--api-key-env", cfg["api_key_env"]]
    if cfg.get("local"):  # llama.cpp enforces the verdict's JSON schema; the short prompt suits a 0.5B model
        argv += ["--structured", "json_object_schema", "--template", "pointwise_compact",
                 "--concurrency", cfg.get("slots") or "1"]
    if limit:
        argv += ["--limit", str(limit)]
    return argv


def spawn_job(engine: Engine, kind: str, argv: list[str], log_dir: Path) -> int:
    """Create the Job row, then start `argv` detached (its own session), so it outlives the caller."""
    from storage.jobs import create_job, update_job

    job_id = create_job(engine, kind, {"argv": ["<this job>" if a == "__JOB__" else a for a in argv[3:]]})
    argv = [a if a != "__JOB__" else str(job_id) for a in argv]
    log_dir.mkdir(parents=True, exist_ok=True)
    log = (log_dir / f"job-{job_id}.log").open("ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=str(project_dir()))
    update_job(engine, job_id, status="queued", pid=proc.pid, message=f"started: log in {log.name}")
    return job_id


def start_demo_judge(engine: Engine, demo: DemoResult) -> tuple[int | None, str]:
    if os.environ.get(JUDGE_MODEL_ENV, "").strip():
        cfg = judge_config_from_env()
    else:
        found = find_local_judge()
        cfg = found.config
        if cfg is None:
            return None, found.message
    assert cfg is not None
    with Session(engine) as s:
        busy = s.exec(select(Job).where(Job.kind == "judge", Job.status.in_(("queued", "running")))).first()  # type: ignore[attr-defined]
        done = s.exec(select(JudgeRun).where(JudgeRun.version_id == demo.version_id,
                                             JudgeRun.judge_model == cfg["model"])).first()
    if busy is not None:
        return busy.id, f"a judge run is already in progress (job {busy.id}); see the Runs page"
    sliced = done is not None and done.status == "stopped" and (done.status_reason or "").startswith("limited")
    if done is not None and (done.status == "done" or sliced):  # a slice (--limit) judged in full counts
        return None, f"judge run {done.id} with {cfg['model']} exists already; see the Runs page"
    limit = int(os.environ.get(JUDGE_LIMIT_ENV, "0") or 0) or (LOCAL_JUDGE_DEFAULT_LIMIT if cfg.get("local") else None)
    from ownbench import settings

    with Session(engine) as s:
        rubric = s.exec(select(RubricVersion).where(RubricVersion.name == DEMO_RUBRIC)
                        .order_by(RubricVersion.id.desc())).first()  # type: ignore[union-attr]
    if rubric is None:
        return None, f"the {DEMO_RUBRIC} rubric is not stored; no judge run started"
    argv = judge_argv(demo.version, f"{rubric.name}@{rubric.content_hash[:12]}", 0, cfg, limit)
    argv[argv.index("--job") + 1] = "__JOB__"
    job_id = spawn_job(engine, "judge", argv, settings.home() / "jobs")
    if cfg.get("local"):
        return job_id, local_judge_message(cfg, limit, job_id, len(DEMO_MODELS))
    scope = f"the first {limit} items" if limit else "every item"
    return job_id, (f"judge run started in the background with {cfg['model']} on {scope} (job {job_id}); "
                    "watch it on the Runs page")


def local_judge_message(cfg: dict[str, str], limit: int | None, job_id: int, candidates: int) -> str:
    units = (limit or 0) * candidates
    minutes = max(1, round(units * LOCAL_SECONDS_PER_JUDGMENT / int(cfg.get("slots") or 1) / 60))
    return (f"local judge found at {cfg['api_base']} ({cfg['slots']} slot(s)): judging the first {limit} items "
            f"× {candidates} candidates = {units} outputs in the background with {cfg['model']}, "
            f"{cfg['slots']} call(s) in flight (job {job_id}); about {minutes} min at the ~{LOCAL_SECONDS_PER_JUDGMENT} s "
            "a judgment measured on an idle 2-core machine (about 20 s on busy cores). The Overview page shows its progress. "
            "Why this slice: rankings need 30 "
            "golden labels with at least 5 per candidate among judged outputs; once it is done, draw the golden "
            "subset from this judge run on the Agreement page (60 units by default, 12 per candidate) and label "
            "them on the Label page.")
