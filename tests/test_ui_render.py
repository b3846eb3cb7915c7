"""Untrusted text is neutralised before Streamlit's markdown sees it (ui/render.py)."""
from __future__ import annotations

import re

import pytest

from ui.render import message_text, neutralise_markdown


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
