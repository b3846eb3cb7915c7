"""Chat messages in the shapes logs use (OpenAI, ShareGPT, LangChain), normalised to OpenAI's.

Text-only content-part arrays become one string (parts joined by a blank line) so the same prompt logged
either way is the same item; arrays with images or audio are kept as parts.
"""
from __future__ import annotations

from typing import Any

from evalsets.readers.base import RecordError, describe_type

ROLES = {
    "user": "user", "human": "user", "humanmessage": "user", "humanmessagechunk": "user",
    "assistant": "assistant", "ai": "assistant", "gpt": "assistant", "bot": "assistant", "model": "assistant",
    "chatgpt": "assistant", "aimessage": "assistant", "aimessagechunk": "assistant",
    "system": "system", "systemmessage": "system", "developer": "developer",
    "tool": "tool", "toolmessage": "tool", "function": "function", "functionmessage": "function",
}
TEXT_PART_TYPES = {"text", "input_text", "output_text"}
KEEP_FIELDS = ("name", "tool_calls", "tool_call_id", "function_call")


def normalise_messages(raw: Any, what: str = "messages") -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise RecordError(f"{what} must be a list of messages, got {describe_type(raw)}")
    if not raw:
        raise RecordError(f"{what} is empty")
    return [normalise_message(m, f"{what}[{i}]") for i, m in enumerate(raw)]


def normalise_message(m: Any, where: str) -> dict[str, Any]:
    if not isinstance(m, dict):
        raise RecordError(f"{where} must be an object with role and content, got {describe_type(m)}")
    role_raw: Any
    if "role" in m:
        role_raw, content = m.get("role"), m.get("content")
    elif "from" in m:  # ShareGPT
        role_raw, content = m.get("from"), m.get("value")
    elif m.get("lc") == 1 and isinstance(m.get("id"), list):  # LangChain serialised message
        kwargs = m.get("kwargs") or {}
        role_raw, content = (m["id"][-1] if m["id"] else None), kwargs.get("content")
        m = kwargs
    elif "type" in m and ("data" in m or "content" in m):  # LangChain message dict
        data = m.get("data") if isinstance(m.get("data"), dict) else m
        role_raw, content = m.get("type"), data.get("content")
        m = data
    else:
        raise RecordError(f"{where} has no 'role' (fields: {', '.join(sorted(map(str, m))[:8])})")
    if not isinstance(role_raw, str) or role_raw.lower() not in ROLES:
        raise RecordError(f"{where}.role {role_raw!r} is not a chat role (user, assistant, system, tool)")
    role = ROLES[role_raw.lower()]
    msg: dict[str, Any] = {"role": role, "content": normalise_content(content, f"{where}.content", role, m)}
    for key in KEEP_FIELDS:
        if m.get(key) not in (None, "", []):
            msg[key] = m[key]
    return msg


def normalise_content(content: Any, where: str, role: str, m: dict) -> Any:
    if isinstance(content, str):
        return content
    if content is None:
        if role in ("assistant", "tool", "function") and (m.get("tool_calls") or m.get("function_call")):
            return None
        raise RecordError(f"{where} is missing")
    if isinstance(content, list):
        parts: list[Any] = []
        for j, part in enumerate(content):
            if isinstance(part, str):
                parts.append({"type": "text", "text": part})
            elif isinstance(part, dict) and isinstance(part.get("type"), str):
                if part["type"] in TEXT_PART_TYPES:
                    if not isinstance(part.get("text"), str):
                        raise RecordError(f"{where}[{j}].text must be text, got {describe_type(part.get('text'))}")
                    parts.append({"type": "text", "text": part["text"]})
                else:
                    parts.append(part)
            else:
                raise RecordError(f"{where}[{j}] must be a content part with a 'type', got {describe_type(part)}")
        if not parts:
            raise RecordError(f"{where} is an empty list of parts")
        if all(p["type"] == "text" for p in parts):
            return "\n\n".join(p["text"] for p in parts)
        return parts
    raise RecordError(f"{where} must be text or a list of content parts, got {describe_type(content)}")


def user_turns(turns: Any, what: str) -> list[dict[str, Any]]:
    """A list of strings as consecutive user turns (Chatbot Arena's `turns`)."""
    msgs = []
    for i, t in enumerate(turns):
        if not isinstance(t, str):
            raise RecordError(f"{what}[{i}] must be text, got {describe_type(t)}")
        msgs.append({"role": "user", "content": t})
    if not msgs:
        raise RecordError(f"{what} is an empty list")
    return msgs


def prompt_of(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation up to and including its last user turn: what the candidate is asked to answer."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i]["role"] == "user":
            if not content_text(messages[i]["content"]).strip() and not isinstance(messages[i]["content"], list):
                raise RecordError("the last user turn is empty")
            return messages[: i + 1]
    raise RecordError("the conversation has no user turn")


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def conversation_text(messages: list[dict[str, Any]]) -> str:
    """The words of a prompt, for dedupe and topic clustering."""
    return "\n".join(content_text(m.get("content")) for m in messages)


def count_user_turns(messages: list[dict[str, Any]]) -> int:
    return sum(1 for m in messages if m.get("role") == "user")
