"""CPU against CUDA on the same weights: how far apart are pegan's networks and metrics?

For one experiment of each family (StyleGAN2 with and without padding, CSG, SPE, MS-PIE at
each of its scales, PGGAN, DCGAN, SinGAN) at a CPU preset, builds G and D on the CPU from one
seed, copies them to CUDA and runs both on the same inputs: the same z, the stored (fixed)
noise for StyleGAN2, a CPU generator for SinGAN's noise. Prints, per output, the largest
absolute difference and that difference over the output's largest magnitude, with cuDNN's
TF32 convolutions off (float32 throughout) and then as torch sets them by default. Then the
learning-curve metric (structure) of a PGGAN generator, whose samples have no injected noise,
on each device.

    python benchmarks/cuda_agreement.py [--preset mini] [--batch 8] [--real IMAGES.zip]

Needs a CUDA GPU (exit status 2 without one; ``--device cpu`` compares the CPU with itself,
a check of the script: every gap is 0). Run by benchmarks/gpu_check.sh.
"""

from __future__ import annotations

import argparse
import copy
import sys

import torch

from pegan import config as pconfig
from pegan.evaluate import generator_scores
from pegan.models import build_models

CASES = ["t2a", "t2c", "t2d", "t2e", "t5f", "swd-pggan-b", "swd-pggan-c", "swd-dcgan-b",
         "singan-no-pad"]


def _gap(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    a, b = a.double().cpu(), b.double().cpu()
    diff = float((a - b).abs().max())
    return diff, diff / max(float(a.abs().max()), 1e-30)


def _render(G, spec, px: int, z: torch.Tensor, device: torch.device) -> torch.Tensor:
    """G's output at `px` on `device` from inputs drawn on the CPU."""
    if spec.arch == "singan":
        return G(len(z), generator=torch.Generator().manual_seed(0))
    if spec.arch == "stylegan2":
        noise = [n.to(device) for n in G.fixed_noise(G.cells(px))]
        return G(z.to(device), px, noise=noise)
    return G(z.to(device), px)


@torch.no_grad()
def compare(cfg: dict, name: str, preset: str, batch: int, device: torch.device) -> list[dict]:
    spec = pconfig.resolve(cfg, name, preset)
    torch.manual_seed(0)
    G, D, _, _ = build_models(spec)
    G, D = G.eval(), D.eval()
    Gc, Dc = copy.deepcopy(G).to(device), copy.deepcopy(D).to(device)
    z = torch.randn(batch, getattr(G, "z_dim", 1), generator=torch.Generator().manual_seed(1))
    rows = []
    for px in ([None] if spec.arch == "singan" else spec.scales or [spec.resolution]):
        cpu, gpu = _render(G, spec, px, z, torch.device("cpu")), _render(Gc, spec, px, z, device)
        px = px or cpu.shape[-1]
        rows.append({"case": f"{name} G", "px": px, "gap": _gap(cpu, gpu)})
        if spec.arch != "singan":
            rows.append({"case": f"{name} D", "px": px,
                         "gap": _gap(D(cpu.float()), Dc(cpu.float().to(device)))})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--real", default=None,
                        help="real images (zip) for the structure metric; none: skip it")
    parser.add_argument("--device", default="cuda", help="the device compared with the CPU")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("cuda_agreement: error: no CUDA GPU visible to torch", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    cfg = pconfig.load(args.config)
    default_tf32 = torch.backends.cudnn.allow_tf32
    print(f"preset {args.preset}, batch {args.batch}, {name}, "
          f"torch {torch.__version__}; cudnn.allow_tf32 by default: {default_tf32}, "
          f"matmul.allow_tf32: {torch.backends.cuda.matmul.allow_tf32}")
    results = {}
    for tf32 in (False, True):
        torch.backends.cudnn.allow_tf32 = tf32
        for name in CASES:
            for row in compare(cfg, name, args.preset, args.batch, device):
                results.setdefault((row["case"], row["px"]), {})[tf32] = row["gap"]
    torch.backends.cudnn.allow_tf32 = default_tf32
    print(f"{'output':24} {'px':>4}  {'max |cpu-cuda|, fp32':>22}  {'relative':>9}  "
          f"{'with TF32 convs':>16}  {'relative':>9}")
    for (case, px), gaps in results.items():
        print(f"{case:24} {px:4d}  {gaps[False][0]:22.3e}  {gaps[False][1]:9.2e}  "
              f"{gaps[True][0]:16.3e}  {gaps[True][1]:9.2e}")

    if args.real is None:
        return 0
    spec = pconfig.resolve(cfg, "swd-pggan-c", args.preset)
    torch.manual_seed(0)
    G = build_models(spec)[0].eval()
    scores = {dev: generator_scores(G.to(dev), metric="structure", scale=spec.resolution,
                                    num=64, seed=0, real=args.real, device=dev)
              for dev in ("cpu", args.device)}
    for key in scores["cpu"]:
        print(f"structure metric, swd-pggan-c untrained, {key}: cpu {scores['cpu'][key]:.6f}, "
              f"{device.type} {scores[args.device][key]:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
