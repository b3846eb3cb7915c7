"""The one renderer for untrusted text: prompts, outputs, references, comments, names, rationales, cluster
labels, and every title, caption or message that carries them.

Streamlit renders markdown in `st.markdown`, captions, info boxes, expander titles and widget labels alike, and
its markdown does more than CommonMark: images and links (the browser fetches or navigates), GFM autolinks
(`www.x`, e-mail addresses), LaTeX between dollars, colour and icon directives (`:red[..]`, `:material/x:`),
emoji shortcodes (`:smile:`), strikethrough with one tilde, and `__init__` in bold. Nothing built here can do
any of that:

- `safe_markdown(text)` (long text: outputs, prompts, references, comments, rationales) keeps headings, lists,
  tables, `**bold**` and code; every image becomes a text marker, every link or URL inert code, and `<`, `&`,
  `$`, `_`, `~`, `@` become character references, which the markdown parser reads as plain characters;
- `inline(text)` (names, titles, labels, anything on one line) shows the text literally, every markdown
  character escaped;
- in both, a colon that could open a directive or a shortcode is escaped and followed by an invisible word
  joiner (U+2060), and
  bidi controls and zero-width characters are shown as `⟨U+202E⟩`, so a right-to-left override cannot turn
  "exe.txt" into "txt.exe" unseen; `verbatim(text)` does the same for the code box of verbatim mode, where
  every invisible or control character is shown.
Code blocks and inline code are left as written (markdown shows them verbatim anyway) but for the controls.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any

from storage.transcript import content_words, message_label, message_words

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
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$&@=^\"'])")
# Characters the markdown parser would act on, as character references: read as plain text, never as syntax.
# GFM links e-mail addresses and www./http:// in the parsed text, where references are plain characters again:
# a word joiner before "@" and inside "www." and "://" stops that.
_PROSE_CHARS = {"<": "&lt;", "&": "&amp;", "$": "&#36;", "_": "&#95;", "~": "&#126;", "@": "\u2060&#64;"}
_AUTOLINK = re.compile(r"(?i)(?<=\bwww)(?=\\?\.)|(?<=:)(?=//)|(?<!\\)(?=\\?@)")
_PROSE_CHAR = re.compile("[" + re.escape("".join(_PROSE_CHARS)) + "]")
# A colon directly before a name starts a directive (`:red[`) or a shortcode (`:smile:`, `:material/x:`).
_COLON = re.compile(r":(?=[^\W\d]|[\w+\-]+:)")
WORD_JOINER = "\u2060"
_KEEP_IN_PROSE = {"\u200d"}  # zero-width joiner: part of emoji sequences (👩‍💻); shown in verbatim mode


def _marker(ch: str) -> str:
    return f"⟨U+{ord(ch):04X}⟩"


def _invisible(ch: str, *, verbatim: bool) -> bool:
    cat = unicodedata.category(ch)
    if cat == "Cf":  # bidi controls, zero-width space/joiners, soft hyphen, BOM, tags
        return verbatim or ch not in _KEEP_IN_PROSE
    if cat == "Cc":
        return ch not in "\n\t\r"
    return cat in ("Zl", "Zp")


def show_controls(text: str, *, verbatim: bool = False) -> str:
    """Bidi controls and zero-width characters as visible `⟨U+202E⟩` markers (all format/control
    characters when `verbatim`)."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(_marker(ch) if _invisible(ch, verbatim=verbatim) else ch for ch in text)


def _break_colons(text: str) -> str:
    # the backslash stops the parser's directives; the word joiner the shortcode plugins, which match the
    # parsed text (where `\:` is a plain colon again)
    return _COLON.sub("\\\\:" + WORD_JOINER, text)


def inline(text: Any, *, limit: int | None = None) -> str:
    """`text` shown literally on one line where Streamlit renders markdown (names, titles, labels, captions,
    reasons): no emphasis, links, images, HTML, LaTeX, directives or shortcodes; controls visible."""
    s = " ".join(show_controls(str(text if text is not None else "")).split())
    if limit is not None and len(s) > limit:
        s = s[: max(limit - 1, 0)] + "…"
    return _AUTOLINK.sub(WORD_JOINER, _break_colons(_MD_SPECIAL.sub(r"\\\1", s)))


escape_markdown = inline  # the older name


def verbatim(text: str) -> str:
    """Text for a code box (verbatim mode): as written, but every invisible or control character shown."""
    return show_controls(text or "", verbatim=True)


def _code(text: str) -> str:
    """Inert inline code (backticks inside are handled by a longer fence)."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _chars(text: str) -> str:
    return _break_colons(_PROSE_CHAR.sub(lambda m: _PROSE_CHARS[m.group(0)], text))


def _prose(segment: str) -> str:
    out: list[str] = []
    pos = 0
    for m in _PROSE.finditer(segment):
        out.append(_chars(segment[pos:m.start()]))
        pos = m.end()
        if m.group("img") is not None:
            src = m.group("src")
            alt = inline(m.group("alt") or "image")
            out.append(f"\\[image not loaded: {alt}\\]" + (f" {_code(src)}" if src else ""))
        elif m.group("link") is not None:
            text = _prose(m.group("text") or "")
            out.append(f"{text} ({_code(m.group('href'))})" if m.group("href") else text)
        elif m.group("auto") is not None:
            out.append(_code(m.group("aurl")))
        elif m.group("bare") is not None:
            out.append(_code(m.group("bare")))
        else:
            out.append("\\[" + inline(m.group("ref")) + "\\]:")
    out.append(_chars(segment[pos:]))
    # a safety net for anything the patterns above did not take apart: no image syntax
    return re.sub(r"(?<!\\)!\[", r"!\\[", "".join(out))


def safe_markdown(text: str) -> str:
    """Markdown safe to show: images become text markers, links and URLs inert code, no HTML, LaTeX,
    directives, shortcodes or autolinks; bidi and zero-width characters visible."""
    if not text:
        return ""
    text = show_controls(text)
    parts: list[str] = []
    pos = 0
    for fence in _FENCE.finditer(text):
        parts.append(_outside_fences(text[pos:fence.start()]))
        parts.append(fence.group(0))
        pos = fence.end()
    parts.append(_outside_fences(text[pos:]))
    return "".join(parts)


neutralise_markdown = safe_markdown  # the older name


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
    """The text of a chat message's content (a string, or OpenAI content parts): one definition, the judge's."""
    return content_words(content)


def show_text(st: Any, text: str, *, plain: bool = False) -> None:
    """Show untrusted text: safe markdown, or verbatim in a code box when `plain`."""
    if plain:
        st.code(verbatim(text or ""), language=None, wrap_lines=True)
    else:
        st.markdown(safe_markdown(text or ""))


def show_chat(st: Any, messages: list[dict[str, Any]], *, plain: bool = False) -> None:
    """A conversation, one chat bubble per message, each rendered with `show_text`."""
    for msg in messages or []:
        role = str(msg.get("role") or "user")
        avatar = {"user": "user", "assistant": "assistant"}.get(role, "user")
        with st.chat_message(avatar):
            if role not in ("user", "assistant") or msg.get("tool_calls"):
                st.caption(inline(message_label(msg)))
            show_text(st, message_words(msg), plain=plain)


def judge_run_sentence(run: dict[str, Any], why: str) -> str:
    """Which judge run a page works on, in one markdown-safe sentence: id, mode, judge model (a name someone
    wrote, so escaped), start date and why this one (the latest, the only one, chosen)."""
    started = run.get("started_at")
    when = started.strftime("%Y-%m-%d %H:%M") if hasattr(started, "strftime") else str(started or "?")[:16]
    return (f"Showing judge run {int(run['id'])} ({inline(run.get('mode') or '?')}, judge "
            f"{inline(run.get('judge_model') or '?')}, started {inline(when)} UTC): {inline(why)}.")


def show_judge_run(st: Any, run: dict[str, Any], why: str) -> None:
    """The caption every page that picks a judge run shows under its choice."""
    st.caption(judge_run_sentence(run, why))


def default_why(runs: list[dict[str, Any]], chosen_id: int, default_id: int, what: str = "judge run",
                default_is: str = "the latest") -> str:
    """Why this run: the only one, the default (and what the default is), or chosen among how many."""
    if len(runs) == 1:
        return f"the only {what} for this eval set and rubric"
    if chosen_id == default_id:
        return f"{default_is} of {len(runs)} {what}s for this eval set and rubric; choose another above"
    return f"chosen among {len(runs)} {what}s"
