"""Metric throughput and memory: Inception feature extraction (images/s, clean-fid resize
included), SWD (images/s for descriptors, and the distance), peak memory of precision/recall.

SWD end to end (``--swd-sizes``): pegan's accumulators for both sets, ``finalize`` and the
distance, exactly as ``pegan evaluate`` calls them, each run in a fresh subprocess so its peak
RSS is its own; "grown" = peak minus the RSS once the two uint8 image sets exist. With
``--pggan-file PATH`` (a copy of PGGAN's ``metrics/sliced_wasserstein.py`` kept outside this
repository) the same images also go through PGGAN's numpy functions with the same work (both
sets' descriptors, then one real-vs-fake distance per level), runs alternating, and the
median ratio is printed. ``--swd-paper`` adds the paper's SWD16k at 128 px (16384 + 16384
images; about 12 GB for pegan). ``--swd-floor`` adds, per size, the distance's projection
GEMMs and row sorts timed alone on random descriptors of the same shapes: the arithmetic that
no implementation of PGGAN's protocol avoids on this machine (CPU only).

P&R runs on random Gaussian features (the memory and time of the k-NN search do not depend on
their values), each size in a fresh subprocess so its peak is its own: peak RSS on the CPU,
``torch.cuda.max_memory_allocated`` on a GPU. "working" = peak minus the memory in use once
the two feature matrices exist: the chunked k-NN working set, bounded by
``row_chunk x col_chunk`` and independent of N.

    python benchmarks/bench_metrics.py                       # defaults below
    python benchmarks/bench_metrics.py --device cuda --pr-sizes 10000,50000 --pr-dim 4096
    python benchmarks/bench_metrics.py --skip inception,pr --swd-sizes 512 --swd-sizes-res 64 \
        --pggan-file /tmp/pggan-ref/sliced_wasserstein.py --swd-repeats 3
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch


def bench_inception(n: int, res: int, device: str, batch: int) -> dict:
    from pegan.metrics.fid import FeatureExtractor

    ex = FeatureExtractor("clean", None, device, batch)
    images = torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8)
    ex.images(images[:2])                                   # warm-up (TorchScript profiling)
    t = time.perf_counter()
    ex.images(images)
    dt = time.perf_counter() - t
    return {"what": f"Inception pool3, clean resize {res}->299", "n": n, "seconds": dt,
            "images_per_s": n / dt}


def bench_swd(n: int, res: int, device: str, batch: int) -> list[dict]:
    from pegan.metrics import swd

    gen = torch.Generator().manual_seed(0)
    real = torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8, generator=gen)
    fake = torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8, generator=gen)
    acc = {r: swd.SWDDescriptors(res, 0, r, device) for r in ("real", "fake")}
    t = time.perf_counter()
    for role, images in (("real", real), ("fake", fake)):
        for i in range(0, n, batch):
            acc[role].add(images[i:i + batch])
    t_desc = time.perf_counter() - t
    t = time.perf_counter()
    swd.swd_from_descriptors(acc["real"].finalize(), acc["fake"].finalize(), acc["real"].sizes,
                             0, device)
    t_dist = time.perf_counter() - t
    levels = len(acc["real"].sizes)
    return [{"what": f"SWD descriptors {res}px ({levels} levels)", "n": 2 * n,
             "seconds": t_desc, "images_per_s": 2 * n / t_desc},
            {"what": f"SWD distance {levels} levels x 512 dirs", "n": 2 * n,
             "seconds": t_dist, "images_per_s": 2 * n / t_dist},
            {"what": "SWD total", "n": 2 * n, "seconds": t_desc + t_dist,
             "images_per_s": 2 * n / (t_desc + t_dist)}]


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024                   # kB
    except OSError:
        pass
    return None


def _reset_peak_rss() -> float:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0) and return the current RSS in MB."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _status_mb("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_rss_mb() -> float:
    return _status_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pr_child(n: int, dim: int, chunk: int, device: str) -> dict:
    """One P&R run (called in a fresh process)."""
    from pegan.metrics.pr import precision_recall

    dev = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(n, dim, generator=gen).to(dev)
    fake = (torch.randn(n, dim, generator=gen) * 1.05).to(dev)
    feat_mb = 2 * n * dim * 4 / 2**20
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 2**20
    else:
        base = _reset_peak_rss()
    t = time.perf_counter()
    out = precision_recall(real, fake, k=3, row_chunk=chunk, col_chunk=chunk, device=dev)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = _peak_rss_mb()
    return {"n": n, "dim": dim, "chunk": chunk, "device": device,
            "seconds": time.perf_counter() - t, "features_mb": feat_mb,
            "peak_mb": peak, "working_mb": peak - base, **out}


def _swd_images(n: int, res: int) -> tuple[np.ndarray, np.ndarray]:
    """The benchmark's two uint8 [n, 3, res, res] sets (the same in every process)."""
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (n, 3, res, res), dtype=np.uint8),
            rng.integers(0, 256, (n, 3, res, res), dtype=np.uint8))


def _pggan_swd(path: str, real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    """PGGAN's numpy functions on both sets (its minibatch size and RNG seed 1000)."""
    spec = importlib.util.spec_from_file_location("pggan_sliced_wasserstein", path)
    pg = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pg)
    res = real.shape[-1]
    sizes = [res >> i for i in range(8) if res >> i >= 16]
    batch = int(np.clip(8192 // res, 4, 256))
    np.random.seed(1000)
    finals = []
    for images in (real, fake):
        desc = [[] for _ in sizes]
        for i in range(0, len(images), batch):
            for lod, level in enumerate(pg.generate_laplacian_pyramid(images[i:i + batch],
                                                                      len(sizes))):
                desc[lod].append(pg.get_descriptors_for_minibatch(level, 7, 128))
        finals.append([pg.finalize_descriptors(d) for d in desc])
        del desc
    out = {str(s): 1e3 * float(pg.sliced_wasserstein(a, b, 4, 128))
           for s, a, b in zip(sizes, *finals)}
    out["avg"] = float(np.mean(list(out.values())))
    return out


def swd_child(n: int, res: int, batch: int, device: str, pggan_file: str | None) -> dict:
    """One end-to-end SWD run (called in a fresh process): pegan, or PGGAN's code if given."""
    from pegan.metrics import swd

    real, fake = _swd_images(n, res)
    base = _reset_peak_rss()
    t = time.perf_counter()
    if pggan_file:
        values = _pggan_swd(pggan_file, real, fake)
    else:
        acc = {r: swd.SWDDescriptors(res, 0, r, device) for r in ("real", "fake")}
        for role, images in (("real", real), ("fake", fake)):
            for i in range(0, n, batch):
                acc[role].add(torch.from_numpy(images[i:i + batch]))
        values = swd.swd_from_descriptors(acc["real"].finalize(), acc["fake"].finalize(),
                                          acc["real"].sizes, 0, device)
    dt = time.perf_counter() - t
    peak = _peak_rss_mb()
    return {"impl": "pggan" if pggan_file else "pegan", "n": n, "res": res, "seconds": dt,
            "images_per_s": 2 * n / dt, "peak_mb": peak, "grown_mb": peak - base,
            "load": os.getloadavg()[0], "values": values}


def swd_floor_child(n: int, res: int) -> dict:
    """The arithmetic the distance cannot avoid, timed alone on random descriptors of the
    same shapes: the projection GEMMs (2 sets x levels x 512 directions, torch, all threads)
    and the row sorts (as many rows of n x 128 values, numpy, one worker per thread)."""
    from concurrent.futures import ThreadPoolExecutor

    from pegan.metrics import swd

    levels = len(swd.pyramid_sizes(res))
    p, dim = n * swd.PATCHES_PER_IMAGE, 3 * swd.PATCH_SIZE ** 2
    m, k = swd.REPEATS * swd.DIRECTIONS, 64
    desc = torch.randn(p, dim)
    dirs = torch.randn(m, dim)
    out = torch.empty(k, p)
    t = time.perf_counter()
    for _ in range(2 * levels):
        for j in range(0, m, k):
            torch.mm(dirs[j:j + k], desc.T, out=out)
    gemm = time.perf_counter() - t
    projections = out.numpy().copy()                     # the last GEMM's, unsorted
    rows = out.numpy()
    workers = torch.get_num_threads()
    bounds = np.linspace(0, k, workers + 1).astype(int)
    sort = 0.0
    with ThreadPoolExecutor(workers) as pool:
        for _ in range(2 * levels * m // k):
            rows[:] = projections                        # unsorted again (not timed)
            t = time.perf_counter()
            list(pool.map(lambda r: rows[r[0]:r[1]].sort(axis=1), zip(bounds[:-1], bounds[1:])))
            sort += time.perf_counter() - t
    return {"n": n, "res": res, "gemm": gemm, "sort": sort}


def _child(call: str, threads: int = 0) -> dict:
    """Evaluate ``b.<call>`` (this module as ``b``) in a fresh Python process, so that its
    peak RSS is its own; `threads` > 0 sets torch's threads there first."""
    here = str(Path(__file__).resolve().parent)
    code = (f"import json, sys, torch; sys.path.insert(0, {here!r}); "
            f"import bench_metrics as b; {threads} and torch.set_num_threads({threads}); "
            f"print(json.dumps({call}))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def bench_swd_runs(n: int, res: int, batch: int, device: str, pggan_file: str | None,
                   repeats: int, threads: int) -> list[dict]:
    """`repeats` rounds of one fresh process per implementation, alternating."""
    return [_child(f"b.swd_child({n}, {res}, {batch}, {device!r}, {path!r})", threads)
            for _ in range(repeats)
            for path in ([None, pggan_file] if pggan_file else [None])]


def print_swd_runs(rows: list[dict]) -> None:
    """Median seconds, images/s and peak RSS per implementation; pggan/pegan time ratio."""
    med = {}
    for impl in ("pegan", "pggan"):
        mine = [r for r in rows if r["impl"] == impl]
        if not mine:
            continue
        sec = statistics.median(r["seconds"] for r in mine)
        med[impl] = sec
        r0 = mine[0]
        print(f"{impl:<6} {r0['n']:>6}+{r0['n']:<6} {r0['res']:>4}px {sec:>9.2f} "
              f"{2 * r0['n'] / sec:>10.1f} {max(r['peak_mb'] for r in mine):>9.0f} "
              f"{max(r['grown_mb'] for r in mine):>9.0f}  runs {len(mine)}, load "
              f"{min(r['load'] for r in mine):.1f}-{max(r['load'] for r in mine):.1f}, avg "
              f"{r0['values']['avg']:.4f}")
    if len(med) == 2:
        print(f"       PGGAN / pegan time (medians): {med['pggan'] / med['pegan']:.1f}x")


def bench_pr(n: int, dim: int, chunk: int, device: str) -> dict:
    return _child(f"b.pr_child({n}, {dim}, {chunk}, {device!r})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    p.add_argument("--inception-images", type=int, default=32)
    p.add_argument("--inception-res", type=int, default=64)
    p.add_argument("--swd-images", type=int, default=256)
    p.add_argument("--swd-res", type=int, default=128)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--swd-sizes", default="512",
                   help="comma list of images per set for the end-to-end SWD runs ('' skips)")
    p.add_argument("--swd-sizes-res", type=int, default=64, help="their resolution")
    p.add_argument("--swd-paper", action="store_true",
                   help="also the paper's SWD16k: 16384 + 16384 images at 128 px (slow, ~10 GB)")
    p.add_argument("--swd-repeats", type=int, default=3)
    p.add_argument("--pggan-paper", action="store_true",
                   help="with --swd-paper and --pggan-file, run PGGAN's code at 16384 too "
                        "(about 15-20 GB)")
    p.add_argument("--swd-batch", type=int, default=64, help="pegan's batch (evaluate's)")
    p.add_argument("--swd-floor", action="store_true",
                   help="also time the distance's GEMMs and sorts alone (what no code avoids)")
    p.add_argument("--pggan-file", default=None,
                   help="PGGAN's metrics/sliced_wasserstein.py, outside this repo, for the ratio")
    p.add_argument("--pr-sizes", default="10000,50000")
    p.add_argument("--pr-dim", type=int, default=4096, help="feature size (VGG16 fc2: 4096)")
    p.add_argument("--pr-chunk", type=int, default=10000, help="row and column chunk")
    p.add_argument("--skip", default="", help="comma list of inception,swd,pr to skip")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    skip = set(filter(None, args.skip.split(",")))
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, torch {torch.__version__}")

    rows = []
    if "inception" not in skip:
        rows.append(bench_inception(args.inception_images, args.inception_res, args.device,
                                    args.batch))
    if "swd" not in skip:
        rows += bench_swd(args.swd_images, args.swd_res, args.device, args.batch)
    if rows:
        print(f"\n{'throughput':<44} {'images':>7} {'seconds':>9} {'images/s':>10}")
        for r in rows:
            print(f"{r['what']:<44} {r['n']:>7} {r['seconds']:>9.2f} {r['images_per_s']:>10.1f}")

    swd_cases = [(int(n), args.swd_sizes_res) for n in args.swd_sizes.split(",") if n]
    if args.swd_paper:
        swd_cases.append((16384, 128))
    if "swd" not in skip and swd_cases:
        print(f"\nSWD end to end, one process per run (peak/grown = RSS MB):\n"
              f"{'impl':<6} {'images':>13} {'res':>6} {'seconds':>9} {'images/s':>10} "
              f"{'peak MB':>9} {'grown MB':>9}")
        for n, res in swd_cases:
            paper = (n, res) == (16384, 128)
            pggan = args.pggan_file if not paper or args.pggan_paper else None
            print_swd_runs(bench_swd_runs(n, res, args.swd_batch, args.device, pggan,
                                          1 if paper else args.swd_repeats, args.threads))
            if args.swd_floor and args.device == "cpu":
                f = _child(f"b.swd_floor_child({n}, {res})", args.threads)
                print(f"floor  {n:>6}+{n:<6} {res:>4}px {f['gemm'] + f['sort']:>9.2f}  "
                      f"(projection GEMMs {f['gemm']:.2f} s + row sorts {f['sort']:.2f} s "
                      f"alone, on random descriptors)")

    if "pr" not in skip:
        print(f"\nP&R (k=3) on random features, dim {args.pr_dim}, chunk {args.pr_chunk} x "
              f"{args.pr_chunk}:")
        print(f"{'N real = N fake':>15} {'features MB':>12} {'peak MB':>9} {'working MB':>11} "
              f"{'seconds':>9}")
        for n in map(int, args.pr_sizes.split(",")):
            r = bench_pr(n, args.pr_dim, args.pr_chunk, args.device)
            above = r["working_mb"]
            print(f"{n:>15} {r['features_mb']:>12.0f} {r['peak_mb']:>9.0f} {above:>11.0f} "
                  f"{r['seconds']:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
