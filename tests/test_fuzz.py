"""Property tests over hostile input (Hypothesis): log readers, rubric and candidates YAML, the runs, judgments
and labels imports, and the renderer for untrusted text.

The property everywhere: the input is accepted, or refused with an InputError that names where (the command
line turns it into exit code 2); never another exception, a hang or unbounded memory. Each target is bounded
by `max_examples` and a per-example deadline, so the whole file runs in seconds inside `make test`.
"""
from __future__ import annotations

import json
import string
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from storage.errors import InputError

BOUNDED = settings(max_examples=60, deadline=timedelta(seconds=10), derandomize=True,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# --- what hostile input is made of --------------------------------------------------------------------------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from(["user", "assistant", "system", "tool", "", "\x00", "\u202e", "NaN", "inf", "1e400"]),
)
_keys = st.one_of(st.text(max_size=12), st.sampled_from([
    "messages", "role", "content", "request", "response", "conversations", "from", "value", "input", "output",
    "inputs", "outputs", "run_type", "traceId", "observations", "type", "text", "id", "timestamp", "prompt",
    "question", "name", "data", "body",
]))
_json_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=5)), max_leaves=25)
_messages = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool", 7]),
                                            "content": _json_values}), max_size=4)
_records = st.one_of(
    st.fixed_dictionaries({"messages": _messages}),
    st.dictionaries(_keys, _json_values, max_size=6),
    _json_values,
)


def _line(draw_value: object) -> bytes:
    try:
        return json.dumps(draw_value, allow_nan=True).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError):
        return b"{}"


_garbage_lines = st.one_of(
    st.builds(_line, _records),
    st.binary(max_size=60),
    st.sampled_from([b"{", b"[", b'{"messages": ' + b"[" * 3000 + b"]" * 3000 + b"}", b"\xff\xfe", b"\x1f\x8b",
                     b'{"messages": [{"role": "user", "content": "hi"}]}', b"", b"\xef\xbb\xbf{}"]),
)
_jsonl_files = st.lists(_garbage_lines, min_size=0, max_size=8).map(lambda lines: b"\n".join(lines) + b"\n")


def _refused_with_location(exc: InputError, *paths: Path) -> None:
    """An InputError must say where: a file (name or path), a flag, or a file:line."""
    text = exc.message
    assert any(p.name in text for p in paths) or (exc.where or "").startswith("--"), text


# --- log readers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt,suffix", [("auto", ".jsonl"), ("openai", ".jsonl"), ("jsonl", ".jsonl"),
                                        ("langfuse", ".json"), ("langsmith", ".jsonl"), ("csv", ".csv"),
                                        ("openai", ".jsonl.gz")])
@BOUNDED
@given(content=_jsonl_files)
def test_log_readers_accept_or_refuse_with_a_location(tmp_path: Path, fmt: str, suffix: str, content: bytes) -> None:
    import gzip

    from evalsets.ingest import IngestOptions, read_pool
    from evalsets.readers.mapping import FieldMapping

    path = tmp_path / f"log{suffix}"
    data = content
    if suffix.endswith(".gz"):
        whole = gzip.compress(content)
        data = whole[: max(10, len(whole) * 2 // 3)] if len(content) % 2 else whole  # some cut short
    path.write_bytes(data)
    mapping = FieldMapping(prompt_field="question") if fmt in ("jsonl", "csv") else FieldMapping()
    try:
        pool = read_pool([path], IngestOptions(fmt=fmt, mapping=mapping, on_error="skip", sample=0))
    except InputError as exc:
        _refused_with_location(exc, path)
    else:
        for record in pool.records:
            assert isinstance(record.messages, list) and record.messages
            json.dumps(record.messages)  # what would be stored is JSON


# --- rubric and candidates YAML -----------------------------------------------------------------------------

_yaml_docs = st.one_of(
    st.builds(lambda v: yaml.safe_dump(v, allow_unicode=True), st.dictionaries(_keys, _json_values, max_size=6)),
    st.builds(lambda v: yaml.safe_dump({"name": "x", "description": "y", "criteria": v}, allow_unicode=True),
              st.lists(st.dictionaries(st.sampled_from(["id", "question", "type", "min", "max", "levels", "labels",
                                                        "weight", "examples", "uses_reference"]),
                                       _json_values, max_size=6), max_size=3)),
    st.text(alphabet=string.printable + "&*[]{}:-!|>'\"\u00e9\u202e", max_size=200),
    st.builds(lambda n, k: "a: &a [x, x, x, x, x, x, x, x]\n" + "".join(
        f"k{i}: &k{i} [" + ", ".join([f"*{'a' if i == 0 else f'k{i - 1}'}"] * k) + "]\n" for i in range(n)),
        st.integers(min_value=1, max_value=12), st.integers(min_value=1, max_value=9)),
    st.sampled_from(["x: " + "[" * 2000, "x: " + "{a: " * 500, "x: &x [*x]", "a: 1" + "0" * 6000, "--- 1\n--- 2\n",
                     "!!python/object:os.system {}", "? [a, b]\n: c\n", "<<: *nothing\n"]),
)


@BOUNDED
@given(text=_yaml_docs)
def test_rubric_yaml_gives_a_rubric_or_located_problems(text: str) -> None:
    from judging.rubric import validate_rubric_text

    rubric, problems = validate_rubric_text(text, "fuzz.yaml")
    assert (rubric is None) == bool(problems)
    for p in problems:
        assert p.source == "fuzz.yaml" and p.message
        str(p)  # printable as file:line: key: what


@BOUNDED
@given(text=_yaml_docs)
def test_candidates_yaml_gives_candidates_or_a_located_error(tmp_path: Path, text: str) -> None:
    from gateway.candidates import load_candidates

    path = tmp_path / "candidates.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        specs = load_candidates(path)
    except InputError as exc:
        _refused_with_location(exc, path)
    else:
        assert specs and all(s.config_hash() for s in specs)


# --- imports ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One SQLite project for every import example: a version, runs of three candidates, a stored rubric.
    Every example's import is rolled back, so the examples do not see each other."""
    from storage.db import make_engine
    from tests.test_analysis_reports import seed_study

    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}")
    (version_id, rubric_id, _), _ = seed_study(engine, items=6, golden=None)
    yield engine, version_id, rubric_id
    engine.dispose()


_import_fields = st.sampled_from(["item", "item_key", "item_id", "prompt_hash", "messages", "candidate", "candidate_b",
                                  "criterion", "label", "verdict", "annotator", "output", "text", "error", "judge",
                                  "rationale", "unscored_reason", "comment", "inclusion_prob", "prompt_tokens",
                                  "completion_tokens", "cost_usd", "latency_ms", "finish_reason"])
_import_values = st.one_of(_scalars, st.sampled_from(["q000", "q001", "baseline", "newer", "correct", "quality",
                                                      "tone", "pass", "3", "x" * 300, "\x00", "inf", "nan"]),
                           _json_values)
_import_rows = st.dictionaries(_import_fields, _import_values, max_size=7)
_import_files = st.lists(st.one_of(st.builds(_line, _import_rows), st.binary(max_size=40)), min_size=1, max_size=6)


@BOUNDED
@given(lines=_import_files, as_csv=st.booleans())
def test_every_import_accepts_or_refuses_with_file_and_line(study, tmp_path: Path, lines: list[bytes],  # type: ignore[no-untyped-def]
                                                            as_csv: bool) -> None:
    from analysis.labels import import_labels
    from gateway.imports import import_run
    from judging.imports import import_judgments
    from judging.rubric import rubric_from_version
    from storage.models import EvalSetVersion, RubricVersion

    engine, version_id, rubric_id = study
    path = tmp_path / ("rows.csv" if as_csv else "rows.jsonl")
    if as_csv:
        header = b"item,candidate,criterion,label,annotator,verdict,comment\n"
        path.write_bytes(header + b"\n".join(line.replace(b"{", b"").replace(b"}", b"") for line in lines) + b"\n")
    else:
        path.write_bytes(b"\n".join(lines) + b"\n")
    with Session(engine) as s:
        version = s.get(EvalSetVersion, version_id)
        stored = s.get(RubricVersion, rubric_id)
        assume(version is not None and stored is not None)
        rubric = None
        try:
            rubric = rubric_from_version(stored)
        except InputError:
            pass  # the simulated rubric row holds no YAML; the labels import reads its spec instead
        attempts = [lambda: import_labels(s, path, version_id, rubric_id)]
        if not as_csv:
            attempts.append(lambda: import_run(s, path, "fuzzed", version_id))
        if rubric is not None:
            attempts.append(lambda: import_judgments(s, path, version=version, rubric=rubric, judge_name="j"))
        for attempt in attempts:
            try:
                attempt()
                s.flush()  # what would be committed must be storable
            except InputError as exc:
                _refused_with_location(exc, path)
            finally:
                s.rollback()


def test_judgments_import_fuzz_has_a_rubric_to_work_with() -> None:
    """The judgments import is fuzzed only when a real rubric is stored; keep one available."""
    from judging.rubric import load_rubric

    assert load_rubric(Path(__file__).resolve().parents[1] / "rubrics" / "safety.yaml").criteria


@BOUNDED
@given(lines=_import_files)
def test_judgments_import_accepts_or_refuses_with_file_and_line(study, tmp_path: Path, lines: list[bytes]) -> None:  # type: ignore[no-untyped-def]
    from judging.imports import import_judgments
    from judging.rubric import load_rubric
    from storage.models import EvalSetVersion

    engine, version_id, _ = study
    rubric = load_rubric(Path(__file__).resolve().parents[1] / "rubrics" / "safety.yaml")
    path = tmp_path / "verdicts.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with Session(engine) as s:
        version = s.get(EvalSetVersion, version_id)
        try:
            import_judgments(s, path, version=version, rubric=rubric, judge_name="j")  # type: ignore[arg-type]
            s.flush()
        except InputError as exc:
            _refused_with_location(exc, path)
        finally:
            s.rollback()


# --- the renderer for untrusted text ------------------------------------------------------------------------

_markdownish = st.lists(st.one_of(
    st.sampled_from(list("![]()<>`~*_#|\\:/\n \t\"'") + ["http://x.test/a.png", "https://", "www.", "javascript:",
                                                         "```", "~~~", "    ", "&lt;", "\u202e", "\u200b", "[x]: ",
                                                         "<img src=x>", "<a href=", "mailto:", "data:"]),
    st.text(max_size=3)), max_size=40).map("".join)


@BOUNDED
@given(text=_markdownish)
def test_rendered_untrusted_text_has_no_image_link_or_html(text: str) -> None:
    from markdown_it import MarkdownIt

    from ui.render import message_text, neutralise_markdown

    out = neutralise_markdown(text)
    assert isinstance(out, str)
    md = MarkdownIt("commonmark")
    tokens = md.parse(out)
    kinds = set()
    stack = list(tokens)
    while stack:
        tok = stack.pop()
        kinds.add(tok.type)
        stack.extend(tok.children or [])
    assert not kinds & {"image", "link_open", "html_inline", "html_block"}, (text, out)
    assert isinstance(message_text([{"type": "text", "text": text}, {"type": "image_url"}, text, None]), str)
