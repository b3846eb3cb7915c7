"""Judge prompts: Jinja templates (files, versioned by the SHA-256 of their text) rendered into chat messages.

Model outputs, inputs and reference answers are untrusted: each appears only inside a block tagged with a
nonce (`<output-3f9a…>` … `</output-3f9a…>`), and any tag-like text inside that could pass for one of our tags
is escaped (`<output` → `&lt;output`). The nonce is derived from the prompt's own content, so it is stable
(the gateway's cache works, a prompt can be reproduced) yet cannot be predicted by the text it encloses: to
forge the closing tag an output would have to contain the hash of itself.

The system message holds no nonce and no untrusted text (the rubric's own examples are fenced with a code
derived from the rubric), so it is identical for every unit of a criterion: providers and llama.cpp reuse the
computed prefix, which makes judging cheaper and, on a local model, several times faster.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import jinja2

from judging.rubric import Criterion, Rubric
from storage.errors import InputError
from storage.transcript import transcript

TEMPLATES_DIR = Path(str(resources.files("judging") / "templates"))
BLOCK_NAMES = ("input", "reference", "output", "response-1", "response-2",
               "example-input", "example-reference", "example-output")
# '<' (optionally '</') followed by one of our block names, in any case, with any spacing: escaped in untrusted text.
_TAG_LIKE = re.compile(r"<(?=\s*/?\s*(?:input|reference|output|response|example)\b)", re.IGNORECASE)


@dataclass(frozen=True)
class Template:
    """A judge prompt template: its name, source text, and version (SHA-256 of the text)."""

    name: str
    path: str
    source: str
    hash: str
    compiled: jinja2.Template

    def render(self, context: dict[str, Any]) -> tuple[str, str]:
        """(system text, user text) rendered from the template's `system` and `user` blocks."""
        ctx = self.compiled.new_context(context)
        parts = []
        for name in ("system", "user"):
            block = self.compiled.blocks.get(name)
            if block is None:
                raise InputError(f"template {self.path} has no `{{% block {name} %}}`",
                                 hint="a judge template defines a `system` and a `user` block")
            parts.append("".join(block(ctx)).strip())
        return parts[0], parts[1]


_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined,  # a misspelt variable is an error, not silently empty text
    autoescape=False,  # not HTML: untrusted text is escaped by block(), deliberately
    keep_trailing_newline=False,
)


@lru_cache(maxsize=32)
def _load(path: str, mtime: float) -> Template:
    source = Path(path).read_text(encoding="utf-8")
    try:
        compiled = _ENV.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise InputError(f"template syntax error: {exc.message}", where=f"{path}:{exc.lineno}",
                         hint="fix the Jinja syntax") from None
    return Template(Path(path).stem, path, source, hashlib.sha256(source.encode("utf-8")).hexdigest(), compiled)


def load_template(mode: str = "pointwise", path: str | Path | None = None) -> Template:
    """The shipped template for `mode` (pointwise | pairwise), a shipped one by name (pointwise_compact), or a
    custom template file."""
    if path is not None and Path(path).suffix == "" and "/" not in str(path):
        path = TEMPLATES_DIR / f"{path}.j2"  # a shipped template by name, e.g. pointwise_compact
    p = Path(path) if path is not None else TEMPLATES_DIR / f"{mode}.j2"
    if not p.is_file():
        raise InputError(f"template {str(p)!r} does not exist", where="--template",
                         hint=f"shipped templates: {', '.join(sorted(f.name for f in TEMPLATES_DIR.glob('*.j2')))}")
    return _load(str(p.resolve()), p.stat().st_mtime)


def escape_untrusted(text: str) -> str:
    """Neutralise anything in untrusted text that could read as one of our block tags."""
    return _TAG_LIKE.sub("&lt;", text)


def conversation_text(messages: list[dict[str, Any]]) -> str:
    """An item's messages as a plain transcript, tool calls and tool results shown as such; a single user turn
    is shown as just its text."""
    return transcript(messages)


def clip(text: str | None, limit: int) -> str:
    """At most `limit` characters of `text`, the cut said in the text itself (compact templates)."""
    text = text or ""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[… clipped {len(text) - limit} characters]"


def _clip_recorder(clipped: dict[str, int]) -> Callable[..., str]:
    """`clip` for one rendering: what was cut, per block name, goes into the judgment's details."""
    def recording_clip(text: str | None, limit: int, name: str = "text") -> str:
        cut = len(text or "") - limit
        if cut > 0:
            clipped[name] = clipped.get(name, 0) + cut
        return clip(text, limit)

    return recording_clip


def make_nonce(template_hash: str, *texts: str | None) -> str:
    h = hashlib.sha256(template_hash.encode())
    for t in texts:
        h.update(b"\x00" + (t or "").encode("utf-8"))
    return h.hexdigest()[:16]


def _block_fn(nonce: str) -> Callable[[str, str | None], str]:
    def block(name: str, text: str | None) -> str:
        if name not in BLOCK_NAMES:
            raise InputError(f"unknown block name {name!r} in a judge template", hint=f"use one of {BLOCK_NAMES}")
        body = escape_untrusted(text or "")
        return f"<{name}-{nonce}>\n{body}\n</{name}-{nonce}>"

    return block


@dataclass(frozen=True)
class RenderedPrompt:
    messages: list[dict[str, str]]
    template_hash: str
    nonce: str
    clipped: dict[str, int] = field(default_factory=dict)  # block name → characters not shown (compact templates)

    @property
    def text(self) -> str:
        return "\n\n".join(f"--- {m['role']} ---\n{m['content']}" for m in self.messages)


def render_prompt(
    rubric: Rubric,
    criterion: Criterion | str,
    *,
    messages: list[dict[str, Any]],
    output: str | None = None,
    output_b: str | None = None,
    reference: str | None = None,
    mode: str = "pointwise",
    template: Template | None = None,
) -> RenderedPrompt:
    """The judge's chat messages for one unit (pointwise: `output`; pairwise: `output` as response 1 and
    `output_b` as response 2). The app calls this to preview the prompt on a sample item."""
    crit = rubric.criterion(criterion) if isinstance(criterion, str) else criterion
    tmpl = template or load_template(mode)
    conversation = conversation_text(messages)
    examples = [ex.input + "\x00" + ex.output + "\x00" + (ex.reference or "") for ex in crit.examples]
    nonce = make_nonce(tmpl.hash, conversation, reference, output, output_b, *examples)
    example_nonce = make_nonce(tmpl.hash, crit.model_dump_json())
    levels = sorted((crit.levels or {}).items(), key=lambda kv: int(kv[0]))
    clipped: dict[str, int] = {}
    context: dict[str, Any] = {
        "rubric": rubric,
        "criterion": crit,
        "levels": levels,
        "conversation": conversation,
        "reference": reference,
        "nonce": nonce,
        "block": _block_fn(nonce),
        "example_block": _block_fn(example_nonce),
        "clip": _clip_recorder(clipped),
    }
    if mode == "pairwise":
        context.update(output_1=output, output_2=output_b)
    else:
        context.update(output=output)
    system, user = tmpl.render(context)
    return RenderedPrompt([{"role": "system", "content": system}, {"role": "user", "content": user}], tmpl.hash, nonce,
                          clipped)
