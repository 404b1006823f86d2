"""An append-only tally in a file, written by agents wherever they run (this process or
another), read by the harness: the independent record of what really happened (a task
finished, by whom), kept outside every messaging path under test.

Each record is one short line appended with a single ``write`` on a file opened with
``O_APPEND``: on Linux such writes from several processes do not interleave.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any


class Ledger:
    """Records ``[kind, *fields, time.time()]`` lines to ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def record(self, kind: str, *fields: Any) -> None:
        line = (json.dumps([kind, *fields, time.time()]) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def entries(self, kind: str | None = None) -> list[list]:
        """Every record (of ``kind``), oldest first; none if the file does not exist."""
        try:
            with open(self.path, encoding="utf-8") as file:
                rows = [json.loads(line) for line in file if line.strip()]
        except FileNotFoundError:
            return []
        return [row for row in rows if kind is None or row[0] == kind]
