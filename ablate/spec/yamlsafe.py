"""YAML for specs: the safe loader, plus what it lets through silently.

PyYAML's safe loader constructs no Python objects, but it keeps the last of two equal keys
(a typo then wins silently) and expands aliases without limit: a few lines of nested aliases
("billion laughs") become billions of nodes once validated or dumped. Here a duplicate key is
an error, and so is a document whose aliases expand to more than ``MAX_NODES`` nodes.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_SPEC_BYTES = 1 << 20  # 1 MiB: specs are a few KB
MAX_NODES = 100_000  # after alias expansion; a real spec has a few hundred
MAX_DEPTH = 64  # nesting levels; a real spec has about 5 (deeper would exhaust the stack)
_MERGE = "tag:yaml.org,2002:merge"


class YamlLimitError(yaml.YAMLError):
    """A document within YAML's rules but beyond a spec's."""

    def __init__(self, problem: str, node: Node | None = None):
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = node.start_mark if node is not None else None


class _Loader(yaml.SafeLoader):
    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()
                error = YamlLimitError(f"values are nested more than {MAX_DEPTH} levels deep; "
                                       "a spec needs a few (check the brackets)")
                error.problem_mark = event.start_mark
                raise error
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE or not isinstance(key_node, ScalarNode):
                continue
            key = self.construct_object(key_node)
            if key in seen:
                raise YamlLimitError(f"duplicate key '{key}' (the later one would silently "
                                     "win); keep one", key_node)
            seen.add(key)
        return super().construct_mapping(node, deep)


def expanded_size(node: Node) -> int:
    """Nodes in the document with every alias expanded (computed without expanding)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(n: Node) -> int:
        if id(n) in sizes:
            return sizes[id(n)]
        if id(n) in active:
            raise YamlLimitError("an alias refers to itself (a recursive structure)", n)
        active.add(id(n))
        total = 1
        if isinstance(n, SequenceNode):
            total += sum(size(child) for child in n.value)
        elif isinstance(n, MappingNode):
            total += sum(size(k) + size(v) for k, v in n.value)
        active.discard(id(n))
        sizes[id(n)] = min(total, MAX_NODES + 1)
        return sizes[id(n)]

    return size(node)


def safe_yaml(text: str) -> Any:
    """``yaml.safe_load`` with duplicate keys and alias bombs refused (YamlLimitError)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if expanded_size(node) > MAX_NODES:
            raise YamlLimitError(
                f"aliases (*name) expand this document to more than {MAX_NODES:,} values; "
                "a spec needs far fewer (write the values out, or use fewer aliases)", node)
        return loader.construct_document(node)
    finally:
        loader.dispose()
