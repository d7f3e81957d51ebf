"""Which pegan code produced a file (the git commit of the checkout pegan runs from), and on
which machine (processor, torch and its CPU kernels: they decide a run's numbers too)."""

from __future__ import annotations

import logging
import os
import platform
import subprocess
from pathlib import Path

from pegan.errors import PeganError

UNRECORDED = "unrecorded"      # a run (or attempt) from before pegan recorded its commit

# The CPU kernels pegan may pin (`pegan --cpu-kernels`, the workflow's `cpu_kernels`): name ->
# (torch's ATEN_CPU_CAPABILITY, oneDNN's ONEDNN_MAX_CPU_ISA). Other kernels round differently
# and train another GAN, so a run is reproduced with the kernels of the machine that trained
# it, on a processor of its vendor (MKL's code path differs between vendors; README, "The
# kernels are not the whole machine"). `default` leaves the choice (and those
# variables, when set) to the libraries.
CPU_KERNELS = {"default": None, "avx2": ("avx2", "AVX2"), "avx512": ("avx512", "AVX512_CORE")}
# ... and the variable that makes one of them the default of `pegan --cpu-kernels` (the
# workflow sets it from its config for every job)
CPU_KERNELS_ENV = "PEGAN_CPU_KERNELS"

# The code a run's numbers depend on, as git pathspecs: what trains, samples and measures, and
# the wiring and settings that call it. The claims report and its rule only read the numbers.
RUN_CODE = ("pegan", "workflow", "Snakefile", "config.yaml", "pyproject.toml",
            ":(exclude)pegan/claims", ":(exclude)workflow/rules/claims.smk")


def git_commit(root: str | Path | None = None) -> str:
    """`<sha>` (with `-dirty` when tracked files changed), or 'unknown' outside a checkout."""
    root = Path(root) if root else Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "-uno"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def changed_between(commits: list[str], root: str | Path | None = None,
                    pathspecs: tuple[str, ...] = RUN_CODE) -> list[str]:
    """The files of `pathspecs` that differ between the first commit and any later one.

    Raises ValueError naming the commit when the answer is unknowable: a commit recorded as
    `-dirty` (uncommitted changes), unrecorded, or missing from this checkout."""
    root = Path(root) if root else Path(__file__).resolve().parents[1]
    for commit in commits:
        if commit.endswith("-dirty") or commit == UNRECORDED:
            raise ValueError(f"{short(commit)} ran with code git does not hold")
    changed: set[str] = set()
    for commit in commits[1:]:
        try:
            out = subprocess.run(["git", "-C", str(root), "diff", "--name-only", commits[0],
                                  commit, "--", *pathspecs], capture_output=True, text=True,
                                 timeout=30, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            raise ValueError(f"{short(commits[0])}..{short(commit)} is not in this checkout "
                             f"({root})") from None
        changed.update(line for line in out.splitlines() if line)
    return sorted(changed)


def short(commit: str) -> str:
    """A commit as people quote it: 10 hex digits, `-dirty` kept."""
    sha, dirty, _ = commit.partition("-dirty")
    return commit if len(sha) != 40 else sha[:10] + ("-dirty" if dirty else "")


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The processor's model name with its family and model numbers (Linux's /proc/cpuinfo:
    a virtual machine's name may be as vague as "Intel(R) Xeon(R) Processor", the numbers
    tell the generation), else what `platform` knows."""
    fields: dict[str, str] = {}
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            key, _, value = line.partition(":")
            if not key.strip() and fields:
                break                                    # the first processor's block only
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor()
    if fields.get("cpu family") and fields.get("model"):
        return f"{name}, family {fields['cpu family']} model {fields['model']}"
    return name


def use_cpu_kernels(name: str) -> None:
    """Pin torch's and oneDNN's CPU kernels to `name` (a key of :data:`CPU_KERNELS`) in this
    process and the processes it starts. torch chooses its kernels at its first operator, so
    this runs before any; that torch took them is checked (oneDNN's cap cannot be read back)."""
    if name not in CPU_KERNELS:
        raise PeganError(f"CPU kernels {name!r} (--cpu-kernels, ${CPU_KERNELS_ENV}): choose "
                         f"one of {', '.join(CPU_KERNELS)}")
    if CPU_KERNELS[name] is None:
        return
    aten, onednn = CPU_KERNELS[name]
    os.environ["ATEN_CPU_CAPABILITY"] = aten
    os.environ["ONEDNN_MAX_CPU_ISA"] = onednn
    import torch

    chosen = torch.backends.cpu.get_cpu_capability()
    if chosen.lower() != aten:
        raise PeganError(f"--cpu-kernels {name}: torch runs {chosen} kernels here (this "
                         f"processor has no {aten.upper()}, or torch chose before pegan could "
                         f"pin them); choose another of {', '.join(CPU_KERNELS)}")
    logging.getLogger(__name__).info("CPU kernels pinned to %s: torch %s, oneDNN at most %s",
                                     name, chosen, onednn)


def machine() -> str:
    """The machine, as far as it decides a run's numbers: the same code and seed train a
    different GAN on another processor (other vector kernels, other rounding, and a GAN's
    training amplifies the difference), so the CPU model and the kernels torch chose are in."""
    model = cpu_model()
    kernels = ""
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
        isa = os.environ.get("ONEDNN_MAX_CPU_ISA")          # oneDNN's own cap, if set
        cbwr = os.environ.get("MKL_CBWR")                   # MKL's code path, if pinned
        kernels = (f", torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}"
                   f"{f', oneDNN at most {isa}' if isa else ''}"
                   f"{f', MKL_CBWR={cbwr}' if cbwr else ''})")
    except Exception:                                        # noqa: BLE001 - informative only
        gpu = "GPU unknown"
    return (f"{platform.system()} {platform.machine()}{f' ({model})' if model else ''}, "
            f"{os.cpu_count()} CPU cores, {gpu}{kernels}")
