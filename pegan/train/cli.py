"""`pegan train`: train (or resume) one experiment.

Two ways to call it:

* by the workflow: ``pegan train EXP --spec '<ExperimentSpec json>' --seed N --data DATA.zip
  --checkpoint-dir DIR --selection-scales 32,64|none --selection-features F.npz ... --gpus N
  --max-minutes M --out FINAL.pt --snapshot-log SNAPSHOTS.jsonl``;
* by hand: ``pegan train EXP --preset P --out DIR`` resolves the spec from config.yaml, prepares
  the data (unless --data) and writes everything under DIR.

``--gpus N > 1`` re-launches the command as N torchrun processes. Exit status 0: done; 75: stopped
for the time budget with a checkpoint (rerun to resume); 3: diverged (NaN/Inf loss or state; the
message gives the command that continues from the last good checkpoint with lower learning
rates); 73: another live trainer holds the checkpoint dir; 74: the file system refused a write.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from pegan.errors import PeganError

log = logging.getLogger(__name__)


@dataclass
class Invocation:
    """A fully resolved training command (what a torchrun child receives)."""

    spec: object
    data: Path
    checkpoint_dir: Path
    out: Path
    snapshot_log: Path | None
    selection: list[tuple[int, Path]] = field(default_factory=list)


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="experiment name of the registry (e.g. t5f)")
    p.add_argument("--spec", default=None,
                   help="resolved ExperimentSpec as JSON (workflow); else --preset/--config")
    p.add_argument("--config", default=None, help="config file (default: the repo's config.yaml)")
    p.add_argument("--preset", default=None, help="preset, when --spec is not given")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None, help="prepared data zip/folder (by hand: optional)")
    p.add_argument("--checkpoint-dir", default=None,
                   help="checkpoints, snapshots and persistent logs (by hand: OUT/checkpoints)")
    p.add_argument("--selection-scales", default="none",
                   help="sizes (px) of the snapshot FID, comma-separated, or 'none'")
    p.add_argument("--selection-features", nargs="*", default=[],
                   help="real-feature .npz files, one per selection scale, in the same order")
    p.add_argument("--gpus", type=int, default=None,
                   help="processes/devices (>1: torchrun data parallel; default: the spec's)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="the job's wall time; stop with a checkpoint a margin before it")
    p.add_argument("--safety-minutes", type=float, default=None,
                   help="stop this long before the wall time (default: min(10, 10%% of the "
                        "budget); the workflow passes the train rule's resource safety_seconds)")
    p.add_argument("--out", required=True,
                   help="final snapshot file (with --spec) or run directory (by hand)")
    p.add_argument("--snapshot-log", default=None, help="copy of the per-snapshot metric log")
    p.add_argument("--checkpoint-every", type=int, default=None, help="iterations")
    p.add_argument("--keep-checkpoints", type=int, default=3)
    p.add_argument("--log-every", type=int, default=10, help="iterations per train.jsonl line")
    p.add_argument("--workers", type=int, default=None,
                   help="data-loading processes per rank (default: 0 for in-memory data, else 4)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe setting (e.g. scale_sampling=official-uniform)")
    p.add_argument("--device", default=None, help="cpu | cuda | auto (default: the spec's)")
    p.add_argument("--accept-config-change", default=None, metavar="REASON",
                   help="continue the checkpoint dir's run although its --set settings differ "
                        "(e.g. lower learning rates after a divergence); the change and REASON "
                        "are recorded in events.jsonl and config.json")
    p.add_argument("--inception", default=None, help="Inception weights for the snapshot FID")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    p.add_argument("--no-curve", action="store_true",
                   help="no structure/diversity learning curve at the snapshots")
    p.add_argument("--stop-after", type=int, default=None,
                   help="stop as for the time budget after this many iterations (testing)")
    p.add_argument("--deadline", type=float, default=None, help=argparse.SUPPRESS)


def _settings(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PeganError(f"--set {pair!r}: use KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def _selection(scales: str, features: list[str]) -> list[tuple[int, Path]]:
    if scales.strip().lower() in ("none", ""):
        return []
    try:
        px = [int(s) for s in scales.split(",")]
    except ValueError:
        raise PeganError(f"--selection-scales {scales!r}: use e.g. 32,64 or none") from None
    if len(features) != len(px):
        raise PeganError(f"--selection-scales {scales} needs {len(px)} --selection-features "
                         f"files (one per scale), got {len(features)}")
    return [(s, Path(f)) for s, f in zip(px, features)]


def resolve_invocation(args: argparse.Namespace) -> Invocation:
    """The spec and paths of a workflow call (--spec) or of a call by hand (--preset)."""
    from pegan import config as pconfig

    selection = _selection(args.selection_scales, args.selection_features)
    if args.spec is not None:
        try:
            spec = pconfig.ExperimentSpec(**json.loads(args.spec))
        except (json.JSONDecodeError, TypeError) as exc:
            raise PeganError(f"--spec is not an ExperimentSpec JSON ({exc})") from None
        if spec.name != args.experiment:
            raise PeganError(f"--spec describes {spec.name!r}, not {args.experiment!r}")
        if args.data is None or args.checkpoint_dir is None:
            raise PeganError("with --spec, give --data and --checkpoint-dir")
        return Invocation(spec, Path(args.data), Path(args.checkpoint_dir), Path(args.out),
                          Path(args.snapshot_log) if args.snapshot_log else None, selection)
    cfg = pconfig.load(args.config, {"preset": args.preset} if args.preset else None)
    spec = pconfig.resolve(cfg, args.experiment, args.preset)
    run_dir = Path(args.out)
    data = Path(args.data) if args.data else _prepare(cfg, spec, run_dir)
    ckpt = Path(args.checkpoint_dir) if args.checkpoint_dir else run_dir / "checkpoints"
    snap_log = Path(args.snapshot_log) if args.snapshot_log else run_dir / "snapshots.jsonl"
    return Invocation(spec, data, ckpt, run_dir / "final.pt", snap_log, selection)


def _prepare(cfg: dict, spec, run_dir: Path) -> Path:
    from pegan.data.prepare import prepare

    res = spec.data_resolution
    path = run_dir / "data" / f"{spec.dataset}-{res}px.zip"
    if not path.exists():
        num = cfg["presets"][spec.preset]["num_images"]
        prepare(spec.dataset, spec.dataset_spec, resolution=res, num=num, out=path)
    return path


def _child_argv(args: argparse.Namespace, inv: Invocation, deadline: float | None) -> list[str]:
    argv = ["train", args.experiment, "--spec", json.dumps(inv.spec.to_dict()),
            "--seed", str(args.seed), "--data", str(inv.data),
            "--checkpoint-dir", str(inv.checkpoint_dir), "--out", str(inv.out),
            "--keep-checkpoints", str(args.keep_checkpoints), "--log-every", str(args.log_every),
            "--gpus", str(args.gpus)]
    if inv.snapshot_log:
        argv += ["--snapshot-log", str(inv.snapshot_log)]
    if inv.selection:
        argv += ["--selection-scales", ",".join(str(s) for s, _ in inv.selection),
                 "--selection-features", *[str(f) for _, f in inv.selection]]
    for flag, value in (("--checkpoint-every", args.checkpoint_every), ("--device", args.device),
                        ("--workers", args.workers),
                        ("--inception", args.inception), ("--stop-after", args.stop_after),
                        ("--deadline", deadline)):
        if value is not None:
            argv += [flag, str(value)]
    for pair in args.settings:
        argv += ["--set", pair]
    if args.accept_config_change is not None:
        argv += ["--accept-config-change", args.accept_config_change]
    if args.no_progress:
        argv.append("--no-progress")
    if args.no_curve:
        argv.append("--no-curve")
    return argv


def _launch_torchrun(args: argparse.Namespace, inv: Invocation, deadline: float | None) -> int:
    from pegan.train import distributed
    from pegan.train.runlock import check_free

    check_free(inv.checkpoint_dir)        # fail at once, before starting the processes
    status_file = inv.checkpoint_dir / "exit-status.json"
    status_file.unlink(missing_ok=True)
    cmd = distributed.torchrun_command(args.gpus, _child_argv(args, inv, deadline))
    log.info("launching %d processes: %s", args.gpus, " ".join(cmd[:6]) + " ...")
    code = subprocess.run(cmd, check=False).returncode
    if status_file.exists():
        status = json.loads(status_file.read_text())
        if code != 0 and status.get("status"):
            log.warning("%s", status.get("message", ""))
        return int(status["status"]) if code != 0 or status["status"] == 0 else code
    return code


def run(args: argparse.Namespace) -> int:
    from pegan.train import distributed
    from pegan.train.budget import deadline as make_deadline
    from pegan.train.loop import RunOptions, train

    start = time.time()
    inv = resolve_invocation(args)
    if args.gpus is None:
        args.gpus = max(1, inv.spec.gpus)
    deadline = args.deadline if args.deadline is not None else make_deadline(
        args.max_minutes, start=start, margin_minutes=args.safety_minutes)
    if args.gpus > 1 and not distributed.launched_by_torchrun():
        return _launch_torchrun(args, inv, deadline)
    options = RunOptions(
        checkpoint_dir=inv.checkpoint_dir, data=inv.data, seed=args.seed, out=inv.out,
        snapshot_log=inv.snapshot_log, selection=inv.selection, deadline=deadline,
        checkpoint_every=args.checkpoint_every, keep_checkpoints=args.keep_checkpoints,
        log_every=args.log_every, workers=args.workers, settings=_settings(args.settings),
        device=args.device, progress=not args.no_progress, curve=not args.no_curve, stop_after=args.stop_after,
        inception_path=args.inception, accept_config_change=args.accept_config_change)
    status = train(inv.spec, options)
    if status == 0 and int(os.environ.get("RANK", 0)) == 0:
        print(f"{inv.out}: trained {inv.spec.name} seed {args.seed}")
    return status
