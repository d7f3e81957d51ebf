"""The `pegan` command line. Each sub-command is a thin wrapper over a package function.

User errors (:class:`pegan.errors.PeganError`) print one line and exit non-zero, without a
traceback; `--debug` shows the traceback. So do writes the file system refuses (read-only,
permission, no space, quota): the outputs a command names (`--out`, and for `train` its
`--checkpoint-dir` and `--snapshot-log`) are checked for writability before the command runs.
A closed pipe (`pegan show t5f | head`) ends the command quietly.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Callable

from pegan.errors import PeganError
from pegan.io import check_writable, file_system_error
from pegan.provenance import CPU_KERNELS, CPU_KERNELS_ENV, use_cpu_kernels

log = logging.getLogger("pegan")

# name -> (module, function that adds the arguments, help). The module's `run(args)` runs it.
# Sub-commands live in their own modules so that `pegan validate` does not import torch.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("pegan.cli", "validate the config (schema + cross-references)"),
    "list": ("pegan.cli", "list the experiments, tables and presets of the registry"),
    "show": ("pegan.cli", "print the resolved settings of an experiment under a preset"),
    "table": ("pegan.tables", "regenerate a paper table (CSV) from evaluation results"),
    "compare": ("pegan.compare", "compare reproduced tables with the reported numbers and claims"),
    "claims": ("pegan.claims", "test the paper's claims across seeds (Welch one-sided t-tests) -> report"),
    "figure": ("pegan.figures", "regenerate a figure of the paper from code and runs"),
    "real-features": ("pegan.metrics.real_features", "Inception features of a dataset's first N images (cached FID statistics)"),
    "evaluate": ("pegan.evaluate", "evaluate a snapshot or image folder at one scale: FID, KID, P&R, SWD -> JSON"),
    "prepare-data": ("pegan.data.prepare", "write a dataset as a zip of square PNGs at one size"),
    "train": ("pegan.train.cli", "train or resume one experiment (checkpoints, snapshots)"),
    "select-snapshot": ("pegan.train.select", "pick the best snapshot before an image budget"),
    "import-mmgen": ("pegan.convert.mmgen", "convert a released MMGeneration StyleGAN2 / MS-PIE / SinGAN checkpoint into a pegan snapshot"),
}


# the arguments that name what a command writes (default: --out)
OUTPUT_ARGS: dict[str, tuple[str, ...]] = {"train": ("out", "checkpoint_dir", "snapshot_log")}
BROKEN_PIPE_STATUS = 128 + 13          # as if killed by SIGPIPE


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="config file (default: the repo's config.yaml)")
    p.add_argument("--preset", default=None, help="preset (default: the config's `preset`)")


def _load(args):
    from pegan import config as pconfig

    overrides = {"preset": args.preset} if getattr(args, "preset", None) else None
    return pconfig.load(args.config, overrides)


# ---------------------------------------------------------------- registry commands


def add_validate_args(p):
    _add_config_args(p)


def run_validate(args) -> int:
    """The schema, the cross-references, and the weight files the selected preset's metric
    protocol needs (the paper's VGG16, an Inception per FID mode): one line when one is
    missing, before any job is started."""
    from pegan import config as pconfig
    from pegan.train import check_settings

    cfg = _load(args)
    check_settings(cfg)
    pconfig.check_weights(cfg)
    settings = pconfig.metric_settings(cfg)
    print(f"config OK: {len(cfg['experiments'])} experiments, {len(cfg['tables'])} tables, "
          f"presets {', '.join(cfg['presets'])} (selected: {cfg['preset']}; FID "
          f"{settings['fid_mode']}, P&R {settings['pr_network']})")
    return 0


def add_list_args(p):
    _add_config_args(p)


def run_list(args) -> int:
    from pegan import plan

    cfg = _load(args)
    print("experiments:")
    for name, exp in cfg["experiments"].items():
        switches = ", ".join(f"{k}={v}" for k, v in exp.items() if k not in ("arch", "data"))
        print(f"  {name:<24} {exp['arch']:<9} {switches}")
    print("tables:")
    for name, table in cfg["tables"].items():
        rows = ", ".join(f"{r['id']}={r['experiment']}" for r in table["rows"])
        print(f"  {name:<14} {rows}")
    print(f"preset {cfg['preset']}: {len(plan.runs(cfg))} runs, "
          f"{len(plan.evaluations(cfg))} evaluations per seed set")
    return 0


def add_show_args(p):
    p.add_argument("experiment")
    _add_config_args(p)


def run_show(args) -> int:
    from pegan import config as pconfig

    cfg = _load(args)
    spec = pconfig.resolve(cfg, args.experiment, args.preset)
    print(json.dumps(spec.to_dict(), indent=2))
    return 0


# ----------------------------------------------------------------------------- main


def _resolve(name: str) -> tuple[Callable, Callable]:
    module = importlib.import_module(COMMANDS[name][0])
    attr = name.replace("-", "_")
    if module.__name__ == "pegan.cli":          # also under `python -m pegan.cli`
        return getattr(module, f"add_{attr}_args"), getattr(module, f"run_{attr}")
    return module.add_args, module.run


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser. Only `command`'s module is imported (the others may pull in torch);
    without a command every module is imported so that `--help` lists complete usage."""
    parser = argparse.ArgumentParser(prog="pegan", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads of torch's operators (default: torch's, one per core); "
                             "the workflow passes each job's `threads`, so that jobs side by "
                             "side do not oversubscribe the cores")
    parser.add_argument("--cpu-kernels", choices=list(CPU_KERNELS),
                        default=os.environ.get(CPU_KERNELS_ENV, "default"),
                        help=f"pin torch's and oneDNN's CPU vector kernels (default: "
                             f"${CPU_KERNELS_ENV}, which the workflow sets from its "
                             f"`cpu_kernels`, else the libraries' choice for this processor): "
                             f"other kernels round differently and train another GAN, so a "
                             f"run is reproduced with the kernels that trained it, on a "
                             f"processor of its vendor (its `trained_on` record names both)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if command in (None, name):
            _resolve(name)[0](sub_parser)
    return parser


def _command_of(argv: list[str]) -> str | None:
    """The sub-command: the first argument that names one (global options' values, as in
    `--threads 1`, are not commands)."""
    return next((a for a in argv if a in COMMANDS), None)


def check_outputs(command: str, args: argparse.Namespace) -> None:
    """Raise FileSystemError now, before any expensive work, if an output of `command` could
    not be written (its folder is created if needed)."""
    for name in OUTPUT_ARGS.get(command, ("out",)):
        value = getattr(args, name, None)
        if value is not None:
            check_writable(Path(value))


def set_threads(threads: int) -> None:
    """torch's intra-op CPU threads (``pegan --threads``)."""
    if threads < 1:
        raise PeganError(f"--threads {threads}: choose 1 or more")
    import torch

    torch.set_num_threads(threads)


def _quiet_stdout() -> None:
    """After a closed pipe: send what is left in stdout's buffer to /dev/null, so that the
    interpreter's final flush raises nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_command_of(argv)).parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    _, run = _resolve(args.command)
    try:
        use_cpu_kernels(args.cpu_kernels)
        if args.threads is not None:
            set_threads(args.threads)
        check_outputs(args.command, args)
        status = int(run(args) or 0)
        sys.stdout.flush()
        return status
    except PeganError as exc:
        if args.debug:
            raise
        print(f"pegan {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        _quiet_stdout()
        return BROKEN_PIPE_STATUS
    except OSError as exc:
        error = file_system_error(exc)
        if error is None or args.debug:
            raise
        print(f"pegan {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"pegan {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
