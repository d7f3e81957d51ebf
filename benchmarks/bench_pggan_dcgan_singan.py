"""Training-iteration time of the PGGAN, DCGAN and SinGAN recipes, per registry experiment.

For each experiment (default: every pggan/dcgan/singan experiment of the registry) under a
preset, builds the recipe, runs a few iterations at the end of its schedule (PGGAN: final
level; SinGAN: last stage) and reports the mean seconds per iteration, the parameter counts
and the output size:

    python benchmarks/bench_pggan_dcgan_singan.py [--preset smoke] [--reps 3] [--threads 1]
        [--device cpu|cuda] [--experiments swd-pggan-a,singan-spe4]

The batch is the preset's (SinGAN: 1 image, 3 D + 3 G steps per iteration).
"""

from __future__ import annotations

import argparse
import time

import torch

from pegan import config as pconfig
from pegan.train import recipe_class
from pegan.train.recipe import TrainContext

FAMILIES = ("pggan", "dcgan", "singan")


def _params(module: torch.nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def bench(spec, device: torch.device, reps: int) -> dict:
    cls = recipe_class(spec.arch)
    recipe = cls(spec, TrainContext(device=device, seed=0), cls.Settings())
    total = recipe.schedule().total_iterations
    res = recipe.data_resolution()
    real = torch.rand(spec.batch, 3, res, res, device=device) * 2 - 1
    start = total - reps - 1              # the most expensive part of the schedule
    recipe.step(real, start)              # warm-up (and stage / level set-up)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for it in range(start + 1, start + 1 + reps):
        recipe.step(real, it)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    sec = (time.perf_counter() - t0) / reps
    G = recipe.eval_generator()
    with torch.no_grad():
        if spec.arch == "singan":
            out = G(1)
        else:
            out = G(torch.randn(1, G.z_dim, device=device))
    return {"sec_per_iter": sec, "G_M": _params(G), "D_M": _params(recipe.modules()["D"]),
            "out": "x".join(map(str, out.shape[-2:])), "iterations": total}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="smoke")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--experiments", default="", help="comma-separated (default: all of them)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = pconfig.load()
    names = [n for n in args.experiments.split(",") if n] or [
        n for n, e in cfg["experiments"].items() if e["arch"] in FAMILIES]
    device = torch.device(args.device)
    print(f"preset {args.preset}, device {device}, {args.threads} thread(s), {args.reps} reps")
    print(f"{'experiment':<26} {'batch':>5} {'out':>7} {'G (M)':>8} {'D (M)':>8} "
          f"{'s/iter':>8} {'iters':>7} {'est. total':>11}")
    for name in names:
        spec = pconfig.resolve(cfg, name, args.preset)
        r = bench(spec, device, args.reps)
        est = r["sec_per_iter"] * r["iterations"]
        print(f"{name:<26} {spec.batch:>5} {r['out']:>7} {r['G_M']:>8.3f} {r['D_M']:>8.3f} "
              f"{r['sec_per_iter']:>8.3f} {r['iterations']:>7} {est:>10.0f}s")


if __name__ == "__main__":
    main()
