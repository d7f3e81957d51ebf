"""Helpers for tests that run a slice of the workflow in a temporary copy of the repository.

A slice keeps only some table rows (and the experiments they use), so that the smoke DAG
stays small enough for a test. The copy holds the Snakefile, workflow/, profiles/,
results/reported/ and the sliced config.yaml; nothing is written to the checkout.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import yaml

from pegan import config as pconfig

ROOT = pconfig.REPO_ROOT


def slice_config(raw: dict, rows: dict[str, list[str]], *,
                 columns: dict[str, list[str]] | None = None,
                 overrides: dict[str, dict] | None = None,
                 schedule: dict | None = None,
                 extra_experiments: list[str] | None = None) -> dict:
    """The registry cut down to `rows` ({table: [row ids]}) and the experiments they use
    (plus `extra_experiments`, trained although no kept row reads them).

    `columns` ({table: [column keys]}) also drops the other columns of those tables (fewer
    snapshots to select and evaluate). `overrides` ({experiment: {setting: value}}) are added to the smoke preset's overrides
    (e.g. a longer schedule for one run); `schedule` updates the smoke preset's schedule
    (e.g. fewer images per paper Mimg for a faster test)."""
    cfg = dict(raw)
    cfg["tables"] = {}
    for table, ids in rows.items():
        spec = dict(raw["tables"][table])
        spec["rows"] = [r for r in spec["rows"] if str(r["id"]) in ids]
        if columns and table in columns:
            spec["columns"] = [c for c in spec["columns"] if c["key"] in columns[table]]
        cfg["tables"][table] = spec
    used = {r["experiment"] for t in cfg["tables"].values() for r in t["rows"]}
    used |= set(extra_experiments or [])
    cfg["experiments"] = {k: v for k, v in raw["experiments"].items() if k in used}
    cfg["claims"] = [c for c in raw["claims"] if c["table"] in rows
                     and all(str(c.get(k, "")) in rows[c["table"]] or k not in c
                             for k in ("better", "worse", "best", "close", "to"))
                     and all(str(r) in rows[c["table"]] for r in c.get("among", []))]
    cfg["presets"] = {name: dict(p) for name, p in raw["presets"].items()}
    kept_claims = {c["id"] for c in cfg["claims"]}
    for preset in cfg["presets"].values():
        preset["overrides"] = {k: v for k, v in preset.get("overrides", {}).items() if k in used}
        if "claims" in preset:
            preset["claims"] = [c for c in preset["claims"] if c in kept_claims]
    smoke = cfg["presets"]["smoke"]
    smoke["schedule"] = {**smoke["schedule"], **(schedule or {})}
    for experiment, settings in (overrides or {}).items():
        cfg["presets"]["smoke"]["overrides"][experiment] = dict(settings)
    return cfg


def make_workdir(work: Path, rows: dict[str, list[str]], *,
                 columns: dict[str, list[str]] | None = None,
                 overrides: dict[str, dict] | None = None,
                 schedule: dict | None = None,
                 extra_experiments: list[str] | None = None) -> Path:
    """Copy the workflow into `work` with a sliced config.yaml; returns `work`."""
    work.mkdir(parents=True, exist_ok=True)
    for item in ("Snakefile", "workflow", "profiles"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / item)
    (work / "results").mkdir()
    shutil.copytree(ROOT / "results" / "reported", work / "results" / "reported")
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg = slice_config(raw, rows, columns=columns, overrides=overrides,
                       schedule=schedule, extra_experiments=extra_experiments)
    (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return work


def job_env() -> dict[str, str]:
    """The environment for a `snakemake` subprocess: this interpreter's scripts first on
    PATH, so that the rules (and SLURM jobs, which inherit it) find `pegan`."""
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def snakemake_exe() -> str:
    return str(Path(sys.executable).parent / "snakemake")


def digests(folder: Path, pattern: str = "**/*") -> dict[str, str]:
    """sha256 of every file under `folder` matching `pattern`, keyed by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.glob(pattern)) if p.is_file()}
