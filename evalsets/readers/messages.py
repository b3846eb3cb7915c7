"""The one message normaliser: every reader turns what a log holds into the item's conversation here.

Understood shapes (as a value, or stored as JSON text inside a string):
- OpenAI chat messages (text or content parts, `tool_calls`, `tool` messages), ShareGPT, LangChain;
- OpenAI Responses: `instructions` + `input` (text or items: messages, `function_call`, `function_call_output`);
- Anthropic Messages: `system` + content blocks (`text`, `tool_use`, `tool_result`, images);
- Gemini `contents` / `parts` (`model` is the assistant, `function_call` / `function_response`,
  `system_instruction`);
- OpenTelemetry GenAI messages with `parts` (`text`, `tool_call`, `tool_call_response`) and
  `gen_ai.system_instructions`;
- request bodies wrapping any of those (`messages`, `contents`, `input`, `prompt`), and a Python `repr` or
  `role: text` transcript as some SDKs log them.

Everything becomes OpenAI's chat shape: `{"role", "content"}` with `tool_calls` on assistant turns
(`{"id", "type": "function", "function": {"name", "arguments"}}`, arguments as JSON text) and `tool` messages
carrying `tool_call_id`. Text-only content-part arrays become one string (parts joined by a blank line) so the
same prompt logged either way is the same item; arrays with images or audio are kept as parts.

A value of an unknown shape is refused (`RecordError`), never guessed into a wrong prompt.
"""
from __future__ import annotations

import ast
import json
import re
from typing import Any

from evalsets.readers.base import RecordError, describe_type, loads

ROLES = {
    "user": "user", "human": "user", "humanmessage": "user", "humanmessagechunk": "user",
    "assistant": "assistant", "ai": "assistant", "gpt": "assistant", "bot": "assistant", "model": "assistant",
    "chatgpt": "assistant", "aimessage": "assistant", "aimessagechunk": "assistant",
    "system": "system", "systemmessage": "system", "developer": "developer",
    "tool": "tool", "toolmessage": "tool", "function": "function", "functionmessage": "function",
    "ipython": "tool",
}
TEXT_PART_TYPES = {"text", "input_text", "output_text"}
RESULT_PART_TYPES = {"tool_call_response", "tool_result", "function_response", "tool-result"}
SKIPPED_PART_TYPES = {"thinking", "redacted_thinking", "reasoning", "refusal"}
KEEP_FIELDS = ("name", "tool_calls", "tool_call_id", "function_call")
# Fields of a logged input object that hold the user's text (Langfuse decorators, LangChain chains).
TEXT_INPUT_KEYS = ("messages", "input", "query", "question", "prompt", "text", "user_input", "message")

# Reasons under which refused records are counted (`--on-error skip`).
KIND_EMPTY = "empty prompt"
KIND_NO_USER = "no user turn"
KIND_UNKNOWN_JSON = "JSON text of an unknown shape"
KIND_QUOTED = "JSON-quoted cell"
KIND_SHAPE = "unrecognised message shape"


def refuse(reason: str, kind: str = KIND_SHAPE) -> RecordError:
    exc = RecordError(reason)
    exc.kind = kind  # type: ignore[attr-defined]
    return exc


# --- entry points -----------------------------------------------------------------------------------------


def conversation(value: Any, where: str, *, decode_json: bool = True, system: Any = None) -> list[dict[str, Any]]:
    """Any logged input as a full conversation (every message, tool calls and results kept).

    `decode_json`: a string that is JSON text is parsed (logs that serialised a structure); API request fields
    whose string is the user's literal text pass False. `system`: a system prompt logged beside the input."""
    msgs = _any(value, where, decode_json)
    sys_msgs = _system_messages(system, f"{where} system") if system not in (None, "", []) else []
    return sys_msgs + msgs


def prompt_from(value: Any, where: str, *, decode_json: bool = True, system: Any = None) -> list[dict[str, Any]]:
    """The prompt a logged input asked: its conversation up to and including the last user turn."""
    return prompt_of(conversation(value, where, decode_json=decode_json, system=system))


def normalise_messages(raw: Any, what: str = "messages") -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise refuse(f"{what} must be a list of messages, got {describe_type(raw)}")
    if not raw:
        raise refuse(f"{what} is empty", KIND_EMPTY)
    out: list[dict[str, Any]] = []
    for i, m in enumerate(raw):
        # the common cases first: {"role", "content": text} and OTel's {"role", "parts": [text parts]}
        if type(m) is dict and len(m) == 2 and type(m.get("role")) is str:
            role = ROLES.get(m["role"].lower())
            if role is not None and role not in ("tool", "function"):
                if type(m.get("content")) is str:
                    out.append({"role": role, "content": m["content"]})
                    continue
                text = _text_parts(m.get("parts"))
                if text is not None:
                    out.append({"role": role, "content": text})
                    continue
        _append(out, _item(m, f"{what}[{i}]"))
    if not out:
        raise refuse(f"{what} holds no messages", KIND_EMPTY)
    return out


def _text_parts(parts: Any) -> str | None:
    """OTel text parts (`[{"type": "text", "content"}]`) as one text, as `_parts` would join them; None for
    any other shape (the general path handles it)."""
    if type(parts) is not list or not parts:
        return None
    texts = []
    for p in parts:
        if type(p) is not dict or len(p) != 2 or p.get("type") != "text" or type(p.get("content")) is not str:
            return None
        texts.append(p["content"])
    return texts[0] if len(texts) == 1 else "\n\n".join(texts)


def normalise_message(m: Any, where: str) -> dict[str, Any]:
    msgs = _item(m, where)
    if len(msgs) != 1:
        raise refuse(f"{where} is not one message")
    return msgs[0]


# --- shapes -----------------------------------------------------------------------------------------------


def _any(value: Any, where: str, decode_json: bool) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return _text(value, where, decode_json)
    if isinstance(value, list):
        if not value:
            raise refuse(f"{where} is an empty list", KIND_EMPTY)
        if isinstance(value[0], str) and all(isinstance(v, str) for v in value):
            reprs = [_python_repr_message(v) for v in value]
            if all(r is not None for r in reprs):
                return [r for r in reprs if r is not None]
            return user_turns(value, where)
        return normalise_messages(value, where)
    if isinstance(value, dict):
        return _object(value, where, decode_json)
    if value is None:
        raise refuse(f"{where} is missing", KIND_EMPTY)
    raise refuse(f"{where} must be messages or text, got {describe_type(value)}")


_JSON_START = re.compile(r"\s*[\[{\"]")


def _text(value: str, where: str, decode_json: bool) -> list[dict[str, Any]]:
    if not value or value.isspace():
        raise refuse(f"{where} is empty", KIND_EMPTY)
    if decode_json and _JSON_START.match(value):
        try:
            decoded = loads(value)
        except ValueError:
            decoded = None  # text that merely starts like JSON
        else:
            if isinstance(decoded, str):
                raise refuse(f"{where} is JSON-quoted text ({value[:40]!r}…); store the text itself", KIND_QUOTED)
            try:
                return _any(decoded, f"{where} (JSON text)", decode_json)
            except RecordError as exc:
                if getattr(exc, "kind", None) == KIND_SHAPE:
                    raise refuse(f"{where} is JSON text of an unknown shape: {exc}", KIND_UNKNOWN_JSON) from None
                raise
    transcript = _transcript(value)
    if transcript is not None:
        return transcript
    return [{"role": "user", "content": value}]


_TRANSCRIPT_LINE = re.compile(r"^(system|developer|user|assistant|tool): ?", re.MULTILINE)


def _transcript(text: str) -> list[dict[str, Any]] | None:
    """`system: …\\nuser: …` as some agent SDKs log their prompt: split at role prefixes that start a line.
    Only when the text starts with one and a user turn is among them."""
    if not _TRANSCRIPT_LINE.match(text):
        return None
    marks = list(_TRANSCRIPT_LINE.finditer(text))
    if len(marks) < 2 or not any(m.group(1) == "user" for m in marks):
        return None
    msgs: list[dict[str, Any]] = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[m.end():end].rstrip("\n")
        role = m.group(1)
        if role == "assistant" and body == "None":  # a turn that only called tools
            continue
        msgs.append({"role": role, "content": body})
    return msgs


_REPR_ROLE = re.compile(r"^role='(\w+)' content=")
_PY_STR = re.compile(r"""(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""", re.DOTALL)


def _python_repr_message(text: str) -> dict[str, Any] | None:
    """A message logged as its Python repr (`role='user' content='…' name=None …`, e.g. Agno)."""
    m = _REPR_ROLE.match(text)
    if not m or m.group(1).lower() not in ROLES:
        return None
    rest = text[m.end():]
    if rest.startswith("None"):
        content = None
    else:
        s = _PY_STR.match(rest)
        if not s:
            return None
        try:
            content = ast.literal_eval(s.group(0))
        except (ValueError, SyntaxError):
            return None
    role = ROLES[m.group(1).lower()]
    if content is None:
        return {"role": role, "content": None} if role == "assistant" else None
    return {"role": role, "content": content}


def _object(value: dict, where: str, decode_json: bool) -> list[dict[str, Any]]:
    """A logged object: a request body, a wrapper around messages, or one message."""
    if "contents" in value:  # Gemini generate_content
        config = value.get("config") if isinstance(value.get("config"), dict) else {}
        system = (value.get("system_instruction") or value.get("systemInstruction")
                  or config.get("system_instruction") or config.get("systemInstruction"))
        return conversation(_gemini_contents(value["contents"], f"{where}.contents"), where,
                            system=system)
    if "messages" in value and value["messages"] is not None:
        system = value.get("system") or value.get("instructions")  # Anthropic / Vercel
        msgs = value["messages"]
        if isinstance(msgs, str) and not decode_json:
            msgs = [{"role": "user", "content": msgs}]
        return conversation(msgs, f"{where}.messages", decode_json=decode_json, system=system)
    if "input" in value and ("instructions" in value or "model" in value or isinstance(value["input"], list)):
        inp = value["input"]
        if isinstance(inp, str):  # the Responses API takes a string input as the user's text, whatever it holds
            if not inp.strip():
                raise refuse(f"{where}.input is empty", KIND_EMPTY)
            inp = [{"role": "user", "content": inp}]
        return conversation(inp, f"{where}.input", decode_json=decode_json, system=value.get("instructions"))
    if "prompt" in value and isinstance(value["prompt"], (str, list)) and ("model" in value or "system" in value):
        prompt = value["prompt"]
        if isinstance(prompt, str):
            if not prompt.strip():
                raise refuse(f"{where}.prompt is empty", KIND_EMPTY)
            prompt = [{"role": "user", "content": prompt}]
        return conversation(prompt, f"{where}.prompt", decode_json=decode_json, system=value.get("system"))
    if "role" in value or "from" in value or ("parts" in value and isinstance(value["parts"], list)) \
            or (value.get("lc") == 1 and isinstance(value.get("id"), list)):
        return _item(value, where)
    if isinstance(value.get("kwargs"), dict) and "messages" in value["kwargs"]:
        return _any(value["kwargs"]["messages"], f"{where}.kwargs.messages", decode_json)
    if isinstance(value.get("args"), list) and value["args"] and isinstance(value["args"][0], (str, list, dict)):
        return _any(value["args"][0], f"{where}.args[0]", decode_json)
    for key in TEXT_INPUT_KEYS:
        if key in value and isinstance(value[key], (str, list)):
            return _any(value[key], f"{where}.{key}", decode_json)
    fields = ", ".join(list(map(str, value))[:8])
    raise refuse(f"{where} is an object without messages or text (fields: {fields}); "
                 f"name the field with --prompt-field")


def _gemini_contents(contents: Any, where: str) -> list[Any]:
    """Gemini's `contents`: text, a list of texts / parts, or a list of Content objects."""
    if isinstance(contents, str):
        return [{"role": "user", "content": contents}]
    if isinstance(contents, dict):
        contents = [contents]
    if not isinstance(contents, list) or not contents:
        raise refuse(f"{where} must be text or a list of contents, got {describe_type(contents)}")
    if all(isinstance(c, str) for c in contents):
        return [{"role": "user", "content": "\n\n".join(contents)}]
    if all(isinstance(c, dict) and "parts" not in c and "role" not in c for c in contents):
        return [{"role": "user", "parts": contents}]  # a list of parts: one user turn
    return [dict(c, role=c.get("role") or "user") if isinstance(c, dict) else c for c in contents]


def _system_messages(system: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(system, str):
        return [{"role": "system", "content": system}] if system.strip() else []
    text = _text_parts(system)  # OTel's gen_ai.system_instructions
    if text is not None:
        return [{"role": "system", "content": text}] if text else []
    if isinstance(system, dict):  # a Gemini Content or one part
        parts = system.get("parts") if isinstance(system.get("parts"), list) else [system]
    elif isinstance(system, list):
        parts = system
    else:
        raise refuse(f"{where} must be text or parts, got {describe_type(system)}")
    content = _parts(parts, where, "system")
    return [{"role": "system", "content": content["content"]}] if content.get("content") else []


def _item(m: Any, where: str) -> list[dict[str, Any]]:
    """One entry of a message list as zero or more messages (a Responses tool call is its own item)."""
    if not isinstance(m, dict):
        raise refuse(f"{where} must be an object with role and content, got {describe_type(m)}")
    kind = m.get("type")
    if kind in ("function_call", "custom_tool_call") and "name" in m:  # Responses items
        return [{"role": "assistant", "content": None,
                 "tool_calls": [_tool_call(m.get("call_id") or m.get("id"), m["name"], m.get("arguments", m.get("input")))]}]
    if kind in ("function_call_output", "custom_tool_call_output"):
        return [{"role": "tool", "content": _as_text(m.get("output")), "tool_call_id": str(m.get("call_id") or "")}]
    if kind == "reasoning" or kind == "item_reference":
        return []
    if "role" in m:
        role_raw = m.get("role")
    elif "from" in m:  # ShareGPT
        return [_plain(ROLE(m.get("from"), where), m.get("value"), where, m)]
    elif m.get("lc") == 1 and isinstance(m.get("id"), list):  # LangChain serialised message
        kwargs = m.get("kwargs") or {}
        return [_plain(ROLE(m["id"][-1] if m["id"] else None, where), kwargs.get("content"), where, kwargs)]
    elif "type" in m and ("data" in m or "content" in m):  # LangChain message dict
        data = m.get("data") if isinstance(m.get("data"), dict) else m
        return [_plain(ROLE(m.get("type"), where), data.get("content"), where, data)]
    elif "parts" in m:  # a Gemini Content without a role
        role_raw = "user"
    else:
        raise refuse(f"{where} has no 'role' (fields: {', '.join(sorted(map(str, m))[:8])})")
    role = ROLE(role_raw, where)
    if role == "tool" and _is_tool_definition(m.get("content")):
        return []  # LangChain callbacks log the tools offered as "tool" messages: not part of the conversation
    if "parts" in m and "content" not in m:
        if not isinstance(m["parts"], list):
            raise refuse(f"{where}.parts must be a list, got {describe_type(m['parts'])}")
        return _split_results(_parts(m["parts"], f"{where}.parts", role))
    return _split_results(_plain(role, m.get("content"), where, m))


def _is_tool_definition(content: Any) -> bool:
    fn = content.get("function") if isinstance(content, dict) else None
    return (isinstance(fn, dict) and content.get("type") == "function" and "arguments" not in fn
            and ("parameters" in fn or "description" in fn))


def ROLE(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or raw.lower() not in ROLES:
        raise refuse(f"{where}.role {raw!r} is not a chat role (user, assistant, system, tool)")
    return ROLES[raw.lower()]


def _plain(role: str, content: Any, where: str, m: dict) -> dict[str, Any]:
    """An OpenAI / Anthropic / LangChain message."""
    msg: dict[str, Any] = {"role": role}
    extra_calls = []
    ak = m.get("additional_kwargs")
    if isinstance(ak, dict) and isinstance(ak.get("tool_calls"), list):  # LangChain kept them aside
        extra_calls = ak["tool_calls"]
    if isinstance(m.get("tool_calls"), list) and m["tool_calls"]:
        extra_calls = m["tool_calls"]
    if role == "tool" and isinstance(content, list) and content and all(
            isinstance(c, dict) and isinstance(c.get("function"), dict) and "arguments" in c["function"]
            for c in content):
        # a tool call logged under role "tool" (Koog): it is the assistant's call
        return {"role": "assistant", "content": None, "tool_calls": [_openai_call(c, where) for c in content]}
    if role in ("tool", "function") and isinstance(content, list) and any(
            isinstance(p, dict) and p.get("type") in RESULT_PART_TYPES for p in content):
        msg.update(_parts(content, f"{where}.content", role))  # Vercel AI SDK: tool-result parts
    elif role in ("tool", "function"):
        msg["content"] = _as_text(content) if not isinstance(content, str) else content
        if msg["content"] is None:
            raise refuse(f"{where}.content is missing")
    elif isinstance(content, list):
        parsed = _parts(content, f"{where}.content", role)
        msg.update(parsed)
        if "tool_calls" in parsed and extra_calls:
            extra_calls = []
    elif isinstance(content, str) or content is None:
        msg["content"] = content
    else:
        raise refuse(f"{where}.content must be text or a list of content parts, got {describe_type(content)}")
    if extra_calls:
        msg["tool_calls"] = [_openai_call(c, f"{where}.tool_calls[{i}]") for i, c in enumerate(extra_calls)]
    if m.get("function_call"):
        msg["function_call"] = m["function_call"]
    for key in ("name", "tool_call_id"):
        if isinstance(m.get(key), str) and m[key]:
            msg[key] = m[key]
    if msg.get("content") is None and not (msg.get("tool_calls") or msg.get("function_call") or msg.get("_results")):
        if role != "assistant":
            raise refuse(f"{where}.content is missing", KIND_EMPTY)
        msg["content"] = ""
    return msg


def _parts(parts: list, where: str, role: str) -> dict[str, Any]:
    """Content parts / blocks of every provider: text, tool calls, tool results, media."""
    texts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for j, part in enumerate(parts):
        w = f"{where}[{j}]"
        if isinstance(part, str):
            texts.append({"type": "text", "text": part})
            continue
        if not isinstance(part, dict):
            raise refuse(f"{w} must be a content part, got {describe_type(part)}")
        ptype = part.get("type")
        if ptype in TEXT_PART_TYPES or (ptype is None and isinstance(part.get("text"), str)):
            text = part.get("text")
            if text is None:
                text = part.get("content")  # OTel GenAI: {"type": "text", "content"}
            if not isinstance(text, str):
                raise refuse(f"{w}.text must be text, got {describe_type(text)}")
            if not part.get("thought"):  # Gemini thought summaries are not the conversation
                texts.append({"type": "text", "text": text})
        elif ptype == "text" or (ptype is None and "content" in part and isinstance(part.get("content"), str)):
            texts.append({"type": "text", "text": part.get("content")})  # OTel: {"type": "text", "content"}
        elif ptype in ("tool_call", "tool_use", "function_call", "tool-call") or "function_call" in part \
                or "functionCall" in part:
            fc = part.get("function_call") or part.get("functionCall") or part
            args = fc.get("arguments", fc.get("input", fc.get("args")))
            calls.append(_tool_call(part.get("id", part.get("toolCallId", fc.get("id"))),
                                    fc.get("name", fc.get("toolName")), args))
        elif ptype in RESULT_PART_TYPES \
                or "function_response" in part or "functionResponse" in part:
            fr = part.get("function_response") or part.get("functionResponse") or part
            out = fr.get("response", fr.get("result", fr.get("content", fr.get("output"))))
            if isinstance(out, dict) and set(out) <= {"type", "value"} and "value" in out:
                out = out["value"]  # Vercel AI SDK: {"type": "text" | "json", "value"}
            ident = part.get("id", part.get("tool_use_id", part.get("toolCallId", fr.get("id"))))
            if fr.get("toolName") and not fr.get("name"):
                fr = {**fr, "name": fr["toolName"]}
            results.append({"role": "tool", "content": _as_text(out),
                            "tool_call_id": _ident(ident) or "", **({"name": fr["name"]} if fr.get("name") else {})})
        elif ptype in SKIPPED_PART_TYPES or part.get("thought") is True:
            continue
        elif isinstance(ptype, str):
            texts.append(part)  # image_url, input_audio, image, blob, uri, file…: kept as the log had it
        elif "inline_data" in part or "inlineData" in part or "file_data" in part or "fileData" in part:
            texts.append({"type": "media", **part})
        else:
            raise refuse(f"{w} is a content part of an unknown kind (fields: {', '.join(sorted(map(str, part))[:6])})")
    out: dict[str, Any] = {"role": role}
    if texts and all(p.get("type") == "text" for p in texts):
        out["content"] = "\n\n".join(p["text"] for p in texts)
    elif texts:
        out["content"] = texts
    else:
        out["content"] = None
    if calls:
        out["tool_calls"] = calls
    if results:
        out["_results"] = results
    return out


def _split_results(msg: dict[str, Any]) -> list[dict[str, Any]]:
    """Tool results carried inside a user / tool turn (Anthropic, Gemini, OTel parts) become `tool` messages,
    so that a turn holding only results is not taken for the user's question."""
    results = msg.pop("_results", None)
    if not results:
        if msg.get("content") is None and not msg.get("tool_calls") and msg["role"] != "assistant":
            raise refuse(f"a {msg['role']} message without content", KIND_EMPTY)
        if msg.get("content") is None and msg["role"] == "assistant" and not msg.get("tool_calls"):
            msg["content"] = ""
        return [msg]
    out = list(results)
    if msg.get("content") not in (None, "") or msg.get("tool_calls"):
        out.append({k: v for k, v in msg.items()})
    return out


def _ident(value: Any) -> str | None:
    if isinstance(value, list):  # Microsoft Agent Framework logs [run id, call id]
        value = value[-1] if value else None
    return str(value) if value not in (None, "") else None


def _tool_call(ident: Any, name: Any, arguments: Any) -> dict[str, Any]:
    if not isinstance(name, str) or not name:
        raise refuse("a tool call without a name")
    if arguments is None:
        args = "{}"
    elif isinstance(arguments, str):
        args = arguments
    else:
        args = json.dumps(arguments, ensure_ascii=False, sort_keys=True)
    call: dict[str, Any] = {"id": _ident(ident) or "", "type": "function", "function": {"name": name, "arguments": args}}
    return call


def _openai_call(c: Any, where: str) -> dict[str, Any]:
    if not isinstance(c, dict):
        raise refuse(f"{where} must be a tool call object, got {describe_type(c)}")
    fn = c.get("function") if isinstance(c.get("function"), dict) else c
    return _tool_call(c.get("id"), fn.get("name"), fn.get("arguments", fn.get("args")))


def _as_text(value: Any) -> str | None:
    """A tool result as the model read it: text stays text; anything else is shown as JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(p, dict) and p.get("type") == "text" for p in value):
        return "\n\n".join(str(p.get("text", "")) for p in value)
    return json.dumps(value, ensure_ascii=False, indent=2)


def _append(out: list[dict[str, Any]], msgs: list[dict[str, Any]]) -> None:
    """Consecutive Responses `function_call` items are one assistant turn with several tool calls."""
    for m in msgs:
        prev = out[-1] if out else None
        if (prev is not None and m["role"] == "assistant" and prev["role"] == "assistant" and m.get("tool_calls")
                and m.get("content") is None and prev.get("tool_calls") is not None):
            prev["tool_calls"] = prev["tool_calls"] + m["tool_calls"]
            continue
        out.append(m)


def user_turns(turns: Any, what: str) -> list[dict[str, Any]]:
    """A list of strings as consecutive user turns (Chatbot Arena's `turns`)."""
    msgs = []
    for i, t in enumerate(turns):
        if not isinstance(t, str):
            raise refuse(f"{what}[{i}] must be text, got {describe_type(t)}")
        msgs.append({"role": "user", "content": t})
    if not msgs:
        raise refuse(f"{what} is an empty list", KIND_EMPTY)
    return msgs


# --- what a conversation asks and says --------------------------------------------------------------------


def prompt_of(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation up to and including its last user turn: what the candidate is asked to answer."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i]["role"] == "user":
            content = messages[i].get("content")
            if not isinstance(content, list) and not content_text(content).strip():
                raise refuse("the last user turn is empty", KIND_EMPTY)
            return messages[: i + 1]
    raise refuse("the conversation has no user turn (roles: "
                 + ", ".join(dict.fromkeys(m["role"] for m in messages)) + ")", KIND_NO_USER)


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def tool_calls_text(message: dict[str, Any]) -> str:
    """A turn's tool calls in words: `name(arguments)` a line."""
    lines = []
    for c in message.get("tool_calls") or []:
        fn = c.get("function") or {}
        lines.append(f"{fn.get('name', '?')}({fn.get('arguments', '')})")
    return "\n".join(lines)


def conversation_text(messages: list[dict[str, Any]]) -> str:
    """The words of a prompt, for dedupe and topic clustering (tool calls included)."""
    parts = []
    for m in messages:
        parts.append(content_text(m.get("content")))
        if m.get("tool_calls"):
            parts.append(tool_calls_text(m))
    return "\n".join(parts)


def count_user_turns(messages: list[dict[str, Any]]) -> int:
    return sum(1 for m in messages if m.get("role") == "user")


def reply_messages(output: Any) -> list[dict[str, Any]]:
    """The assistant turn (text, tool calls) that a logged output holds, in the conversation's shape, to
    rebuild an agent loop from its steps; [] when the output is absent or of no known shape."""
    value = output
    if isinstance(value, str):
        if value.lstrip()[:1] in ("{", "["):
            try:
                value = loads(value)
            except ValueError:
                pass
        if isinstance(value, str):
            return [{"role": "assistant", "content": value}] if value.strip() else []
    if isinstance(value, dict):
        if isinstance(value.get("choices"), list) and value["choices"] and isinstance(value["choices"][0], dict):
            value = value["choices"][0].get("message") or {}  # chat completions
        elif isinstance(value.get("output"), list):  # Responses
            value = value["output"]
        elif isinstance(value.get("candidates"), list) and value["candidates"] \
                and isinstance(value["candidates"][0], dict):  # Gemini
            value = {"role": "model", **(value["candidates"][0].get("content") or {})}
        elif isinstance(value.get("generations"), list) and value["generations"]:  # LangChain LLMResult
            gen = value["generations"][0]
            gen = gen[0] if isinstance(gen, list) and gen else gen
            value = (gen.get("message") or gen.get("text")) if isinstance(gen, dict) else None
            if isinstance(value, str):
                return [{"role": "assistant", "content": value}]
        if isinstance(value, dict) and "role" not in value and ("content" in value or "tool_calls" in value):
            value = {"role": "assistant", **value}
    if value is None:
        return []
    try:
        msgs = _any(value, "output", True)
    except (RecordError, RecursionError):
        return []
    return [m for m in msgs if m["role"] in ("assistant", "tool")]
