"""Training speed (sec/kimg) of the StyleGAN2 / MS-PIE recipe.

CPU: the smoke configurations (tiny widths, 32 px base). CUDA (when a GPU is present): a
256-px C2 configuration at full width (Table 2 (a), per-GPU batch 3 as the official b3x8 runs)
and the MS-PIE config-f at 256/384/512.

Each row times `--iters` iterations after `--warmup` ones (the average includes one lazy R1 step
per 16 iterations and one path-length step per 4, as in training), with random real batches.

    python benchmarks/bench_train.py [--iters 16] [--threads 1] [--only all|cpu|cuda]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from pegan import config as pconfig
from pegan.train.recipe import TrainContext
from pegan.train.stylegan2 import StyleGAN2Recipe, StyleGAN2Settings

CPU_EXPERIMENTS = ["t2a", "t2c", "t2e", "t5f", "t5k"]
CUDA_EXPERIMENTS = ["t2a", "t5f"]


def bench(spec, device: torch.device, iters: int, warmup: int) -> dict:
    torch.manual_seed(0)
    recipe = StyleGAN2Recipe(spec, TrainContext(device, 0), StyleGAN2Settings())
    res = max(spec.scales)
    real = torch.rand(spec.batch, 3, res, res, device=device) * 2 - 1
    scales = []
    for i in range(warmup + iters):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        out = recipe.step(real, i)
        scales.append(int(out.info["scale"]))
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / iters
    return {"experiment": spec.name, "device": device.type, "px": "/".join(map(str, spec.scales)),
            "batch": spec.batch, "sec_per_iter": seconds,
            "sec_per_kimg": seconds / (spec.batch / 1000.0),
            "params_G": sum(p.numel() for p in recipe.G.parameters())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--only", choices=("all", "cpu", "cuda"), default="all",
                        help="rows to run: the CPU smoke rows, the CUDA paper rows (256-px C2 "
                             "and MS-PIE config-f, per-GPU batch 3), or both (CUDA when present)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.only == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_train: error: --only cuda, but torch sees no CUDA GPU")
    cfg = pconfig.load()
    rows = []
    for name in CPU_EXPERIMENTS if args.only != "cuda" else []:
        rows.append(bench(pconfig.resolve(cfg, name, "smoke"), torch.device("cpu"),
                          args.iters, args.warmup))
    if torch.cuda.is_available() and args.only != "cpu":
        for name in CUDA_EXPERIMENTS:
            spec = pconfig.resolve(cfg, name, "paper")
            spec = dataclasses.replace(spec, batch=3)            # one GPU of the b3x8 runs
            rows.append(bench(spec, torch.device("cuda"), args.iters, args.warmup))
    print(f"threads {torch.get_num_threads()}, {args.iters} timed iterations per row")
    header = f"{'experiment':<10} {'device':<6} {'px':<12} {'batch':>5} {'G params':>10} " \
             f"{'s/iter':>8} {'s/kimg':>9}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['experiment']:<10} {r['device']:<6} {r['px']:<12} {r['batch']:>5} "
              f"{r['params_G']:>10,} {r['sec_per_iter']:>8.3f} {r['sec_per_kimg']:>9.1f}")


if __name__ == "__main__":
    main()
