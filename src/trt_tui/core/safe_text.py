"""The one sanitizer for text that came from a model or a file before it reaches a terminal or a script.

Node, tensor and op names, preset names and paths are data: an ESC in a node name must not retitle the
window (OSC 0), write the clipboard (OSC 52) or clear the screen, and a newline in a file name must not end a
shell comment. `escape_controls` turns every control character (C0, DEL, C1, the Unicode line/paragraph
separators and the bidirectional overrides) into a visible escape such as `\\x1b`, so the text stays
readable and one line. The CLI's output streams pass everything through it (keeping only the layout
characters its own output uses); rich markup is escaped separately, where the text is interpolated.
"""

from __future__ import annotations

import re

# C0 (0x00-0x1f), DEL, C1 (0x80-0x9f), U+2028/2029 (line/paragraph separators), bidi embeddings/overrides
# and isolates (U+202A-202E, U+2066-2069: "Trojan Source" reordering).
_CONTROLS = "\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_ALL = re.compile(f"[{_CONTROLS}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    code = ord(ch)
    return _NAMED.get(ch) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape_controls(text: str, *, keep: str = "") -> str:
    """`text` with every control character shown as an escape (`\\x1b`, `\\n`, `\\u202e`), except the
    characters in `keep` (e.g. "\\n\\t" for multi-line output that is ours). Always one line when keep=""."""
    text = str(text)
    if keep:
        pattern = re.compile("[" + _CONTROLS + "]")
        return pattern.sub(lambda m: m.group() if m.group() in keep else _escape(m), text)
    return _ALL.sub(_escape, text)


def has_controls(text: str) -> bool:
    return _ALL.search(str(text)) is not None
