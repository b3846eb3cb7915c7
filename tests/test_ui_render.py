"""Untrusted text is neutralised before Streamlit's markdown sees it (ui/render.py)."""
from __future__ import annotations

import re

import pytest

from ui.render import WORD_JOINER, inline, message_text, neutralise_markdown, safe_markdown, verbatim


def _live_images(md: str) -> list[str]:
    return re.findall(r"(?<!\\)!\[[^\]]*\]\([^)]*\)", md)


def _live_links(md: str) -> list[str]:
    # a link is live when `[text](url)` survives with an unescaped opening bracket outside code
    prose = re.sub(r"`[^`]*`", "", md)
    return re.findall(r"(?<!\\)\[[^\]]*\]\([^)]*\)", prose)


@pytest.mark.parametrize(
    "source",
    [
        "look ![tracker](http://203.0.113.9/t.png) here",
        'titled ![t](http://x/y.png "title")',
        "ref image ![alt][r]\n\n[r]: http://203.0.113.9/r.png",
        "[![badge](http://x/b.svg)](http://x/go)",
        "nested ![a ![b](http://x/1.png)](http://x/2.png)",
    ],
)
def test_images_never_survive(source: str) -> None:
    out = neutralise_markdown(source)
    assert _live_images(out) == []
    assert "![" not in out.replace("!\\[", "")
    assert not re.search(r"(?m)^ {0,3}\[[^\]]+\]:", out)  # no reference definition left to resolve


def test_links_and_urls_become_inert_code() -> None:
    out = neutralise_markdown("see [docs](https://evil.example/a) or <https://evil.example/b> or https://evil.example/c")
    assert _live_links(out) == []
    assert "docs (`https://evil.example/a`)" in out
    assert "`https://evil.example/b`" in out and "`https://evil.example/c`" in out


def test_html_is_escaped_outside_code() -> None:
    out = neutralise_markdown("<script>alert(1)</script> <img src=x onerror=alert(1)>")
    assert "<" not in out and "&lt;script>" in out and "&lt;img" in out


def test_code_is_left_verbatim() -> None:
    source = "text\n```html\n<img src=x> ![a](http://x/y.png)\n```\nand `![b](http://x/z.png)` <b>"
    out = neutralise_markdown(source)
    assert "```html\n<img src=x> ![a](http://x/y.png)\n```" in out
    assert "`![b](http://x/z.png)`" in out
    assert out.endswith("&lt;b>")


def test_plain_prose_is_unchanged() -> None:
    source = "# Title\n\n- one **bold** item\n- two\n\n1. numbered\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    assert neutralise_markdown(source) == source


def test_message_text_handles_content_parts() -> None:
    assert message_text([{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "x"}}]) == (
        "hi\n\n[image_url not shown]"
    )
    assert message_text(None) == "" and message_text("x") == "x"


def test_tool_calls_and_results_read_as_such() -> None:
    from storage.transcript import message_label, message_words

    call = {"role": "assistant", "content": "Let me check.", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}]}
    assert message_label(call) == "assistant"
    assert message_words(call) == 'Let me check.\n→ weather({"city": "Paris"})  [call c1]'
    only = {"role": "assistant", "content": None, "tool_calls": call["tool_calls"]}
    assert message_label(only) == "assistant · tool calls"
    result = {"role": "tool", "content": "rainy", "tool_call_id": "c1", "name": "weather"}
    assert (message_label(result), message_words(result)) == ("tool result · weather · call c1", "rainy")


def _prose_of(md: str) -> str:
    """The markdown outside code spans."""
    return re.sub(r"``.*?``|`[^`]*`", "", md)


@pytest.mark.parametrize("source", [
    "LaTeX $\\frac{1}{2}$ and $$x^2$$",
    "price \\$5 and $6",  # an escaped dollar stays escaped after ours
])
def test_no_latex(source: str) -> None:
    assert "$" not in _prose_of(safe_markdown(source))


@pytest.mark.parametrize("source", [":red[alert]", ":blue-background[x]", ":material/home:", ":smile:", ":+1:", "::note",
                                    ":::warning\nx\n:::"])
def test_no_directive_or_shortcode_survives(source: str) -> None:
    for out in (safe_markdown(source), inline(source)):
        # every colon before a name is escaped and followed by a word joiner: no directive, no shortcode
        assert not re.search(r":[\w+\-/]", out), out
        assert not re.search(r"(?<!\\):" + WORD_JOINER, out), out


def test_times_and_ratios_keep_their_colons() -> None:
    assert safe_markdown("at 10:30, a ratio 3:1") == "at 10:30, a ratio 3:1"


def test_underscores_tildes_and_mail_are_plain() -> None:
    out = safe_markdown("call __init__ or ~x~ or mail ana@example.com")
    assert "__" not in out and "~" not in out
    assert "&#95;&#95;init&#95;&#95;" in out and "ana" + WORD_JOINER + "&#64;example.com" in out


def test_entities_cannot_smuggle_controls_or_tags() -> None:
    out = safe_markdown("&#x202E;exe &lt;img src=x&gt;")
    assert out == "&amp;#x202E;exe &amp;lt;img src=x&amp;gt;"


def test_bidi_and_zero_width_are_visible() -> None:
    text = "exe\u202etxt.exe zero\u200bwidth bom\ufeff iso\u2066x\u2069"
    for out in (safe_markdown(text), re.sub(r"\\(.)", r"\1", inline(text)), verbatim(text)):
        assert "⟨U+202E⟩" in out and "⟨U+200B⟩" in out and "⟨U+FEFF⟩" in out and "⟨U+2066⟩" in out
        assert "\u202e" not in out and "\u200b" not in out
    # an emoji sequence keeps its joiner in markdown; verbatim mode shows it
    assert safe_markdown("\U0001F469\u200d\U0001F4BB") == "\U0001F469\u200d\U0001F4BB"
    assert verbatim("\U0001F469\u200d\U0001F4BB") == "\U0001F469⟨U+200D⟩\U0001F4BB"
    assert verbatim("bell\x07 tab\tnew\nline") == "bell⟨U+0007⟩ tab\tnew\nline"


def test_controls_inside_code_are_visible_too() -> None:
    assert safe_markdown("`a\u202eb`") == "`a⟨U+202E⟩b`"


@pytest.mark.parametrize("source", [
    "![n](http://203.0.113.9/n.png)", "[x](http://e/x)", "<b>bold</b>", "**bold** _it_ `code`", "# head", "1. item",
    "- item", "a|b", "ana@example.com", "www.example.com", "http://example.com", "$x$", ":red[x]", "__init__",
])
def test_inline_is_literal(source: str) -> None:
    out = inline(source)
    # every markdown character is escaped, so the parsed text is the source (bar the inserted word joiners)
    unescaped = re.sub(r"\\(.)", r"\1", out).replace(WORD_JOINER, "")
    assert unescaped == source
    assert not re.search(r"(?<!\\)[*_`\[\]<>#$~|!]", out)
    assert not re.search(r"(?<!\\)^\d+\.", out)


def test_inline_is_one_line_and_bounded() -> None:
    assert inline("a\n\n# b\tc") == "a \\# b c"
    assert inline("x" * 50, limit=10) == "x" * 9 + "…"
    assert inline(None) == ""
