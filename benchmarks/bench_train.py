"""Training speed: the recipe step alone, and the whole training loop per family at a preset.

``--only step``: seconds per iteration of the StyleGAN2 / MS-PIE recipe step at the smoke
configurations (CPU) and, when a GPU is present (``--only cuda``: only these), a 256-px C2
configuration at full width (Table 2 (a), per-GPU batch 3 as the official b3x8 runs) and the
MS-PIE config-f at 256/384/512. Each row times `--iters` iterations after `--warmup` ones (one lazy R1 step per
16 iterations and one path-length step per 4 included).

``--only loop``: images per second of ``pegan train`` itself (data loading, the NaN guard, the
logs: everything but snapshots) for one experiment per family at ``--preset`` (default mini),
in two thread layouts on the machine's cores: one job with all threads ("1x2" on 2 cores) and
one single-thread job per core side by side ("2x1"; the figure is their sum). Each job runs
``--loop-iters`` iterations after ``--loop-warmup`` and reads the loop's own timings
(train.jsonl). PGGAN is timed at its last level (its growth settings shrunk to start there);
SinGAN at its first stage (images/s there = iterations/s x 1). ``--code DIR`` times another
checkout's package and config.yaml (e.g. ``git worktree add /tmp/before <rev>``), so that
before/after figures come from one script, side by side.

    python benchmarks/bench_train.py [--only all|step|loop|cuda] [--preset mini] [--batch N]
                                     [--code DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CPU_EXPERIMENTS = ["t2a", "t2c", "t2e", "t5f", "t5k"]
CUDA_EXPERIMENTS = ["t2a", "t5f"]
LOOP_EXPERIMENTS = ["t2b", "t5f", "swd-pggan-a", "swd-dcgan-a", "singan-zero-pad"]
# PGGAN at its last level from the first iteration (paper Mimg of the growth phases)
PGGAN_AT_LAST_LEVEL = {"first_level_mimg": 1e-9, "level_mimg": 2e-9, "transition_mimg": 1e-9}


# ---------------------------------------------------------------------- the recipe step


def bench_step(spec, device, iters: int, warmup: int) -> dict:
    import torch

    from pegan.train.recipe import TrainContext
    from pegan.train.stylegan2 import StyleGAN2Recipe, StyleGAN2Settings

    torch.manual_seed(0)
    recipe = StyleGAN2Recipe(spec, TrainContext(device, 0), StyleGAN2Settings())
    res = max(spec.scales)
    real = torch.rand(spec.batch, 3, res, res, device=device) * 2 - 1
    for i in range(warmup + iters):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        recipe.step(real, i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / iters
    return {"experiment": spec.name, "device": device.type, "px": "/".join(map(str, spec.scales)),
            "batch": spec.batch, "sec_per_iter": seconds,
            "sec_per_kimg": seconds / (spec.batch / 1000.0),
            "params_G": sum(p.numel() for p in recipe.G.parameters())}


def step_rows(args) -> None:
    import torch

    from pegan import config as pconfig

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.only == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_train: error: --only cuda, but torch sees no CUDA GPU")
    cfg = pconfig.load()
    rows = []
    if args.only in ("all", "step"):
        for name in CPU_EXPERIMENTS:
            rows.append(bench_step(pconfig.resolve(cfg, name, "smoke"), torch.device("cpu"),
                                   args.iters, args.warmup))
    if torch.cuda.is_available() and args.only in ("all", "cuda"):
        for name in CUDA_EXPERIMENTS:
            spec = dataclasses.replace(pconfig.resolve(cfg, name, "paper"), batch=3)
            rows.append(bench_step(spec, torch.device("cuda"), args.iters, args.warmup))
    print(f"recipe step: threads {torch.get_num_threads()}, {args.iters} timed iterations per row")
    header = (f"{'experiment':<10} {'device':<6} {'px':<12} {'batch':>5} {'G params':>10} "
              f"{'s/iter':>8} {'s/kimg':>9}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['experiment']:<10} {r['device']:<6} {r['px']:<12} {r['batch']:>5} "
              f"{r['params_G']:>10,} {r['sec_per_iter']:>8.3f} {r['sec_per_kimg']:>9.1f}")


# ---------------------------------------------------------------------- the training loop


def loop_job(experiment: str, preset: str, iters: int, warmup: int,
             batch: int | None = None) -> dict:
    """One `pegan train` run of `iters` + `warmup` iterations (this process, its threads);
    the images per second of the timed windows, from train.jsonl."""
    from pegan import config as pconfig
    from pegan.data.prepare import prepare
    from pegan.train.loop import RunOptions, train

    cfg = pconfig.load()
    spec = pconfig.resolve(cfg, experiment, preset)
    if batch and spec.arch != "singan":
        spec = dataclasses.replace(spec, batch=batch)
    settings = dict(PGGAN_AT_LAST_LEVEL) if spec.arch == "pggan" else {}
    with tempfile.TemporaryDirectory() as tmp:
        res = spec.data_resolution
        data = Path(tmp) / "data.zip"
        prepare(spec.dataset, spec.dataset_spec, resolution=res,
                num=cfg["presets"][preset]["num_images"], out=data)
        ckpt = Path(tmp) / "ckpt"
        options = RunOptions(checkpoint_dir=ckpt, data=data, seed=0, stop_after=warmup + iters,
                             log_every=warmup, checkpoint_every=10 ** 9, settings=settings,
                             progress=False)
        train(spec, options)
        lines = [json.loads(x) for x in (ckpt / "train.jsonl").read_text().splitlines()]
    timed = [x for x in lines if x["iterations"] > warmup]
    seconds = sum(x["sec_per_iter"] * warmup for x in timed)
    batch = 1 if spec.arch == "singan" else spec.batch
    return {"experiment": experiment, "arch": spec.arch, "batch": batch,
            "img_per_s": batch * warmup * len(timed) / seconds}


def _spawn(args, experiment: str, threads: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if args.code:
        env["PYTHONPATH"] = str(Path(args.code).resolve())
    cwd = Path(args.code).resolve() if args.code else Path(__file__).resolve().parents[1]
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--job", experiment,
                             "--preset", args.preset, "--loop-iters", str(args.loop_iters),
                             "--loop-warmup", str(args.loop_warmup),
                             *(["--batch", str(args.batch)] if args.batch else [])],
                            env=env, cwd=cwd, stdout=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"bench_train: error: a timing job failed (exit {proc.returncode})")
    return json.loads(out.strip().splitlines()[-1])


def loop_rows(args) -> None:
    cores = args.cores or os.cpu_count() or 1
    code = args.code or "this checkout"
    print(f"training loop at preset {args.preset} ({code}): {args.loop_iters} timed iterations "
          f"after {args.loop_warmup}; {cores} cores")
    header = (f"{'experiment':<16} {'arch':<9} {'batch':>5} {'img/s 1x' + str(cores):>11} "
              f"{'img/s ' + str(cores) + 'x1':>11}")
    print(header)
    print("-" * len(header))
    for experiment in args.experiments or LOOP_EXPERIMENTS:
        one = _result(_spawn(args, experiment, cores))
        side = [_spawn(args, experiment, 1) for _ in range(cores)]
        many = [_result(p) for p in side]
        print(f"{experiment:<16} {one['arch']:<9} {one['batch']:>5} {one['img_per_s']:>11.1f} "
              f"{sum(r['img_per_s'] for r in many):>11.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("all", "step", "loop", "cuda"), default="all")
    parser.add_argument("--iters", type=int, default=16, help="recipe step: timed iterations")
    parser.add_argument("--warmup", type=int, default=2, help="recipe step: warm-up iterations")
    parser.add_argument("--threads", type=int, default=None, help="recipe step: CPU threads")
    parser.add_argument("--preset", default="mini", help="training loop: the preset")
    parser.add_argument("--experiments", nargs="*", help=f"loop rows (default {LOOP_EXPERIMENTS})")
    parser.add_argument("--loop-iters", type=int, default=40)
    parser.add_argument("--loop-warmup", type=int, default=10,
                        help="untimed iterations (also the timing window)")
    parser.add_argument("--batch", type=int, default=None,
                        help="loop rows: this batch instead of the preset's (not SinGAN)")
    parser.add_argument("--cores", type=int, default=None, help="default: os.cpu_count()")
    parser.add_argument("--code", default=None,
                        help="time the pegan package and config.yaml of this checkout")
    parser.add_argument("--job", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        print(json.dumps(loop_job(args.job, args.preset, args.loop_iters, args.loop_warmup,
                                  args.batch)))
        return
    if args.loop_iters % args.loop_warmup:
        raise SystemExit("bench_train: error: --loop-iters must be a multiple of --loop-warmup")
    if args.only in ("all", "step", "cuda"):
        step_rows(args)
    if args.only in ("all", "loop"):
        loop_rows(args)


if __name__ == "__main__":
    main()
