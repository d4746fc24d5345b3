"""User text (labels, paths, names from model files) made safe for where it is shown."""

from __future__ import annotations

import html
import re

#: C0 controls but newline and tab, DEL and the C1 controls: what could move the cursor, set a
#: window title or clear the screen if a label or a path carrying it reached the terminal.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))}
_LINE_BREAKS = {0x0A: "\\n", 0x09: "\\t"}
#: What makes inline markdown of a table cell or a heading's tail: emphasis, code, links, cells.
_MARKDOWN = re.compile(r"([\\`*_\[\]|~])")


def terminal_safe(text: str) -> str:
    """`text` with control characters shown as ``\\xNN``."""
    return str(text).translate(_CONTROLS)


def one_line(text: str) -> str:
    """`text` on one line: controls as ``\\xNN``, newlines and tabs as ``\\n`` and ``\\t``."""
    return terminal_safe(text).translate(_LINE_BREAKS)


def markdown_text(text: str) -> str:
    """`text` shown as it is in markdown: on one line, no markup, no HTML, no table cell break."""
    return _MARKDOWN.sub(r"\\\1", html.escape(one_line(text), quote=False))


def control_character(text: str) -> str | None:
    """The first control character (newline included) in `text`, shown as ``\\xNN``, or None."""
    found = next((c for c in str(text) if ord(c) in _CONTROLS or ord(c) in _LINE_BREAKS), None)
    return None if found is None else f"\\x{ord(found):02x}"
