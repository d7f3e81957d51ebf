"""Which pegan code produced a file: the git commit of the checkout pegan runs from."""

from __future__ import annotations

import subprocess
from pathlib import Path

UNRECORDED = "unrecorded"      # a run (or attempt) from before pegan recorded its commit


def git_commit(root: str | Path | None = None) -> str:
    """`<sha>` (with `-dirty` when tracked files changed), or 'unknown' outside a checkout."""
    root = Path(root) if root else Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "-uno"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def short(commit: str) -> str:
    """A commit as people quote it: 10 hex digits, `-dirty` kept."""
    sha, dirty, _ = commit.partition("-dirty")
    return commit if len(sha) != 40 else sha[:10] + ("-dirty" if dirty else "")
