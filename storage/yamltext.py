"""YAML from people (rubrics, candidates files, the app's rubric editor), read within bounds.

A few hundred bytes of nested aliases (`&a [*b, *b, …]`) describe billions of nodes: PyYAML builds the
shared objects cheaply, but anything that walks the data (validation, line marks, hashing) follows every
alias path. So the text is bounded by size and nesting depth, and the composed graph by the number of nodes
it expands to, before anything walks it. Every refusal names the line it concerns.
"""
from __future__ import annotations

from typing import Any

import yaml

MAX_BYTES = 2 * 1024 * 1024  # a rubric with many worked examples is tens of KB
MAX_DEPTH = 64  # rubrics and candidates files nest 5 levels
MAX_NODES = 200_000  # scalars, sequences and mappings after following every alias


class YamlLimitError(ValueError):
    """The text is over a bound; `line` (1-based) is where, when one place can be named."""

    def __init__(self, message: str, line: int | None, hint: str) -> None:
        super().__init__(message)
        self.message, self.line, self.hint = message, line, hint


def _check_events(text: str) -> None:
    """Nesting depth from the event stream (the parser is iterative; the composer recurses)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlLimitError(f"YAML nested more than {MAX_DEPTH} levels deep", event.start_mark.line + 1,
                                     "flatten the structure; rubrics and candidates files need a few levels")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def _first_alias_line(text: str) -> int | None:
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            return event.start_mark.line + 1
    return None


def _check_expansion(root: yaml.Node, text: str) -> None:
    """Count the nodes the graph expands to (each alias counted in full), without expanding it."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            if isinstance(node, yaml.MappingNode):
                kids = [n for pair in node.value for n in pair]
            else:
                kids = node.value
            total = 1 + sum(sizes[id(k)] for k in kids)
            sizes[key] = total
            if total > MAX_NODES:
                raise YamlLimitError(
                    f"YAML aliases expand to more than {MAX_NODES:,} values", _first_alias_line(text),
                    "write the values out instead of nesting aliases (&anchor / *alias) inside each other")
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise YamlLimitError("a YAML alias refers to a node that contains it", node.start_mark.line + 1,
                                 "remove the recursive alias")
        if isinstance(node, yaml.ScalarNode):
            sizes[key] = 1
            continue
        on_path.add(key)
        stack.append((node, True))
        kids = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else node.value
        for kid in kids:
            if id(kid) in on_path:
                raise YamlLimitError("a YAML alias refers to a node that contains it", kid.start_mark.line + 1,
                                     "remove the recursive alias")
            if id(kid) not in sizes:
                stack.append((kid, False))


def compose_bounded(text: str) -> yaml.Node | None:
    """The document's node graph, after checking size, depth and alias expansion (YamlLimitError), or
    yaml.YAMLError for a syntax error, as `yaml.compose` raises it."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise YamlLimitError(f"the text is {size:,} bytes; the limit is {MAX_BYTES:,}", None,
                             "split it, or shorten the worked examples")
    _check_events(text)
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        _check_expansion(root, text)
    return root


def construct(root: yaml.Node | None) -> Any:
    """Python data for a composed (and checked) node graph, as `yaml.safe_load` would build it."""
    if root is None:
        return None
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(root)
    finally:
        loader.dispose()
