"""Every log reader on files built from real public prompts, and on hand-made malformed files: each problem
is reported as `file:line: reason`."""
from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

from conftest import FIXTURES

from evalsets.readers import FieldMapping, LogRecord, ReadContext, ReadError, detect_format, reader_for

LOGS = FIXTURES / "logs"
ARENA = LOGS / "arena_39.jsonl"
SHAREGPT = LOGS / "sharegpt_30.json"


def arena_rows() -> list[dict]:
    return [json.loads(line) for line in ARENA.read_text(encoding="utf-8").splitlines()]


def read(path: Path | str, fmt: str, **mapping) -> tuple[list[LogRecord], list[ReadError], ReadContext]:
    ctx = ReadContext(str(path), FieldMapping(**mapping))
    out = list(reader_for(fmt)(ctx))
    return [r for r in out if isinstance(r, LogRecord)], [e for e in out if isinstance(e, ReadError)], ctx


def write_jsonl(path: Path, rows: list, *, gz: bool = False) -> Path:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --- real files -----------------------------------------------------------------------------------------------

def test_generic_jsonl_on_arena_turns_keeps_every_user_turn() -> None:
    records, errors, ctx = read(ARENA, "jsonl", prompt_field="turns", id_field="question_id",
                                metadata_fields=("language", "turn"))
    rows = arena_rows()
    assert errors == [] and len(records) == len(rows) == 39
    for rec, row in zip(records, rows):
        assert rec.key == row["question_id"]
        assert [m["content"] for m in rec.messages] == row["turns"]
        assert {m["role"] for m in rec.messages} == {"user"}
        assert rec.meta == {"language": "English", "turn": row["turn"]}
    assert sum(len(r.messages) > 1 for r in records) == 10
    assert records[4].source == f"{ARENA}:5"


def test_field_guess_and_auto_detection() -> None:
    records, errors, ctx = read(ARENA, "jsonl")
    assert ctx.notes["prompt_field"] == "turns" and not errors and records[0].key == arena_rows()[0]["question_id"]
    assert detect_format(ARENA) == "jsonl"
    assert detect_format(SHAREGPT) == "openai"


def test_sharegpt_json_document_streams_with_line_numbers() -> None:
    records, errors, _ = read(SHAREGPT, "openai")
    data = json.loads(SHAREGPT.read_text(encoding="utf-8"))
    assert len(records) == 29 and [r.key for r in records] == [d["id"] for d in data[:29]]
    assert records[0].messages == [{"role": "user", "content": data[0]["conversations"][0]["value"]}]
    # the last entry opens with a "gpt" turn: a real record with no user turn, located at its opening brace
    lines = SHAREGPT.read_text(encoding="utf-8").splitlines()
    assert len(errors) == 1 and "no user turn" in errors[0].reason
    assert lines[errors[0].line - 1].strip() == "{" and data[-1]["id"] in lines[errors[0].line]
    assert lines[int(records[3].source.rsplit(":", 1)[1]) - 1].strip() == "{"


def test_openai_chat_shapes_and_gzip(tmp_path: Path) -> None:
    rows = arena_rows()
    multi = next(r for r in rows if len(r["turns"]) == 2)
    shapes = [
        {"id": "plain", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": rows[0]["turns"][0]}]},
        {"id": "parts", "messages": [{"role": "user", "content": [{"type": "text", "text": rows[1]["turns"][0]}]}]},
        {"id": "image", "messages": [{"role": "user", "content": [{"type": "text", "text": rows[2]["turns"][0]},
                                                                    {"type": "image_url", "image_url": {"url": "data:,"}}]}]},
        {"request": {"model": "gpt-4o", "messages": [{"role": "user", "content": multi["turns"][0]},
                                                    {"role": "assistant", "content": "(answer)"},
                                                    {"role": "user", "content": multi["turns"][1]},
                                                    {"role": "assistant", "content": "(final answer)"}]},
         "response": {"choices": [{"message": {"role": "assistant", "content": "(final answer)"}}]},
         "metadata": {"team": "support"}},
    ]
    path = write_jsonl(tmp_path / "chat.jsonl.gz", shapes, gz=True)
    assert detect_format(path) == "openai"
    records, errors, _ = read(path, "openai")
    assert errors == [] and [r.key for r in records] == ["plain", "parts", "image", None]
    assert records[0].messages[0] == {"role": "system", "content": "Be brief."}
    assert records[1].messages == [{"role": "user", "content": rows[1]["turns"][0]}]  # text parts → one string
    assert isinstance(records[2].messages[0]["content"], list)  # images are kept as parts
    # multi-turn: every message up to the last user turn, the logged answer after it left out
    assert [m["role"] for m in records[3].messages] == ["user", "assistant", "user"]
    assert records[3].messages[-1]["content"] == multi["turns"][1] and records[3].meta == {"model": "gpt-4o", "team": "support"}  # the request's model is kept


def test_csv_and_parquet_with_mapping(tmp_path: Path) -> None:
    rows = arena_rows()
    path = tmp_path / "prompts.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["question_id", "language", "prompt", "winner"])
        for r in rows:
            w.writerow([r["question_id"], r["language"], r["turns"][0], r["winner"]])
    records, errors, _ = read(path, "csv", prompt_field="prompt", id_field="question_id", metadata_fields=("winner",))
    assert errors == [] and len(records) == 39
    assert [r.messages[0]["content"] for r in records] == [r["turns"][0] for r in rows]  # multi-line cells intact
    assert records[2].meta == {"winner": rows[2]["winner"]}
    # the source line is the physical line where the record starts, even after multi-line quoted cells
    lines = path.read_text(encoding="utf-8").splitlines()
    for rec in records:
        assert lines[int(rec.source.rsplit(":", 1)[1]) - 1].startswith(rec.key)

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq_path = tmp_path / "prompts.parquet"
    pq.write_table(pa.Table.from_pylist([{"question_id": r["question_id"], "turns": r["turns"],
                                          "language": r["language"]} for r in rows]), pq_path, row_group_size=7)
    assert detect_format(pq_path) == "parquet"
    records, errors, _ = read(pq_path, "parquet", prompt_field="turns", id_field="question_id",
                              metadata_fields=("language",))
    assert errors == [] and [r.key for r in records] == [r["question_id"] for r in rows]
    assert [len(r.messages) for r in records] == [len(r["turns"]) for r in rows]
    assert records[8].source == f"{pq_path}:9"


def langfuse_export(rows: list[dict]) -> list[dict]:
    out = []
    for i, r in enumerate(rows[:6]):
        trace = f"trace-{i}"
        out.append({"id": f"span-{i}", "traceId": trace, "type": "SPAN", "name": "retrieve", "input": {"q": 1}})
        out.append({"id": f"gen-{i}", "traceId": trace, "type": "GENERATION", "name": "answer", "model": "gpt-4o-mini",
                    "input": [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": r["turns"][0]}],
                    "output": {"role": "assistant", "content": "…"}, "metadata": {"lang": "en"},
                    "startTime": "2024-05-01T10:00:00Z"})
    return out


def test_langfuse_observations_export_json_and_single_trace(tmp_path: Path) -> None:
    rows = arena_rows()
    path = tmp_path / "observations.json"
    path.write_text(json.dumps({"data": langfuse_export(rows), "meta": {"page": 1}}, indent=2), encoding="utf-8")
    assert detect_format(path) == "langfuse"
    records, errors, ctx = read(path, "langfuse")
    assert errors == [] and [r.key for r in records] == [f"gen-{i}" for i in range(6)]
    assert records[0].messages[1]["content"] == rows[0]["turns"][0]
    assert records[0].meta["model"] == "gpt-4o-mini" and records[0].meta["trace_id"] == "trace-0"
    assert ctx.ignored == {"observation of type SPAN": 6}
    # a trace downloaded from the UI: one object with its observations; and a traces table without them
    single = tmp_path / "trace-abc.json"
    single.write_text(json.dumps({"id": "abc", "name": "chat", "input": "ignored when generations exist",
                                  "observations": langfuse_export(rows)[:2]}, indent=2), encoding="utf-8")
    records, errors, _ = read(single, "langfuse")
    assert errors == [] and [r.key for r in records] == ["gen-0"]
    traces = tmp_path / "traces.jsonl"
    write_jsonl(traces, [{"id": f"t{i}", "timestamp": "2024-05-01T10:00:00Z", "input": {"question": r["turns"][0]},
                          "tags": ["prod"]} for i, r in enumerate(rows[:5])]
                + [{"id": "t-bad", "timestamp": "2024-05-01", "input": {"foo": 1}}])
    records, errors, _ = read(traces, "langfuse")
    assert [r.messages[0]["content"] for r in records] == [r["turns"][0] for r in rows[:5]]
    assert len(errors) == 1 and errors[0].line == 6 and "--prompt-field" in errors[0].reason


def test_langsmith_runs_export(tmp_path: Path) -> None:
    rows = arena_rows()
    runs = []
    for i, r in enumerate(rows[:5]):
        runs.append({"id": f"chain-{i}", "run_type": "chain", "name": "RunnableSequence", "parent_run_id": None,
                     "inputs": {"question": r["turns"][0]}, "outputs": {"output": "…"}})
        lc = [[{"lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", "SystemMessage"],
                "kwargs": {"content": "Answer well."}},
               {"lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", "HumanMessage"],
                "kwargs": {"content": r["turns"][0]}}]]
        plain = [[{"type": "human", "data": {"content": r["turns"][0]}}]]
        runs.append({"id": f"llm-{i}", "run_type": "llm", "name": "ChatOpenAI", "parent_run_id": f"chain-{i}",
                     "inputs": {"messages": lc if i % 2 else plain}, "outputs": {"generations": [[{"text": "…"}]]},
                     "extra": {"metadata": {"ls_model_name": "gpt-4o"}}, "tags": ["prod"]})
    runs.append({"id": "llm-prompt", "run_type": "llm", "inputs": {"prompts": [rows[6]["turns"][0]]}, "outputs": {}})
    path = write_jsonl(tmp_path / "runs.jsonl", runs)
    assert detect_format(path) == "langsmith"
    records, errors, ctx = read(path, "langsmith")
    assert errors == [] and [r.key for r in records] == [f"llm-{i}" for i in range(5)] + ["llm-prompt"]
    assert records[1].messages == [{"role": "system", "content": "Answer well."},
                                   {"role": "user", "content": rows[1]["turns"][0]}]
    assert records[0].messages == [{"role": "user", "content": rows[0]["turns"][0]}]
    assert records[0].meta["model"] == "gpt-4o" and ctx.ignored == {"chain runs": 5}
    # the prompt of chain runs, by field
    records, errors, ctx = read(path, "langsmith", prompt_field="inputs.question")
    assert [r.key for r in records] == [f"chain-{i}" for i in range(5)] and ctx.ignored == {"runs without inputs.question": 6}


# --- malformed files ------------------------------------------------------------------------------------------

def errors_of(path: Path, fmt: str, **mapping) -> list[str]:
    return [str(e) for e in read(path, fmt, **mapping)[1]]


def test_truncated_json_wrong_types_and_missing_fields(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = json.dumps({"messages": [{"role": "user", "content": "hello there"}]})
    path.write_text("\n".join([
        good,
        '{"messages": [{"role": "user", "content": "cut off',            # 2 truncated
        json.dumps({"messages": "not a list"}),                           # 3 wrong type
        json.dumps({"messages": [{"role": "user", "content": 42}]}),     # 4 wrong type deeper
        json.dumps({"prompt": "no messages field"}),                      # 5 missing field
        json.dumps([1, 2]),                                               # 6 not an object
        json.dumps({"messages": [{"role": "wizard", "content": "hi"}]}),  # 7 unknown role
        json.dumps({"messages": [{"role": "assistant", "content": "only an answer"}]}),  # 8 no user turn
        "",                                                               # blank lines are fine
        good,
    ]) + "\n", encoding="utf-8")
    errs = errors_of(path, "openai")
    p = str(path)
    assert errs[0].startswith(f"{p}:2: truncated JSON")
    assert errs[1] == f"{p}:3: messages must be a list of messages, got text"
    assert errs[2] == f"{p}:4: messages[0].content must be text or a list of content parts, got a number"
    assert errs[3].startswith(f"{p}:5: no 'messages' field")
    assert errs[4] == f"{p}:6: expected a JSON object per line, got a list"
    assert errs[5].startswith(f"{p}:7: messages[0].role 'wizard' is not a chat role")
    assert errs[6] == f"{p}:8: the conversation has no user turn (roles: assistant)"
    assert len(errs) == 7 and len(read(path, "openai")[0]) == 2


def test_mapping_errors_name_the_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [{"q": "fine", "id": 1}, {"id": 2}, {"q": {"x": 1}, "id": 3},
                                               {"q": "", "id": 4}, {"q": "no id"}, {"q": "ok", "id": [1]}])
    errs = errors_of(path, "jsonl", prompt_field="q", id_field="id")
    p = str(path)
    assert errs == [
        f"{p}:2: missing prompt field 'q'",
        f"{p}:3: field 'q' is an object without messages or text (fields: x); name the field with --prompt-field",
        f"{p}:4: field 'q' is empty",
        f"{p}:5: missing id field 'id'",
        f"{p}:6: id field must be text or a whole number, got a list",
    ]


def test_invalid_utf8_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "enc.jsonl"
    line = lambda text: json.dumps({"messages": [{"role": "user", "content": text}]}, ensure_ascii=False).encode()
    path.write_bytes(b"\xef\xbb\xbf" + line("caf\u00e9 with a BOM") + b"\r\n" + b'{"messages": "\xff\xfe"}\r\n'
                     + line("crlf ending") + b"\r\n")
    records, errors, _ = read(path, "openai")
    assert [r.messages[0]["content"] for r in records] == ["caf\u00e9 with a BOM", "crlf ending"]
    assert [str(e) for e in errors] == [f"{path}:2: invalid UTF-8 (byte 15 of the line); re-encode the file as UTF-8"]
    # the same in CSV: a BOM before the header, CRLF endings, and a bad line
    csv_path = tmp_path / "enc.csv"
    csv_path.write_bytes(b"\xef\xbb\xbfid,prompt\r\n1,first\r\n2,caf\xe9 latin-1\r\n3,third\r\n")
    records, errors, _ = read(csv_path, "csv", prompt_field="prompt", id_field="id")
    assert [r.key for r in records] == ["1", "3"] and [e.line for e in errors] == [3]
    assert "invalid UTF-8" in errors[0].reason


def test_empty_files(tmp_path: Path) -> None:
    for name, fmt in (("e.jsonl", "openai"), ("e.jsonl", "jsonl"), ("e.csv", "csv"), ("e.json", "langfuse")):
        path = tmp_path / name
        path.write_bytes(b"")
        assert errors_of(path, fmt, prompt_field="p" if fmt in ("jsonl", "csv") else None) == [
            f"{path}:1: the file is empty" + (": no header row and no log records" if fmt == "csv" else ": no log records")
        ]
    path = tmp_path / "empty_list.json"
    path.write_text("[\n]\n")
    assert errors_of(path, "openai") == [f"{path}:1: the file holds an empty list: no log records"]


def test_a_single_10_mb_line_is_refused_without_breaking_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    huge = json.dumps({"messages": [{"role": "user", "content": "x" * (10 * 1024 * 1024)}]})
    small = json.dumps({"messages": [{"role": "user", "content": "after the big one"}]})
    path.write_text(small + "\n" + huge + "\n" + small.replace("after", "still after") + "\n", encoding="utf-8")
    records, errors, _ = read(path, "openai")
    assert [r.messages[0]["content"] for r in records] == ["after the big one", "still after the big one"]
    assert len(errors) == 1 and str(errors[0]).startswith(f"{path}:2: record is 10,485,")
    assert "over the 4,194,304-byte limit" in errors[0].reason
    # a record that large inside a JSON list cannot be skipped: the file stops there, with its line
    doc = tmp_path / "big.json"
    doc.write_text("[\n" + small + ",\n" + huge + "\n]\n", encoding="utf-8")
    records, errors, _ = read(doc, "openai")
    assert len(records) == 1 and errors[0].line == 3 and "limit" in errors[0].reason


def test_ragged_csv_rows(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text('id,prompt,lang\n1,"hello, world",en\n2,too few\n3,"multi\nline",en\n4,a,b,c\n5,fine,en\n',
                    encoding="utf-8")
    records, errors, _ = read(path, "csv", prompt_field="prompt", id_field="id", metadata_fields=("lang",))
    assert [r.key for r in records] == ["1", "3", "5"] and records[1].messages[0]["content"] == "multi\nline"
    assert [str(e) for e in errors] == [f"{path}:3: row has 2 fields, the header has 3",
                                        f"{path}:6: row has 4 fields, the header has 3"]
    assert errors_of(path, "csv", prompt_field="text") == [f"{path}:1: no column 'text' (columns: id, prompt, lang)"]


def test_truncated_json_document_reports_its_line(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    full = json.dumps([{"messages": [{"role": "user", "content": f"question {i}"}]} for i in range(3)], indent=2)
    path.write_text(full[: full.rindex("question 2") + 5], encoding="utf-8")
    records, errors, _ = read(path, "openai")
    assert len(records) == 2 and len(errors) == 1
    assert errors[0].reason.startswith("truncated JSON") and errors[0].line == full[: full.rindex("question 2")].count("\n") + 1
    bad = tmp_path / "syntax.json"
    bad.write_text('[\n {"messages": [{"role": "user", "content": "a"}]},\n {"messages": oops}\n]\n')
    records, errors, _ = read(bad, "openai")
    assert len(records) == 1 and str(errors[0]).startswith(f"{bad}:3 $[1]: invalid JSON: Expecting value")
