"""Rendering untrusted text (prompts, model outputs, comments) in the app.

Streamlit escapes raw HTML in `st.markdown` when `unsafe_allow_html` is off (it is never on here), but it
still renders markdown images and links: an output containing `![](https://tracker/x.png)` would make the
annotator's browser fetch that URL. `neutralise_markdown` rewrites, outside code, every image into a text
marker and every link or URL into inert code text, and escapes `<` so no tag survives even if the renderer
changes. Code blocks and inline code are left alone (markdown shows them verbatim anyway).
"""
from __future__ import annotations

import re
from typing import Any

from storage.transcript import message_label, message_words

_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})[^\n]*\n.*?(?:^ {0,3}\2[^\n]*(?:\n|\Z)|\Z)", re.DOTALL | re.MULTILINE)
_INLINE_CODE = re.compile(r"(`+)(?:.+?)\1", re.DOTALL)
_TITLE = r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?"
_PROSE = re.compile(
    r"(?P<img>!\[(?P<alt>[^\]\n]*)\](?:\((?P<src>[^)\s]*)" + _TITLE + r"\s*\)|\[[^\]\n]*\])?)"
    r"|(?P<link>\[(?P<text>[^\]\n]*)\]\((?P<href>[^)\s]*)" + _TITLE + r"\s*\))"
    r"|(?P<auto><(?P<aurl>[a-zA-Z][a-zA-Z0-9+.-]{1,31}:[^>\s]*)>)"
    r"|(?P<bare>\b(?:https?://|ftp://|www\.)[^\s<>()\[\]`]+)"
    r"|(?P<refdef>^[ ]{0,3}\[(?P<ref>[^\]\n]+)\]:)",
    re.MULTILINE,
)
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~])")


def escape_markdown(text: str) -> str:
    """`text` shown literally where Streamlit renders markdown (names, reasons): no emphasis, links or HTML."""
    return _MD_SPECIAL.sub(r"\\\1", text)



def _code(text: str) -> str:
    """Inert inline code (backticks inside are handled by a longer fence)."""
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if "`" in text else f"`{text}`"


def _prose(segment: str) -> str:
    def repl(m: re.Match[str]) -> str:
        if m.group("img") is not None:
            src = m.group("src")
            alt = escape_markdown(m.group("alt") or "image")
            return f"\\[image not loaded: {alt}\\]" + (f" {_code(src)}" if src else "")
        if m.group("link") is not None:
            text = _prose(m.group("text") or "")
            return f"{text} ({_code(m.group('href'))})" if m.group("href") else text
        if m.group("auto") is not None:
            return _code(m.group("aurl"))
        if m.group("bare") is not None:
            return _code(m.group("bare"))
        return "\\[" + escape_markdown(m.group("ref")) + "\\]:"

    out = _PROSE.sub(repl, segment)
    # a safety net for anything the patterns above did not take apart: no image syntax, no tag
    out = re.sub(r"(?<!\\)!\[", r"!\\[", out)
    return out.replace("<", "&lt;")


def neutralise_markdown(text: str) -> str:
    """Markdown safe to show: images become text markers, links and URLs become inert code, no HTML tags."""
    if not text:
        return ""
    parts: list[str] = []
    pos = 0
    for fence in _FENCE.finditer(text):
        parts.append(_outside_fences(text[pos:fence.start()]))
        parts.append(fence.group(0))
        pos = fence.end()
    parts.append(_outside_fences(text[pos:]))
    return "".join(parts)


def _outside_fences(segment: str) -> str:
    out: list[str] = []
    pos = 0
    for code in _INLINE_CODE.finditer(segment):
        out.append(_prose(segment[pos:code.start()]))
        out.append(code.group(0))
        pos = code.end()
    out.append(_prose(segment[pos:]))
    return "".join(out)


def message_text(content: Any) -> str:
    """The text of a chat message's content (a string, or OpenAI content parts)."""
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


def show_text(st: Any, text: str, *, plain: bool = False) -> None:
    """Show untrusted text: neutralised markdown, or verbatim in a code box when `plain`."""
    if plain:
        st.code(text or "", language=None, wrap_lines=True)
    else:
        st.markdown(neutralise_markdown(text or ""))


def show_chat(st: Any, messages: list[dict[str, Any]], *, plain: bool = False) -> None:
    """A conversation, one chat bubble per message, each rendered with `show_text`."""
    for msg in messages or []:
        role = str(msg.get("role") or "user")
        avatar = {"user": "user", "assistant": "assistant"}.get(role, "user")
        with st.chat_message(avatar):
            if role not in ("user", "assistant") or msg.get("tool_calls"):
                st.caption(message_label(msg))
            show_text(st, message_words(msg), plain=plain)
