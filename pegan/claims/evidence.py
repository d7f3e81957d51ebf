"""A claims report's evidence in one file, so that a report can be rebuilt without its runs.

A finding too long for one working session runs part by part (``snakemake
claims_<finding>_<family>``, :func:`pegan.plan.finding_parts`); its runs, checkpoints and
models do not outlive the session, but each part's ``evidence.json`` (50-70 kB at
``mini``, committed beside its report) holds everything ``pegan claims`` read: the metrics files of
the claim runs, the held-out floors and the learning curves, under the paths they had, plus
where they were made (pegan commit, machine, job seconds per block of runs). ``pegan claims
--evidence a.json b.json ...`` writes them back into a scratch folder and reads them as if
they were the files, so the finding's report from its parts' evidence is the report of the
same files: the same per-seed values, tests, Holm correction and convergence table.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Mapping

from pegan import io
from pegan.claims.provenance import Runs
from pegan.errors import PeganError
from pegan.plan import parse_metrics_path

FORMAT = "pegan-claims-evidence/1"
KINDS = ("metrics", "heldout", "curves")     # the file lists of `pegan claims`


@dataclass
class Evidence:
    """The files of each kind (path as given -> text) and the bundles' provenance."""

    files: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    sources: list[dict] = field(default_factory=list)

    def add(self, kind: str, path: str, text: str, origin: str) -> None:
        known = self.files[kind].get(path)
        if known is not None and known != text:
            raise PeganError(f"{origin}: {path} differs from the same file of an earlier "
                             "--evidence bundle; give each run's evidence once")
        self.files[kind][path] = text


def _key(path: str | Path) -> str:
    """The stored name of a file: its path as given, relative and without '..' (the parsers
    read the trailing `<experiment>/seed<N>/...` part)."""
    p = PurePosixPath(Path(path).as_posix())
    parts = [x for x in p.parts if x not in ("/", "..", ".")]
    return str(PurePosixPath(*parts))


def write(out: str | Path, files: Mapping[str, Iterable[str | Path]], provenance: Mapping,
          names: Mapping[str, str] | None = None) -> None:
    """Bundle the existing files of each kind (missing ones, e.g. a run without a curve, are
    left out as `pegan claims` treats them: empty) with `provenance` (atomic write). `names`:
    the stored name of files that came from other bundles (:func:`materialize`)."""
    names = names or {}
    bundle = {"format": FORMAT, **provenance, "files": {}}
    for kind in KINDS:
        stored = {}
        for path in files.get(kind, ()):
            if Path(path).is_file():
                stored[names.get(os.fspath(path)) or _key(path)] = Path(path).read_text()
        bundle["files"][kind] = dict(sorted(stored.items()))
    io.write_text(out, json.dumps(bundle, indent=1, sort_keys=False) + "\n")


def read(paths: Iterable[str | Path]) -> Evidence:
    """The union of bundles; the same file in two bundles must be the same file."""
    evidence = Evidence()
    for path in paths:
        try:
            bundle = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise PeganError(f"--evidence {path}: cannot read it ({err})") from err
        if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
            raise PeganError(f"--evidence {path}: not a pegan claims evidence file "
                             f"(format {FORMAT}, written by `pegan claims --evidence-out`)")
        for kind in KINDS:
            for name, text in bundle.get("files", {}).get(kind, {}).items():
                evidence.add(kind, name, text, f"--evidence {path}")
        source = {k: v for k, v in bundle.items() if k != "files"} | {"path": str(path)}
        if "run_seconds" not in source:     # bundled before job time was kept per run
            source["run_seconds"] = _seconds_of_seeds(bundle)
        evidence.sources.append(source)
    return evidence


def runs_key(experiment: str, seeds: Iterable[int]) -> str:
    """How a bundle names a block of runs in `run_seconds`: `<experiment>/seed0+1+2`."""
    return f"{experiment}/seed{'+'.join(map(str, sorted(seeds)))}"


def run_seconds(source: Mapping) -> dict[Runs, float]:
    """A bundle's job seconds per block of runs, keyed (experiment, seeds)."""
    blocks = {}
    for key, seconds in source.get("run_seconds", {}).items():
        experiment, _, seeds = key.rpartition("/seed")
        blocks[(experiment, tuple(int(s) for s in seeds.split("+")))] = float(seconds)
    return blocks


def _seconds_of_seeds(bundle: Mapping) -> dict[str, float]:
    """An older bundle's per-experiment job seconds, as blocks of the seeds it holds."""
    seeds: dict[str, set[int]] = {}
    for name in bundle.get("files", {}).get("metrics", {}):
        try:
            ev, seed = parse_metrics_path(name)
        except ValueError:
            continue
        seeds.setdefault(ev.experiment, set()).add(seed)
    return {runs_key(e, seeds[e]): v for e, v in bundle.get("job_seconds", {}).items()
            if e in seeds}


def materialize(evidence: Evidence, root: str | Path
                ) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Write the bundled files under `root` at their stored names: the paths of each kind, and
    each path's stored name (to bundle them again under it)."""
    paths, names = {}, {}
    for kind in KINDS:
        paths[kind] = []
        for name, text in evidence.files[kind].items():
            target = Path(root, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            paths[kind].append(os.fspath(target))
            names[os.fspath(target)] = name
    return paths, names
