"""What the user is looking at and what they pinned: a node filter and an editable pin selection.

`NodeFilter` narrows a graph to the nodes whose name matches a regex (searched, as grep does), of an op
type, under a module scope. `PinSelection` keeps FP32 pins as `PinRules` (so they round-trip into a preset
unchanged) and offers the edits a person makes while browsing: pin or unpin a node, every node of an op
type, or every match of a filter. Unpinning a node that an op-type or regex rule selects adds an exclusion,
so rules stay rules and the exact node set is always `resolve_pins(index, rules)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from trt_tui.core.graph import GraphIndex, NodeInfo
from trt_tui.core.pins import PinResolution, PinRules, compile_regex, resolve_pins


@dataclass(frozen=True)
class NodeFilter:
    text: str = ""  # regex, searched in the node name (case-insensitive unless it has an upper-case letter)
    op_type: str | None = None  # exact, case-insensitive
    scope: str = ""  # module scope prefix ("encoder/layers.0" matches "encoder/layers.0/attn")

    @property
    def active(self) -> bool:
        return bool(self.text or self.op_type or self.scope)

    def pattern(self) -> re.Pattern[str] | None:
        """The compiled name regex (smart case, as ripgrep does); a bad regex is a UserError."""
        if not self.text:
            return None
        flags = 0 if any(c.isupper() for c in self.text) else re.IGNORECASE
        try:
            return re.compile(self.text, flags)
        except re.error:
            return compile_regex(self.text)  # raises the one-line UserError

    def apply(self, index: GraphIndex) -> list[NodeInfo]:
        rx = self.pattern()
        op = self.op_type.lower() if self.op_type else None
        scope = self.scope.strip("/")
        out = []
        for n in index.nodes:
            if op is not None and n.op_type.lower() != op:
                continue
            if scope and not (n.scope == scope or n.scope.startswith(scope + "/") or n.scope.startswith(scope + ".")):
                continue
            if rx is not None and not rx.search(n.name):
                continue
            out.append(n)
        return out

    def describe(self) -> str:
        parts = []
        if self.op_type:
            parts.append(f"op={self.op_type}")
        if self.scope:
            parts.append(f"scope={self.scope}")
        if self.text:
            parts.append(f"name~/{self.text}/")
        return " ".join(parts) or "all nodes"


def scopes_of(index: GraphIndex) -> list[str]:
    """Every module scope and its ancestors ('a/b/c' gives 'a', 'a/b', 'a/b/c'), sorted; for completion."""
    seen: set[str] = set()
    for n in index.nodes:
        parts = [p for p in n.scope.split("/") if p]
        for i in range(1, len(parts) + 1):
            seen.add("/".join(parts[:i]))
    return sorted(seen)


class PinSelection:
    """FP32 pins as rules, resolved against one graph; every edit returns the names whose state changed."""

    def __init__(self, index: GraphIndex, rules: PinRules | None = None) -> None:
        self.index = index
        self._rules = rules or PinRules()
        self._resolution = resolve_pins(index, self._rules)
        self._pinned = frozenset(self._resolution.nodes)

    # ---- reading -------------------------------------------------------------------------------------
    @property
    def rules(self) -> PinRules:
        return self._rules

    @property
    def resolution(self) -> PinResolution:
        return self._resolution

    @property
    def pinned(self) -> frozenset[str]:
        return self._pinned

    def __len__(self) -> int:
        return len(self._pinned)

    def is_pinned(self, name: str) -> bool:
        return name in self._pinned

    def reasons(self, name: str) -> list[str]:
        """The rules that pin this node ('op:LayerNormalization', 'match:attn', 'name:...')."""
        if name not in self._pinned:
            return []
        return [key for key, names in self._resolution.matches.items() if name in names]

    # ---- editing -------------------------------------------------------------------------------------
    def set_rules(self, rules: PinRules) -> set[str]:
        before = self._pinned
        self._rules = rules
        self._resolution = resolve_pins(self.index, rules)
        self._pinned = frozenset(self._resolution.nodes)
        return set(before ^ self._pinned)

    def toggle_node(self, name: str) -> set[str]:
        return self.unpin_nodes([name]) if name in self._pinned else self.pin_nodes([name])

    def pin_nodes(self, names: list[str]) -> set[str]:
        wanted = [n for n in names if n in self.index.by_name]
        r = self._rules
        exclude = tuple(e for e in r.exclude if e not in wanted)
        rules = replace(r, exclude=exclude)
        # exclusions may be regexes: keep them, but name the nodes they would still hide explicitly
        pinned_after = set(resolve_pins(self.index, rules).nodes)
        extra = tuple(n for n in wanted if n not in pinned_after and n not in r.names)
        if extra and any(self._excluded_by_regex(n, exclude) for n in extra):
            exclude = tuple(e for e in exclude if not any(self._matches(e, n) for n in extra))
        return self.set_rules(replace(r, names=r.names + extra, exclude=exclude))

    def unpin_nodes(self, names: list[str]) -> set[str]:
        drop = set(names)
        r = self._rules
        rules = replace(r, names=tuple(n for n in r.names if n not in drop))
        still = set(resolve_pins(self.index, rules).nodes) & drop
        exclude = r.exclude + tuple(n for n in names if n in still and n not in r.exclude)
        return self.set_rules(replace(rules, exclude=exclude))

    def pin_op(self, op_type: str) -> set[str]:
        r = self._rules
        ops = r.op_types if any(o.lower() == op_type.lower() for o in r.op_types) else r.op_types + (op_type,)
        of_op = {n.name for n in self.index.nodes if n.op_type.lower() == op_type.lower()}
        exclude = tuple(e for e in r.exclude if e not in of_op)
        names = tuple(n for n in r.names if n not in of_op)  # the op rule covers them now
        return self.set_rules(replace(r, op_types=ops, exclude=exclude, names=names))

    def unpin_op(self, op_type: str) -> set[str]:
        r = self._rules
        of_op = [n.name for n in self.index.nodes if n.op_type.lower() == op_type.lower()]
        of_op_set = set(of_op)
        rules = replace(
            r,
            op_types=tuple(o for o in r.op_types if o.lower() != op_type.lower()),
            names=tuple(n for n in r.names if n not in of_op_set),
            exclude=tuple(e for e in r.exclude if e not in of_op_set),
        )
        still = [n for n in resolve_pins(self.index, rules).nodes if n in of_op_set]  # pinned by a regex
        return self.set_rules(replace(rules, exclude=rules.exclude + tuple(still)))

    def op_fully_pinned(self, op_type: str) -> bool:
        of_op = [n.name for n in self.index.nodes if n.op_type.lower() == op_type.lower()]
        return bool(of_op) and all(n in self._pinned for n in of_op)

    def toggle_op(self, op_type: str) -> set[str]:
        return self.unpin_op(op_type) if self.op_fully_pinned(op_type) else self.pin_op(op_type)

    def pin_filter(self, node_filter: NodeFilter) -> set[str]:
        """Pin every match. A pure name regex becomes a regex rule (reusable on a re-exported model); a
        filter on op type alone becomes an op-type rule; anything else pins the matching names."""
        if node_filter.text and not node_filter.op_type and not node_filter.scope:
            node_filter.pattern()  # validate
            r = self._rules
            # the preset rule is case-sensitive (re.search): keep the user's smart-case by inlining the flag
            text = node_filter.text if any(c.isupper() for c in node_filter.text) else f"(?i){node_filter.text}"
            patterns = r.patterns if text in r.patterns else r.patterns + (text,)
            matched = {n.name for n in node_filter.apply(self.index)}
            exclude = tuple(e for e in r.exclude if e not in matched)
            return self.set_rules(replace(r, patterns=patterns, exclude=exclude))
        if node_filter.op_type and not node_filter.text and not node_filter.scope:
            return self.pin_op(node_filter.op_type)
        return self.pin_nodes([n.name for n in node_filter.apply(self.index)])

    def unpin_filter(self, node_filter: NodeFilter) -> set[str]:
        return self.unpin_nodes([n.name for n in node_filter.apply(self.index)])

    def clear(self) -> set[str]:
        return self.set_rules(PinRules())

    # ---- helpers -------------------------------------------------------------------------------------
    @staticmethod
    def _matches(rule: str, name: str) -> bool:
        if rule == name:
            return True
        try:
            return re.search(rule, name) is not None
        except re.error:
            return False

    def _excluded_by_regex(self, name: str, exclude: tuple[str, ...]) -> bool:
        return any(e != name and self._matches(e, name) for e in exclude)
