"""Reading a spec's YAML safely and pointing at it: the line of a node a complaint is about, a
location as a person writes it, the size of a document once its aliases expand (an alias bomb is
refused before it is built) and how deep it nests (a nesting bomb, before it is composed)."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["expanded_size", "loc_text", "node_line", "too_deep"]


def node_line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at a pydantic error location, as deep as it can be found."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    node, line = value, key.start_mark.line + 1
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            continue  # pydantic adds union-branch names to locations; they have no node
    return line


def loc_text(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("list[str]", "PromptFile", "PromptTemplate", "SeedRange", "SeedRandom", "list[any]",
                      "str", "none") or "[" in str(part):
            continue
        else:
            text += ("." if text else "") + str(part)
    return text or "spec"


def expanded_size(root: yaml.Node, limit: int) -> int:
    """How many nodes the document has once aliases are expanded, counted without expanding them
    (each node's size is computed once), stopping as soon as the count passes the limit."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        kids: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            kids = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            kids = [n for pair in node.value for n in pair]
        if not children_done:
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in sizes)
            continue
        sizes[id(node)] = min(limit + 1, 1 + sum(sizes.get(id(k), 0) for k in kids))
        if sizes[id(node)] > limit:
            return limit + 1
    return sizes.get(id(root), 0)


def too_deep(text: str, limit: int) -> int | None:
    """The line where the document nests past `limit` levels, or None. Read from the parser's
    events, which keep no call stack: PyYAML's composer recurses once per level, so 20,000 nested
    lists end in a RecursionError there, and must be refused before composing."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > limit:
                return int(event.start_mark.line) + 1
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1
    return None
