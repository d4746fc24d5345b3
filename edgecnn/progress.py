"""Progress bars for the library's long loops: on stderr, where stdout carries results and
``--json``, and only once the CLI (or a caller) turns them on and stderr is a terminal.

tqdm is what ai-edge-litert already installs; it draws nothing when disabled.
"""

from __future__ import annotations

import sys
from typing import Iterable, Optional

_enabled = False


def enable(on: bool = True) -> None:
    """Show bars (on a terminal) for the rest of the process."""
    global _enabled
    _enabled = on


def bar(iterable: Optional[Iterable] = None, total: Optional[int] = None, what: str = "", unit: str = "it"):
    """`iterable` wrapped in a bar labelled `what`; use as an iterator, or with ``update`` and ``with``."""
    from tqdm import tqdm

    return tqdm(
        iterable,
        total=total,
        desc=what,
        unit=unit,
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
        # None: off when stderr is not a terminal (a log file, CI), so logs stay plain lines.
        disable=None if _enabled else True,
    )
