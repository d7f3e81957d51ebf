"""Append-only JSONL logs kept in the checkpoint dir (Snakemake wipes declared logs on retry).

* ``events.jsonl``: the run's history across attempts (start, resume, checkpoint, snapshot,
  budget stop, divergence, done); never rewritten.
* ``train.jsonl``: losses and timings; ``snapshots.jsonl``: per-snapshot selection metrics.
  On resume both are cut back to the checkpoint's iteration so that a replayed stretch is not
  logged twice.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from pegan.io import file_system_error, write_text


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)                       # JSON has no NaN/Inf
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class JsonlLog:
    """One JSON object per line; writes are no-ops when `enabled` is False (ranks > 0)."""

    def __init__(self, path: str | Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled

    def append(self, record: dict) -> None:
        if not self.enabled:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as fh:
                fh.write(json.dumps(_clean(record), sort_keys=True) + "\n")
                fh.flush()
        except OSError as exc:            # a torn last line is ignored by read_jsonl
            error = file_system_error(exc, self.path)
            if error is None:
                raise
            raise error from None

    def event(self, name: str, **fields: Any) -> None:
        self.append({"event": name, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **fields})

    def records(self) -> list[dict]:
        return read_jsonl(self.path)

    def truncate(self, key: str, max_value: float) -> None:
        """Keep only the records whose `key` is <= `max_value` (atomic rewrite)."""
        if not self.enabled or not self.path.exists():
            return
        kept = [r for r in self.records() if r.get(key, -math.inf) <= max_value]
        write_text(self.path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))


def read_jsonl(path: str | Path) -> list[dict]:
    """Records of a JSONL file; a torn last line (killed writer) is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
