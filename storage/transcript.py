"""A chat message in words, with its tool calls and tool results shown as such (not as JSON): for the judge's
prompt and for every page that shows a conversation. Plain text; the caller escapes or renders it."""
from __future__ import annotations

import json
from typing import Any


def content_words(content: Any) -> str:
    """The text of a message's content: a string, or content parts (non-text parts named, not shown)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, dict):
                if part.get("type") == "text":
                    texts.append(str(part.get("text", "")))
                else:
                    texts.append(f"[{part.get('type', 'part')} not shown]")
            else:
                texts.append(str(part))
        return "\n\n".join(texts)
    return str(content)


def call_words(call: dict[str, Any]) -> str:
    """`→ name(arguments)`, arguments compact when they are JSON."""
    fn = call.get("function") if isinstance(call.get("function"), dict) else call
    args = fn.get("arguments", "")
    if isinstance(args, str):
        try:
            args = json.dumps(json.loads(args), ensure_ascii=False) if args.strip() else ""
        except ValueError:
            pass
    else:
        args = json.dumps(args, ensure_ascii=False)
    ident = f"  [call {call['id']}]" if call.get("id") else ""
    return f"→ {fn.get('name', '?')}({args}){ident}"


def message_label(message: dict[str, Any]) -> str:
    """The role as shown: `assistant`, `tool result · weather · call c1`."""
    role = str(message.get("role") or "user")
    if role in ("tool", "function"):
        bits = ["tool result"]
        if message.get("name"):
            bits.append(str(message["name"]))
        if message.get("tool_call_id"):
            bits.append(f"call {message['tool_call_id']}")
        return " · ".join(bits)
    if role == "assistant" and message.get("tool_calls") and not content_words(message.get("content")).strip():
        return "assistant · tool calls"
    return role


def message_words(message: dict[str, Any]) -> str:
    """The message's text, then one line per tool call it made."""
    text = content_words(message.get("content"))
    calls = [call_words(c) for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    fc = message.get("function_call")
    if isinstance(fc, dict):
        calls.append(call_words(fc))
    return "\n".join([text, *calls]) if text.strip() and calls else (text or "\n".join(calls))


def transcript(messages: list[dict[str, Any]]) -> str:
    """A conversation as a plain transcript; a single user turn is just its text."""
    if len(messages) == 1 and messages[0].get("role") == "user" and not messages[0].get("tool_calls"):
        return content_words(messages[0].get("content"))
    return "\n\n".join(f"[{message_label(m)}]\n{message_words(m)}" for m in messages)
