"""Forward and forward+backward time per image of the StyleGAN2 / MS-PIE G and D.

Builds the models of registry experiments (default: t2a and t5f at the smoke size, t2a and
t5f at 256 px, C2) and times them on the CPU and, when present, on CUDA:

    python benchmarks/bench_models.py [--devices cpu,cuda] [--reps 3] [--threads N]

Prints one row per (device, experiment, preset, output size) with milliseconds per image.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import torch

from pegan import config as pconfig
from pegan.models import build_models

CASES = [  # (experiment, preset, output size in paper pixels, batch on CPU, batch on CUDA);
    # batch 0 skips the device (512 px takes minutes per step on a CPU)
    ("t2a", "smoke", 256, 8, 32),
    ("t5f", "smoke", 512, 8, 32),
    ("t5k", "smoke", 512, 8, 32),
    ("t2a", "paper", 256, 2, 8),
    ("t5f", "paper", 256, 2, 8),
    ("t5k", "paper", 256, 2, 8),
    ("t5f", "paper", 512, 0, 4),
]


def _timed(fn: Callable[[], None], device: torch.device, reps: int) -> float:
    fn()  # warm-up (allocations, cuDNN / oneDNN kernel selection)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / reps


def bench_case(cfg: dict, name: str, preset: str, paper_px: int, batch: int,
               device: torch.device, reps: int) -> dict:
    spec = pconfig.resolve(cfg, name, preset)
    px = spec.to_preset_px(paper_px)
    torch.manual_seed(0)
    G, D, _, _ = build_models(spec)
    G, D = G.to(device), D.to(device)
    z = torch.randn(batch, G.z_dim, device=device)
    real = torch.randn(batch, 3, px, px, device=device)

    def g_fwd():
        with torch.no_grad():
            G(z, px)

    def g_fwd_bwd():
        G.zero_grad(set_to_none=True)
        G(z, px).square().mean().backward()

    def d_fwd():
        with torch.no_grad():
            D(real)

    def d_fwd_bwd():
        D.zero_grad(set_to_none=True)
        D(real).mean().backward()

    row = {"device": device.type, "experiment": name, "preset": preset, "size": px,
           "batch": batch, "G_params_M": sum(p.numel() for p in G.parameters()) / 1e6,
           "D_params_M": sum(p.numel() for p in D.parameters()) / 1e6}
    for key, fn in [("G_fwd", g_fwd), ("G_fwd_bwd", g_fwd_bwd), ("D_fwd", d_fwd),
                    ("D_fwd_bwd", d_fwd_bwd)]:
        row[key] = 1000 * _timed(fn, device, reps) / batch
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", default="auto", help="cpu,cuda or auto (cpu + cuda if present)")
    p.add_argument("--reps", type=int, default=3,
                   help="timed repetitions per measurement (x5 for smoke-sized models)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    p.add_argument("--only", default="", help="comma-separated experiment names to keep")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = (["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
               if args.devices == "auto" else args.devices.split(","))
    cfg = pconfig.load()
    keep = set(filter(None, args.only.split(",")))
    header = (f"{'device':<6} {'experiment':<9} {'preset':<6} {'size':>5} {'batch':>5} "
              f"{'G Mparam':>8} {'D Mparam':>8} {'G fwd':>9} {'G f+b':>9} {'D fwd':>9} "
              f"{'D f+b':>9}   (ms per image)")
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}"
          + (f", {torch.cuda.get_device_name(0)}" if "cuda" in devices else ""))
    print(header)
    print("-" * len(header))
    for dev in devices:
        device = torch.device(dev)
        for name, preset, paper_px, cpu_batch, cuda_batch in CASES:
            if keep and name not in keep:
                continue
            batch = cuda_batch if device.type == "cuda" else cpu_batch
            if not batch:
                continue
            reps = args.reps * (5 if preset == "smoke" else 1)  # cheap cases: more repetitions
            r = bench_case(cfg, name, preset, paper_px, batch, device, reps)
            print(f"{r['device']:<6} {r['experiment']:<9} {r['preset']:<6} {r['size']:>5} "
                  f"{r['batch']:>5} {r['G_params_M']:>8.2f} {r['D_params_M']:>8.2f} "
                  f"{r['G_fwd']:>9.1f} {r['G_fwd_bwd']:>9.1f} {r['D_fwd']:>9.1f} "
                  f"{r['D_fwd_bwd']:>9.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
