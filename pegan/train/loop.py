"""The generic training loop: checkpoint/resume, time budget, NaN guard, snapshots, logs, DDP.

Everything family-specific is in the recipe (:mod:`pegan.train.recipe`). Files, all in the
checkpoint dir (outside the workflow's declared outputs, so a retry never deletes them):

    train.lock         the advisory lock of the live trainer (pegan.train.runlock)
    config.json        the resolved spec, settings, config hash, dataset identity and the
                       recorded configuration changes (--accept-config-change) of the run
    ckpt-*.pt          resumable checkpoints (the last K)
    snapshot-*.pt      G_ema snapshots (pegan.snapshot format) at the spec's image counts
    snapshots.jsonl    one line per snapshot: kimg, paper Mimg, file, fid@<px> (selection),
                       structure@<px> and diversity@<px> (the learning curve)
    train.jsonl        losses and timings
    events.jsonl       start / resume / config-changed / checkpoint / snapshot / stop /
                       diverged / done
    exit-status.json   how the last attempt ended (read by the torchrun launcher)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shlex
import shutil
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from pegan.config import ExperimentSpec
from pegan.data.loader import ImageDataset, IterationSampler, real_batches
from pegan.data.prepare import fingerprint
from pegan.device import resolve_device
from pegan.errors import PeganError
from pegan.io import atomic_path, write_json, write_text
from pegan.provenance import UNRECORDED, git_commit, machine
from pegan.seeding import seed_all
from pegan.train import distributed, recipe_class, settings_for
from pegan.train.budget import RESUME_EXIT_STATUS, StopSignals, TimeBudget
from pegan.train.checkpoint import (CheckpointStore, capture_rng, config_hash,
                                    nonfinite_entries, restore_rng, state_digest)
from pegan.train.logs import JsonlLog
from pegan.train.runlock import RunLock
from pegan.train.recipe import Recipe, Schedule

log = logging.getLogger(__name__)

DIVERGED_EXIT_STATUS = 3
STOP_CHECK_EVERY = 16      # data parallel: iterations between the ranks' budget-stop agreements
# the structure metric's outputs logged at each snapshot (as "<key>@<px>")
CURVE_KEYS = ("structure", "diversity")
# Spec fields that do not change the training trajectory, or that the hash holds already
# (`train`: the preset's settings, hashed as the resolved `settings`): left out of the hash.
_UNHASHED_SPEC_FIELDS = ("samples", "device", "gpus", "train")


class TrainingDiverged(PeganError):
    """A loss became NaN or Inf."""

    exit_code = DIVERGED_EXIT_STATUS


@dataclass
class RunOptions:
    """Where a run reads and writes, and how it behaves on a cluster."""

    checkpoint_dir: Path
    data: Path
    seed: int = 0
    out: Path | None = None                  # final snapshot (the workflow's declared output)
    snapshot_log: Path | None = None         # copy of snapshots.jsonl (declared output)
    selection: list[tuple[int, Path]] = field(default_factory=list)   # (scale px, real features)
    deadline: float | None = None            # epoch seconds (see pegan.train.budget.deadline)
    checkpoint_every: int | None = None      # iterations; None: min(10000, snapshot interval)
    keep_checkpoints: int = 3
    log_every: int = 10                      # iterations per train.jsonl line
    workers: int | None = None               # data-loading processes per rank (None: 0 for
                                             # in-memory data, else 4 as the official configs)
    settings: dict = field(default_factory=dict)   # recipe settings overrides
    device: str | None = None                # overrides spec.device ('cpu', 'cuda', 'auto')
    progress: bool = True
    stop_after: int | None = None            # stop (as for the budget) after this many iterations
    inception_path: str | None = None        # for the selection metric
    accept_config_change: str | None = None  # the reason: continue a checkpoint written with
                                             # other recipe settings (recorded in the run)
    curve: bool = True                       # structure/diversity at each snapshot (the
                                             # learning curve in snapshots.jsonl)


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a side computation (e.g. the snapshot metric) without touching the training RNGs."""
    state = capture_rng()
    try:
        yield
    finally:
        restore_rng(state)


@contextmanager
def evaluating(G: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """`G` in eval mode for a side computation, its training mode restored after: a
    generator that trains itself (DCGAN's, with batch norm) must sample with its running
    statistics, as its snapshot is evaluated, and must not update them."""
    was_training = G.training
    G.eval()
    try:
        yield G
    finally:
        G.train(was_training)


def train(spec: ExperimentSpec, options: RunOptions) -> int:
    """Train (or resume) one run; returns 0 when done, RESUME_EXIT_STATUS when it stopped for
    the time budget or for a scheduler's SIGTERM / SIGUSR1 (with a checkpoint). Raises TrainingDiverged on a NaN/Inf loss or state, RunLocked when another
    live trainer writes to the checkpoint dir."""
    device = resolve_device(options.device or spec.device)
    # one lock per run: the process that writes the files (rank 0; RANK is set by torchrun)
    main = int(os.environ.get("RANK", "0")) == 0
    with RunLock(options.checkpoint_dir) if main else nullcontext() as lock:
        if lock is not None:
            lock.remove_stale_temp_files()
        rank, world, local_rank = distributed.init(device.type == "cuda")
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
        try:
            with StopSignals() as signals:
                return _Run(spec, options, device, rank, world, signals).run()
        finally:
            distributed.shutdown()


def _attempts(recorded: list[str] | None, now: str) -> list[str]:
    """A run's record of its attempts' commits or machines, with this attempt's appended when
    it differs from the last (a checkpoint of before the record starts `unrecorded`)."""
    history = list(recorded or [UNRECORDED])
    return history if history[-1] == now else [*history, now]


class _Run:
    def __init__(self, spec: ExperimentSpec, opts: RunOptions, device: torch.device,
                 rank: int, world: int, signals: StopSignals | None = None) -> None:
        from pegan.train.recipe import TrainContext

        self.spec, self.opts = spec, opts
        self.signals = signals or StopSignals()          # a stop asked by the scheduler
        self.main = rank == 0
        self.ckpt_dir = Path(opts.checkpoint_dir)
        if self.main:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        cls = recipe_class(spec.arch)
        settings = settings_for(spec, opts.settings)
        # Models are built from the run seed alone (identical on every rank) ...
        seed_all(opts.seed, 0)
        self.ctx = TrainContext(device=device, seed=opts.seed, rank=rank, world_size=world)
        self.recipe: Recipe = cls(spec, self.ctx, settings)
        # ... and each rank then draws its own latents and noise.
        seed_all(opts.seed, rank + 1)
        self.schedule: Schedule = self.recipe.schedule()
        if self.schedule.images_per_iteration % world:
            raise PeganError(f"batch {self.schedule.images_per_iteration} cannot be split over "
                             f"{world} processes; choose a --gpus that divides it")
        self.dataset = ImageDataset(opts.data, self.recipe.data_resolution())
        self.sampler = IterationSampler(len(self.dataset), self.schedule.images_per_iteration,
                                        opts.seed, flip=self.recipe.flip)
        spec_fields = {k: v for k, v in spec.to_dict().items() if k not in _UNHASHED_SPEC_FIELDS}
        self.config = {"spec": spec_fields, "seed": opts.seed, "arch": spec.arch,
                       "settings": dataclasses.asdict(settings), "world_size": world,
                       "num_images": len(self.dataset), "data_resolution": self.dataset.resolution}
        self.hash = config_hash(self.config)
        # not hashed (a checkpoint of before the fingerprint stays loadable), checked on resume
        self.dataset_id = {"path": str(opts.data), "fingerprint": fingerprint(opts.data),
                           "num_images": len(self.dataset)}
        self.changes: list[dict] = []           # --accept-config-change decisions of the run
        # the pegan commits that trained this run, one per change of code across attempts
        # (written into every snapshot: `pegan claims` reports them)
        self.commit = git_commit()
        self.commits = [self.commit]
        # ... and the machines, one per change of machine: another processor's kernels round
        # differently, and the run continues differently (pegan.provenance.machine)
        self.machine = machine()
        self.machines = [self.machine]
        self.store = CheckpointStore(self.ckpt_dir, keep=opts.keep_checkpoints)
        self.events = JsonlLog(self.ckpt_dir / "events.jsonl", self.main)
        self.train_log = JsonlLog(self.ckpt_dir / "train.jsonl", self.main)
        self.snap_log = JsonlLog(self.ckpt_dir / "snapshots.jsonl", self.main)
        self.budget = TimeBudget(opts.deadline)
        every = opts.checkpoint_every
        if every is None:
            # official: every 10k iterations; smaller runs: every snapshot interval
            every = max(1, min(10000, self.schedule.snapshot_iterations[0]))
        self.checkpoint_every = every
        self.metric_seconds = 0.0
        self.last_checkpoint: str | None = None
        self._fid = _selection_metric() if opts.selection and self.main else None

    # ----------------------------------------------------------------------- run
    def run(self) -> int:
        total = self.schedule.total_iterations
        start = self._resume()
        if self.main:
            write_json(self.ckpt_dir / "config.json", {"config_hash": self.hash, **self.config,
                                                       "dataset": self.dataset_id,
                                                       "changes": self.changes})
        done = start
        snapshots = set(self.schedule.snapshot_iterations)
        batches = real_batches(self.dataset, self.sampler, start_iteration=start,
                               rank=self.ctx.rank, world_size=self.ctx.world_size,
                               device=self.ctx.device, workers=self._workers())
        self.bar = _progress(total, start, enabled=self.main and self.opts.progress)
        window = _Window()
        # data parallel: the ranks agree on a budget stop every `every` iterations only,
        # each then asking whether all of them still fit (--stop-after is the same everywhere)
        every = 1 if self.ctx.world_size == 1 else STOP_CHECK_EVERY
        bn_stats = distributed.batch_norm_stats(self.recipe.modules().values())
        while done < total:
            asked = self.opts.stop_after is not None and done >= self.opts.stop_after
            if asked or (done - start) % every == 0:
                ahead = min(every, total - done)
                upcoming = (self.metric_seconds
                            if any(done + i in snapshots for i in range(1, ahead + 1)) else 0.0)
                # the budget stops a run only after it made progress in this attempt; a
                # scheduler's SIGTERM / SIGUSR1 (StopSignals) at once
                over = (done > start and self.budget.exhausted(upcoming, steps=ahead)
                        or self.signals.received is not None)
                if asked or distributed.any_true(over, self.ctx.device):
                    self._check_finite(window)
                    self.bar.close()
                    return self._stop(done)
            t0 = time.time()
            out = self.recipe.step(next(batches), done)
            distributed.broadcast_tensors(bn_stats)     # data parallel: rank 0's BN statistics
            window.add(done, out)
            done += 1
            self.budget.observe_step(time.time() - t0)
            self.bar.update(1)
            saving = done % self.checkpoint_every == 0 or done in snapshots or done == total
            # the losses stay on the device until a log line or a checkpoint needs them
            if done % self.opts.log_every == 0 or done == total:
                window = self._flush(done, window)
            if saving:
                self._check_finite(window)
                self._check_state(done)
            if done in snapshots:
                self._snapshot(done)
            if saving:
                self._checkpoint(done)
        self.bar.close()
        return self._finish(done)

    def _check_finite(self, window: "_Window") -> list[tuple[int, dict[str, float]]]:
        """The NaN/Inf guard on the window's losses, copied to the host in one transfer (only
        those not checked yet); returns (iteration, {loss: value}) of the whole window."""
        fresh = window.fetch()
        bad = next(((it, [f"{k} = {v}" for k, v in values.items() if not np.isfinite(v)])
                    for it, values in fresh if not all(map(np.isfinite, values.values()))), None)
        if distributed.any_true(bad is not None, self.ctx.device):
            if bad is None:
                self._diverged(window.iterations[0], "a loss on another rank is not finite")
            iteration, what = bad
            self._diverged(iteration, ", ".join(what), losses=dict(fresh)[iteration])
        return window.fetched

    def _flush(self, done: int, window: "_Window") -> "_Window":
        """The guard on the window's losses, one train.jsonl line; returns a fresh window."""
        per_iteration = self._check_finite(window)
        merged: dict[str, list[float]] = {}
        for _, values in per_iteration:
            for k, v in values.items():
                merged.setdefault(k, []).append(v)
        for k, v in window.info.items():
            merged.setdefault(k, []).extend(v)
        seconds = time.time() - window.start
        self._log(done, merged, len(window.iterations), seconds)
        means = {k: float(np.mean(v)) for k, v in merged.items()}
        self.bar.set_postfix_str(_postfix(self.schedule.kimg(done), seconds / max(
            1e-9, self.schedule.kimg(len(window.iterations))), means,
            {k: v[-1] for k, v in window.info.items()}), refresh=False)
        return _Window()

    def _workers(self) -> int:
        if self.opts.workers is not None:
            return self.opts.workers
        return 0 if self.dataset.in_memory else 4

    # ------------------------------------------------------------------- resume
    def _resume(self) -> int:
        state = self.store.load_latest(self.hash,
                                       accept_other=self.opts.accept_config_change is not None)
        if state is None:
            self.events.event("start", config_hash=self.hash, total_iterations=self.schedule.total_iterations,
                              world_size=self.ctx.world_size, pegan_commit=self.commit,
                              machine=self.machine)
            for jl in (self.train_log, self.snap_log):
                jl.truncate("iterations", 0)
            return 0
        if len(state["rng"]) != self.ctx.world_size:
            raise PeganError(f"{state['path']} was written by {len(state['rng'])} processes, "
                             f"this run has {self.ctx.world_size}; resume with the same --gpus")
        self._check_dataset(state)
        done = int(state["iterations"])
        self.changes = list(state.get("changes", []))
        self.commits = _attempts(state.get("commits"), self.commit)
        self.machines = _attempts(state.get("machines"), self.machine)
        before = (state.get("machines") or [UNRECORDED])[-1]
        if before not in (UNRECORDED, self.machine):
            log.warning("resuming on another machine than the last attempt's (%s, now %s): "
                        "other CPU kernels continue the run differently from an uninterrupted "
                        "one; `pegan --cpu-kernels` pins them", before, self.machine)
        # another config hash only with --accept-config-change; check before loading anything
        diff = self._allowed_change(state) if state["config_hash"] != self.hash else None
        # the new settings' hyperparameters (lr, betas): load_state_dict restores the old ones
        fresh = {name: [{k: v for k, v in group.items() if k != "params"}
                        for group in opt.param_groups]
                 for name, opt in self.recipe.optimizers().items()}
        self.recipe.load_state_dict(state["recipe"])
        restore_rng(state["rng"][self.ctx.rank])
        saved = state["rng"][self.ctx.rank].get("recipe", {})   # absent in older checkpoints
        for name, generator in self.recipe.generators().items():
            if name in saved:
                generator.set_state(saved[name])
        if diff is not None:
            self._accept_change(state, done, diff, fresh)
        self.last_checkpoint = state["path"]
        for jl in (self.train_log, self.snap_log):
            jl.truncate("iterations", done)
        self.events.event("resume", checkpoint=Path(state["path"]).name, iterations=done,
                          kimg=self.schedule.kimg(done), pegan_commit=self.commit,
                          machine=self.machine)
        log.info("resuming from %s (%d iterations, %.3f kimg)", state["path"], done,
                 self.schedule.kimg(done))
        return done

    def _check_dataset(self, state: dict) -> None:
        """Refuse to resume on other data: image count, and the content fingerprint when the
        checkpoint has one (checkpoints of before the fingerprint are checked by count only)."""
        before = state.get("dataset") or {"path": "the original data", "fingerprint": None,
                                          "num_images": state["data"]["num_images"]}
        now = self.dataset_id
        same_count = before["num_images"] == now["num_images"]
        if same_count and before["fingerprint"] in (None, now["fingerprint"]):
            if before["fingerprint"] is None:
                log.warning("%s has no dataset fingerprint (written by an older pegan): only "
                            "the image count was checked", state["path"])
            return
        def describe(d: dict) -> str:
            fp = f"fingerprint {d['fingerprint']}, " if d["fingerprint"] else ""
            return f"{d['path']} ({fp}{d['num_images']} images)"
        raise PeganError(f"the data changed since {state['path']}: it was trained on "
                         f"{describe(before)}, this run reads {describe(now)}; pass the "
                         "original --data, or another --checkpoint-dir to start afresh")

    def _allowed_change(self, state: dict) -> dict[str, tuple]:
        """What --accept-config-change would change: only recipe settings may differ."""
        diff = _differences(state["config"], self.config)
        fixed = [k for k in diff if not k.startswith("settings.")]
        if fixed:
            shown = ", ".join(f"{k} {diff[k][0]!r} -> {diff[k][1]!r}" for k in fixed[:3])
            raise PeganError(f"--accept-config-change: only training settings (--set) may "
                             f"change when {state['path']} continues, not {shown}; choose "
                             "another --checkpoint-dir to start afresh")
        return diff

    def _accept_change(self, state: dict, done: int, diff: dict[str, tuple],
                       fresh: dict[str, list[dict]]) -> None:
        """Continue a checkpoint of another configuration (--accept-config-change), with the
        new settings' optimiser hyperparameters; the decision goes to events.jsonl,
        config.json and every later checkpoint."""
        for name, opt in self.recipe.optimizers().items():
            for group, hyper in zip(opt.param_groups, fresh[name]):
                group.update(hyper)
        change = {"iterations": done, "checkpoint": Path(state["path"]).name,
                  "from_hash": state["config_hash"], "to_hash": self.hash,
                  "changed": {k: list(v) for k, v in diff.items()},
                  "reason": self.opts.accept_config_change,
                  "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self.changes.append(change)
        self.events.event("config-changed", **change)
        log.warning("continuing %s with changed settings (%s), as asked: %s", state["path"],
                    ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in diff.items()),
                    self.opts.accept_config_change)

    # ------------------------------------------------------------------ guards
    def _check_state(self, done: int) -> None:
        """Before a snapshot or checkpoint: parameters, buffers and optimiser moments must be
        finite (an overflowing exp_avg_sq can hide behind finite losses)."""
        bad = nonfinite_entries(self.recipe.state_dict())
        if distributed.any_true(bool(bad), self.ctx.device):
            what = (f"the model state is not finite ({', '.join(bad)})" if bad
                    else "the model state on another rank is not finite")
            self._diverged(done, what, state=bad)

    def _diverged(self, iteration: int, what: str, **details) -> None:
        kept = (f"the last good checkpoint {self.last_checkpoint} is kept"
                if self.last_checkpoint else "no checkpoint was written yet")
        message = (f"training diverged at iteration {iteration} "
                   f"(kimg {self.schedule.kimg(iteration):.3f}): {what}; {kept}. To continue "
                   "from it with lower learning rates (or other --set settings), run: "
                   f"{self.continue_command(iteration)}")
        self.events.event("diverged", iteration=iteration, checkpoint=self.last_checkpoint,
                          **details)
        self._write_status(DIVERGED_EXIT_STATUS, message)
        raise TrainingDiverged(message)

    def continue_command(self, iteration: int) -> str:
        """A `pegan train` command that continues this run from its last good checkpoint with
        halved learning rates, as an explicit, recorded decision (--accept-config-change)."""
        o, settings = self.opts, dataclasses.asdict(self.recipe.settings)
        lowered = {k: v / 2 for k, v in settings.items()
                   if "lr" in k.split("_") and isinstance(v, float)}
        kept = {k: v for k, v in o.settings.items() if k not in lowered}
        argv = ["pegan", "train", self.spec.name, "--spec", json.dumps(self.spec.to_dict()),
                "--seed", str(o.seed), "--data", str(o.data),
                "--checkpoint-dir", str(self.ckpt_dir),
                "--out", str(o.out if o.out is not None else self.ckpt_dir / "final.pt"),
                "--gpus", str(self.ctx.world_size),
                "--keep-checkpoints", str(o.keep_checkpoints), "--log-every", str(o.log_every)]
        if o.snapshot_log is not None:
            argv += ["--snapshot-log", str(o.snapshot_log)]
        if o.selection:
            argv += ["--selection-scales", ",".join(str(s) for s, _ in o.selection),
                     "--selection-features", *[str(f) for _, f in o.selection]]
        for flag, value in (("--checkpoint-every", o.checkpoint_every), ("--device", o.device),
                            ("--workers", o.workers), ("--inception", o.inception_path)):
            if value is not None:
                argv += [flag, str(value)]
        sets = [f"{k}={v}" for k, v in kept.items()] + [f"{k}={v:.6g}" for k, v in lowered.items()]
        for pair in sets:
            argv += ["--set", pair]
        if not o.progress:
            argv.append("--no-progress")
        if not o.curve:
            argv.append("--no-curve")
        argv += ["--accept-config-change", f"diverged at iteration {iteration}"]
        return shlex.join(argv)

    def _log(self, done: int, window: dict[str, list[float]], iters: int, seconds: float) -> None:
        kimg = self.schedule.kimg(done)
        record = {"iterations": done, "kimg": round(kimg, 6),
                  "mimg_paper": kimg / self.spec.kimg_per_mimg,
                  "sec_per_iter": seconds / max(1, iters),
                  "sec_per_kimg": seconds / max(1e-9, self.schedule.kimg(iters)),
                  **{k: float(np.mean(v)) for k, v in window.items() if k != "scale"}}
        if "scale" in window:
            scales, counts = np.unique(np.asarray(window["scale"], dtype=int), return_counts=True)
            record["scales"] = {str(s): int(c) for s, c in zip(scales, counts)}
        self.train_log.append(record)

    # ------------------------------------------------------- checkpoints, snapshots
    def _checkpoint(self, done: int) -> None:
        t0 = time.time()
        rng = distributed.all_gather_object(
            {**capture_rng(), "recipe": {name: g.get_state()
                                         for name, g in self.recipe.generators().items()}})
        if self.main:
            state = {"config_hash": self.hash, "iterations": done,
                     "kimg": self.schedule.kimg(done), "recipe": self.recipe.state_dict(),
                     "rng": rng, "data": self.sampler.state(done),
                     "world_size": self.ctx.world_size, "config": self.config,
                     "dataset": self.dataset_id, "changes": self.changes,
                     "commits": self.commits, "machines": self.machines}
            path = self.store.save(state)
            self.last_checkpoint = str(path)
            self.events.event("checkpoint", file=path.name, iterations=done,
                              kimg=self.schedule.kimg(done))
        distributed.barrier()
        self.budget.observe_save(time.time() - t0)

    def snapshot_path(self, done: int) -> Path:
        return self.ckpt_dir / f"snapshot-{done:09d}.pt"

    def _write_snapshot(self, done: int) -> Path:
        """The eval generator after `done` iterations, with the commits and machines that
        trained it."""
        path = self.snapshot_path(done)
        self.recipe.write_snapshot(path, kimg=self.schedule.kimg(done),
                                   extra={"trained_by": self.commits,
                                          "trained_on": self.machines})
        return path

    def _snapshot(self, done: int) -> None:
        if self.main:
            kimg = self.schedule.kimg(done)
            path = self._write_snapshot(done)
            t0 = time.time()
            metrics = {**self._selection_metrics(), **self._curve_metrics()}
            self.metric_seconds = time.time() - t0
            record = {"iterations": done, "kimg": round(kimg, 6),
                      "mimg": kimg / self.spec.kimg_per_mimg, "snapshot": path.name, **metrics}
            self.snap_log.append(record)
            self.events.event("snapshot", **record)
        distributed.barrier()

    def _curve_metrics(self) -> dict[str, float]:
        """The learning curve's cheap points: structure and diversity (pegan.metrics.structure,
        no network) of `samples.structure` seeded samples at each training scale, against
        the training images."""
        if not self.spec.scales or not self.opts.curve:
            return {}
        from pegan.evaluate import generator_scores

        out = {}
        num = int(self.spec.samples.get("structure", self.spec.samples.get("swd", 256)))
        with preserved_rng(), torch.no_grad(), evaluating(self.recipe.eval_generator()) as G:
            for px in self.spec.scales:
                values = generator_scores(G, metric="structure", scale=px, num=num,
                                          seed=self.opts.seed, real=self.opts.data,
                                          device=self.ctx.device, batch_size=self._eval_batch)
                out.update({f"{k}@{px}": values[k] for k in CURVE_KEYS})
        return out

    @property
    def _eval_batch(self) -> int:
        return 64 if self.ctx.device.type == "cuda" else 16

    def _selection_metrics(self) -> dict[str, float]:
        if not self.opts.selection:
            return {}
        out = {}
        with preserved_rng(), torch.no_grad(), evaluating(self.recipe.eval_generator()) as G:
            for scale, features in self.opts.selection:
                out[f"fid@{scale}"] = float(self._fid(
                    G, scale=scale, real_features=str(features),
                    num=int(self.spec.samples.get("selection", 1000)), seed=self.opts.seed,
                    device=str(self.ctx.device),
                    batch_size=self._eval_batch,
                    inception_path=self.opts.inception_path))
        return out

    # ------------------------------------------------------------------- endings
    def _stop(self, done: int) -> int:
        self._checkpoint(done)
        if self.main:
            asked = self.opts.stop_after is not None and done >= self.opts.stop_after
            reason = ("--stop-after" if asked else f"signal {self.signals.received}"
                      if self.signals.received else "time budget")
            self.events.event("stopped", iterations=done, kimg=self.schedule.kimg(done),
                              reason=reason, minutes_left=self.budget.remaining_minutes())
            self._write_status(RESUME_EXIT_STATUS, f"stopped for the {reason}")
            log.warning("stopped at iteration %d (%.3f kimg) for the %s; checkpoint written, "
                        "rerun to resume (exit status %d)", done, self.schedule.kimg(done),
                        reason, RESUME_EXIT_STATUS)
        return RESUME_EXIT_STATUS

    def _verify_replicas(self) -> None:
        """Data parallel: every rank must hold bit-identical weights and optimiser states."""
        state = self.recipe.state_dict()
        digests = distributed.all_gather_object(state_digest(state))
        self.events.event("replicas", digests=digests)
        if len(set(digests)) > 1:
            parts = {f"{group}.{name}": state_digest(value)
                     for group in ("modules", "optimizers") for name, value in state[group].items()}
            parts["extra"] = state_digest(state["extra"])
            every = distributed.all_gather_object(parts)
            differ = sorted(k for k in parts if len({p[k] for p in every}) > 1)
            raise PeganError(f"data-parallel ranks diverged in {', '.join(differ)} (state "
                             f"digests {digests}); this is a bug, please report it")

    def _finish(self, done: int) -> int:
        if self.ctx.world_size > 1:
            self._verify_replicas()
        if self.main:
            final = self.snapshot_path(self.schedule.total_iterations)
            if not final.exists():           # removed by hand after the run finished
                self._write_snapshot(self.schedule.total_iterations)
            if self.opts.out is not None:
                with atomic_path(self.opts.out) as tmp:
                    shutil.copyfile(final, tmp)
            if self.opts.snapshot_log is not None:
                text = self.snap_log.path.read_text() if self.snap_log.path.exists() else ""
                write_text(self.opts.snapshot_log, text)
            self.events.event("done", iterations=done, kimg=self.schedule.kimg(done),
                              out=str(self.opts.out) if self.opts.out else None)
            self._write_status(0, "done")
        distributed.barrier()
        return 0

    def _write_status(self, status: int, message: str) -> None:
        if self.main:
            write_json(self.ckpt_dir / "exit-status.json", {"status": status, "message": message})


# ------------------------------------------------------------------------- helpers


class _Window:
    """The iterations since the last train.jsonl line: their losses as device tensors (no
    host synchronisation per iteration) and their info numbers."""

    def __init__(self) -> None:
        self.start = time.time()
        self.iterations: list[int] = []
        self.names: list[tuple[str, ...]] = []
        self.losses: list[torch.Tensor] = []
        self.info: dict[str, list[float]] = {}
        self.fetched: list[tuple[int, dict[str, float]]] = []   # already on the host

    def add(self, iteration: int, out) -> None:
        names = tuple(out.losses)
        self.iterations.append(iteration)
        self.names.append(names)
        self.losses.append(torch.stack([out.losses[k].detach().float().reshape(())
                                        for k in names]))
        for k, v in out.info.items():
            self.info.setdefault(k, []).append(v)

    def fetch(self) -> list[tuple[int, dict[str, float]]]:
        """(iteration, {loss: value}) of the iterations not fetched yet, from one
        device-to-host copy."""
        first = len(self.fetched)
        pending = self.losses[first:]
        flat = torch.cat(pending).cpu().tolist() if pending else []
        out, at = [], 0
        for iteration, names in zip(self.iterations[first:], self.names[first:]):
            out.append((iteration, dict(zip(names, flat[at:at + len(names)]))))
            at += len(names)
        self.fetched += out
        return out



def _differences(old: dict, new: dict, prefix: str = "") -> dict[str, tuple]:
    """{dotted key: (old value, new value)} of two nested configs."""
    out: dict[str, tuple] = {}
    for key in sorted(set(old) | set(new), key=str):
        a, b, name = old.get(key), new.get(key), f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out.update(_differences(a, b, f"{name}."))
        elif json.dumps(a, sort_keys=True, default=str) != json.dumps(b, sort_keys=True, default=str):
            out[name] = (a, b)
    return out


def _selection_metric():
    try:
        from pegan.evaluate import generator_fid
    except ImportError as exc:
        raise PeganError(f"the snapshot selection metric needs pegan.evaluate.generator_fid "
                         f"({exc}); pass --selection-scales none to train without it") from None
    return generator_fid


def _progress(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(total=total, initial=initial, unit="it", desc="train", disable=not enabled,
                mininterval=0.5 if tty else 30.0, dynamic_ncols=True)


def _postfix(kimg: float, sec_per_kimg: float, losses: dict[str, float], info: dict) -> str:
    parts = [f"kimg {kimg:.3f}", f"{sec_per_kimg:.1f} s/kimg"]
    parts += [f"{k} {v:.3f}" for k, v in losses.items() if k in ("D_loss", "G_loss", "R1", "PL")]
    if "scale" in info:
        parts.append(f"scale {int(info['scale'])}")
    return ", ".join(parts)
