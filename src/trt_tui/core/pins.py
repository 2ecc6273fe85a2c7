"""FP32 pin rules and their resolution against a graph: the one way the product turns rules into node names.

A `PinRule` set is what users write (op types, regexes searched anywhere in the name as grep does,
explicit node names, exclusions); `resolve_pins` turns it into the exact node names, in topological
order, and reports what matched nothing and which names do not exist (with the closest suggestions).
"""

from __future__ import annotations

import bisect
import difflib
import re
from dataclasses import dataclass, field

from trt_tui.core.errors import UserError
from trt_tui.core.graph import GraphIndex, NodeInfo


@dataclass(frozen=True)
class PinRules:
    op_types: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()  # regexes, re.search on the node name
    names: tuple[str, ...] = ()  # exact node names
    exclude: tuple[str, ...] = ()  # exact names or regexes (re.search); removes nodes from the result

    @property
    def empty(self) -> bool:
        return not (self.op_types or self.patterns or self.names)

    def to_json(self) -> dict:
        return {
            "op_types": list(self.op_types),
            "patterns": list(self.patterns),
            "names": list(self.names),
            "exclude": list(self.exclude),
        }


@dataclass
class UnknownName:
    name: str
    suggestions: list[str]

    def message(self) -> str:
        hint = f"; did you mean {', '.join(repr(s) for s in self.suggestions)}?" if self.suggestions else ""
        return f"no node named {self.name!r}{hint}"


@dataclass
class PinResolution:
    nodes: list[str]  # pinned node names, topological order
    matches: dict[str, list[str]] = field(default_factory=dict)  # "op:Softmax" / "match:re" / "name:n" -> nodes
    unmatched_rules: list[str] = field(default_factory=list)  # rule keys that matched nothing
    unknown_names: list[UnknownName] = field(default_factory=list)
    non_float: list[str] = field(default_factory=list)  # pinned nodes with no float output (pin is a no-op)

    op_types_present: tuple[str, ...] = ()  # every op type of the pool (for suggestions)

    def raise_for_unknown(self, source: str | None = None) -> None:
        if self.unknown_names:
            raise UserError("; ".join(u.message() for u in self.unknown_names), source)

    def rule_messages(self) -> list[tuple[str, str]]:
        """(rule key, message) per rule that matched nothing: an op type the model lacks (with the closest
        op types), a regex no node name matches. Warnings, never errors: the run goes on without them."""
        out = []
        for rule in self.unmatched_rules:
            kind, _, value = rule.partition(":")
            if kind == "op":
                hint = suggest(value, list(self.op_types_present))
                out.append((rule, f"pin op type {value!r}: the model has no such node"
                            + (f"; did you mean {', '.join(map(repr, hint))}?" if hint else "")))  # fmt: skip
            else:
                out.append((rule, f"pin regex {value!r} matches no node name"))
        return out

    def warnings(self) -> list[str]:
        """Every warning a front (compare, convert, stream, preset, TUI) shows for these pins."""
        out = [message for _, message in self.rule_messages()]
        if self.non_float:
            out.append(f"{len(self.non_float)} pinned node(s) have no float output (pin has no effect): "
                       + ", ".join(self.non_float[:5]) + (" ..." if len(self.non_float) > 5 else ""))  # fmt: skip
        return out


MAX_SUGGESTED = 10  # unknown pin names that get "did you mean" suggestions


NEIGHBOURS = 500  # on big graphs, suggestions come from the names sorted next to the unknown one


def suggest(name: str, candidates: list[str], n: int = 3) -> list[str]:
    pool = candidates
    if len(candidates) > 2 * NEIGHBOURS:  # difflib over 20k names takes about a second per name
        ordered = sorted(candidates)
        at = bisect.bisect_left(ordered, name)
        pool = ordered[max(0, at - NEIGHBOURS // 2) : at + NEIGHBOURS // 2]
    close = difflib.get_close_matches(name, pool, n=n, cutoff=0.6)
    if close:
        return close
    lowered = name.lower()
    return [c for c in candidates if lowered in c.lower()][:n]


def compile_regex(pattern: str, source: str | None = None) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UserError(f"bad regular expression {pattern!r}: {exc}", source) from None


def resolve_pins(index: GraphIndex, rules: PinRules, *, include_subgraphs: bool = False) -> PinResolution:
    pool: list[NodeInfo] = [n for n in index.nodes if include_subgraphs or n.parent is None]
    selected: dict[str, NodeInfo] = {}
    matches: dict[str, list[str]] = {}

    ops_present = {n.op_type.lower(): n.op_type for n in pool}
    for op in rules.op_types:
        hit = [n for n in pool if n.op_type.lower() == op.lower()]
        matches[f"op:{op}"] = [n.name for n in hit]
        selected.update((n.name, n) for n in hit)
    for pattern in rules.patterns:
        rx = compile_regex(pattern)
        hit = [n for n in pool if rx.search(n.name)]
        matches[f"match:{pattern}"] = [n.name for n in hit]
        selected.update((n.name, n) for n in hit)
    unknown: list[UnknownName] = []
    all_names = [n.name for n in pool]
    pool_by_name = {n.name: n for n in pool}
    for name in rules.names:
        node = pool_by_name.get(name)
        if node is None:
            # suggestions cost a scan of every name: only the first few unknown names get them (linear time)
            hints = suggest(name, all_names) if len(unknown) < MAX_SUGGESTED else []
            unknown.append(UnknownName(name, hints))
            matches[f"name:{name}"] = []
        else:
            matches[f"name:{name}"] = [name]
            selected[name] = node
    for ex in rules.exclude:
        if ex in selected:
            del selected[ex]
            continue
        rx = compile_regex(ex)
        for name in [k for k in selected if rx.search(k)]:
            del selected[name]

    ordered = sorted(selected.values(), key=lambda n: (n.topo_index, n.parent is not None))
    unmatched = [k for k, v in matches.items() if not v and not k.startswith("name:")]
    # op types absent from the graph are reported under their own key too (the suggestion helps typos)
    for op in rules.op_types:
        if op.lower() not in ops_present and f"op:{op}" not in unmatched:
            unmatched.append(f"op:{op}")
    return PinResolution(
        nodes=[n.name for n in ordered],
        matches=matches,
        unmatched_rules=unmatched,
        unknown_names=unknown,
        non_float=[n.name for n in ordered if not index.is_float_node(n)],
        op_types_present=tuple(sorted(set(ops_present.values()))),
    )


def pin_nodes(index: GraphIndex, rules: PinRules, source: str | None = None) -> tuple[list[str], list[str]]:
    """The one way a command turns pin flags into node names: (pinned nodes, warnings). A node name that does
    not exist is an error (UserError, with suggestions); an op type or regex that matches nothing is a
    warning naming it, and the run goes on."""
    resolution = resolve_pins(index, rules)
    resolution.raise_for_unknown(source)
    return resolution.nodes, resolution.warnings()
