"""Faults a cluster user meets (issue 16): config mistakes through Snakemake, two trainers on one
run, a divergence to recover from, other data on resume, refused writes, stale temp files, a
closed pipe. Each prints one line and exits non-zero; nothing is lost."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from pegan import config as pconfig
from pegan.data.prepare import fingerprint, prepare
from pegan.errors import PeganError
from pegan.train import stylegan2
from pegan.train.budget import RESUME_EXIT_STATUS
from pegan.train.checkpoint import CheckpointStore, nonfinite_entries
from pegan.train.logs import read_jsonl
from pegan.train.loop import RunOptions, TrainingDiverged, train
from pegan.train.runlock import LOCK_NAME, RunLock, RunLocked
from workflow_slice import job_env, snakemake_exe

ROOT = pconfig.REPO_ROOT
PEGAN = [sys.executable, "-m", "pegan.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _pegan(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*PEGAN, *args], capture_output=True, text=True, timeout=timeout,
                          env=ENV)


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    """The error line of a failed command; asserts there is no traceback."""
    assert result.returncode != 0, result.stdout[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


def _spec(cfg, name="t2a", iterations=6):
    spec = pconfig.resolve(cfg, name, "smoke")
    kimg = iterations * spec.batch / 1000
    return dataclasses.replace(spec, total_kimg=kimg, snapshot_every_kimg=kimg)


def _opts(ckpt, data, **kw):
    return RunOptions(checkpoint_dir=ckpt, data=data, seed=3, progress=False, **kw)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults-data")
    paths = {"a": root / "syn-a.zip", "b": root / "syn-b.zip"}
    prepare("syn", {"kind": "synthetic"}, resolution=32, num=8, out=paths["a"], seed=0)
    prepare("syn", {"kind": "synthetic"}, resolution=32, num=8, out=paths["b"], seed=1)
    return paths


@pytest.fixture
def mount_tmpfs(tmp_path):
    """mount(size, read_only) -> a fresh tmpfs folder; unmounted at the end of the test."""
    mounted: list[Path] = []

    def mount(size: str = "1m", read_only: bool = False) -> Path:
        target = tmp_path / f"mnt{len(mounted)}"
        target.mkdir()
        opts = f"size={size}" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(target)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): "
                        f"{done.stderr.strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in reversed(mounted):
        subprocess.run(["umount", "-l", str(target)], check=False)


# ------------------------------------------------------------- 1. config errors via Snakemake


def _workflow_copy(work: Path, raw: dict) -> Path:
    work.mkdir()
    for item in ("Snakefile", "workflow", "profiles"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / item)
    (work / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return work


def _unknown_key(raw):
    raw["presets"]["smoke"]["colour"] = "red"


def _missing_experiment(raw):
    raw["tables"]["table2"]["rows"][0]["experiment"] = "t9z"


def _impossible_scale(raw):
    raw["experiments"]["t5f"]["scales"] = [256, 385, 512]


CONFIG_FAULTS = {
    "unknown key in config.yaml": (_unknown_key, []),
    "--config foo=1": (None, ["--config", "foo=1"]),
    "a row naming a missing experiment": (_missing_experiment, []),
    "a scale the architecture cannot make": (_impossible_scale, []),
    "--config preset=nope": (None, ["--config", "preset=nope"]),
}


@pytest.mark.parametrize("case", list(CONFIG_FAULTS))
def test_snakemake_prints_the_one_line_of_pegan_validate(tmp_path, case):
    edit, extra = CONFIG_FAULTS[case]
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    if edit is not None:
        edit(raw)
    work = _workflow_copy(tmp_path / "wf", raw)
    overrides = dict(a.split("=", 1) for a in extra[1::2])
    with pytest.raises(PeganError) as expected:
        pconfig.load(work / "config.yaml", overrides)
    result = subprocess.run([snakemake_exe(), "-n", *extra], cwd=work, capture_output=True,
                            text=True, env=job_env(), timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"pegan: error: {expected.value}" in out.splitlines(), out[-3000:]
    assert "Traceback" not in out and 'File "' not in out and "$schema" not in out, out[-3000:]
    assert len(out.splitlines()) <= 4, out


# ---------------------------------------------------------------- 2. one writer per run folder


def test_a_second_trainer_stops_at_once_naming_the_holder(cfg, data, tmp_path):
    spec = _spec(cfg)
    ckpt = tmp_path / "ckpt"
    with RunLock(ckpt):                                     # the live trainer
        with pytest.raises(RunLocked):
            RunLock(ckpt).acquire()
        result = _pegan("train", "t2a", "--spec", json.dumps(spec.to_dict()), "--data",
                        str(data["a"]), "--checkpoint-dir", str(ckpt), "--gpus", "0",
                        "--out", str(tmp_path / "final.pt"), "--no-progress")
        line = _one_line_error(result)
        assert result.returncode == RunLocked.exit_code
        assert f"PID {os.getpid()}" in line and socket.gethostname() in line and "since" in line
        assert str(ckpt) in line
        assert not list(ckpt.glob("ckpt-*.pt"))             # it stopped before training


def test_the_lock_dies_with_its_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pegan.train.runlock import RunLock
        lock = RunLock({str(tmp_path)!r}); lock.acquire()
        print("locked", flush=True); time.sleep(600)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLocked, match=f"PID {holder.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with RunLock(tmp_path):                                  # free again: the OS released it
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()


# ------------------------------------------------------------------- 6. stale temp files


def test_stale_temp_files_of_killed_writes_are_removed_at_the_next_start(cfg, data, tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    stale = [ckpt / ".ckpt-000000004.pt.k2j4x8.tmp", ckpt / ".config.json.a1b2c3.tmp"]
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    keep = ckpt / "notes.tmp"                         # not a temp file of pegan's writes
    keep.write_text("mine")
    assert train(_spec(cfg), _opts(ckpt, data["a"], stop_after=1)) == RESUME_EXIT_STATUS
    assert not any(p.exists() for p in stale) and keep.exists()
    assert not list(ckpt.glob(".*.tmp"))


# ------------------------------------------------------------------ 3. recoverable divergence


def _overflow_exp_avg_sq(monkeypatch, at_iteration: int) -> None:
    """From `at_iteration` on, G's Adam second moment overflows to inf while the losses stay
    finite (Adam then divides by inf: its updates vanish instead of exploding)."""
    real_step = stylegan2.StyleGAN2Recipe.step

    def step(self, real, iteration):
        out = real_step(self, real, iteration)
        if iteration >= at_iteration:
            moments = next(iter(self.g_opt.state.values()))
            moments["exp_avg_sq"].fill_(float("inf"))
        return out

    monkeypatch.setattr(stylegan2.StyleGAN2Recipe, "step", step)


def test_divergence_keeps_only_finite_state_and_its_advice_continues_the_run(
        cfg, data, tmp_path, monkeypatch):
    spec = _spec(cfg, iterations=10)
    ckpt = tmp_path / "ckpt"
    _overflow_exp_avg_sq(monkeypatch, at_iteration=5)
    with pytest.raises(TrainingDiverged) as err:
        train(spec, _opts(ckpt, data["a"], checkpoint_every=2, out=tmp_path / "final.pt"))
    message = str(err.value)
    assert "iteration 6" in message and "exp_avg_sq" in message and "\n" not in message
    store = CheckpointStore(ckpt)
    assert [p.name for p in store.paths()] == ["ckpt-000000002.pt", "ckpt-000000004.pt"]
    kept = torch.load(store.latest(), weights_only=True)
    assert nonfinite_entries(kept["recipe"]) == []
    monkeypatch.undo()

    # the advised command, as printed
    command = shlex.split(message.split("run: ", 1)[1])
    assert command[:2] == ["pegan", "train"] and "--accept-config-change" in command
    lowered = {p.split("=")[0]: float(p.split("=")[1])
               for flag, p in zip(command, command[1:]) if flag == "--set"}
    assert set(lowered) == {"g_lr", "d_lr"}
    result = subprocess.run([*PEGAN, *command[1:]], capture_output=True, text=True,
                            timeout=300, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "final.pt").exists()
    events = read_jsonl(ckpt / "events.jsonl")
    changed = [e for e in events if e["event"] == "config-changed"]
    assert len(changed) == 1 and changed[0]["iterations"] == 4
    assert changed[0]["reason"] == "diverged at iteration 6"
    assert set(changed[0]["changed"]) == {"settings.g_lr", "settings.d_lr"}
    assert events[-1]["event"] == "done"
    recorded = json.loads((ckpt / "config.json").read_text())
    assert recorded["changes"][0]["to_hash"] == recorded["config_hash"]
    assert recorded["settings"]["g_lr"] == pytest.approx(lowered["g_lr"])
    final = torch.load(store.latest(), weights_only=True)
    assert final["iterations"] == 10 and final["changes"] == recorded["changes"]
    assert final["recipe"]["optimizers"]["G"]["param_groups"][0]["lr"] == pytest.approx(
        lowered["g_lr"])                                    # the new rate is really used
    # a rerun with the original settings is refused and told which settings the run has now
    with pytest.raises(PeganError, match="repeat --set d_lr=.* --set g_lr="):
        train(spec, _opts(ckpt, data["a"]))


def test_accepting_a_change_is_limited_to_training_settings(cfg, data, tmp_path):
    spec = _spec(cfg)
    ckpt = tmp_path / "ckpt"
    train(spec, _opts(ckpt, data["a"], stop_after=2))
    other = dataclasses.replace(spec, switches={**spec.switches, "head": "csg"})
    with pytest.raises(PeganError, match="only training settings .* spec.switches.head"):
        train(other, _opts(ckpt, data["a"], accept_config_change="try CSG"))


def test_a_non_finite_checkpoint_of_an_older_pegan_is_skipped(tmp_path):
    store = CheckpointStore(tmp_path)
    good = {"config_hash": "h", "iterations": 2, "recipe": {"modules": {"G": {"w": torch.ones(2)}}}}
    bad = {"config_hash": "h", "iterations": 4,
           "recipe": {"optimizers": {"G": {"state": {0: {"exp_avg_sq": torch.full((2,), float("inf"))}}}}}}
    store.save(good)
    store.save(bad)
    assert store.load_latest("h")["iterations"] == 2


# ------------------------------------------------------------------ 4. the dataset's identity


def test_fingerprint_reads_the_zip_directory_only(data, tmp_path):
    assert fingerprint(data["a"]) == fingerprint(shutil.copy(data["a"], tmp_path / "copy.zip"))
    assert fingerprint(data["a"]) != fingerprint(data["b"])
    with zipfile.ZipFile(data["a"]) as zf:                  # names + CRCs: same images, same id
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    with zipfile.ZipFile(tmp_path / "rezipped.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for name in reversed(sorted(members)):
            zf.writestr(name, members[name])
    assert fingerprint(tmp_path / "rezipped.zip") == fingerprint(data["a"])


def test_resume_refuses_other_data_of_the_same_size_naming_both(cfg, data, tmp_path):
    spec = _spec(cfg)
    ckpt = tmp_path / "ckpt"
    train(spec, _opts(ckpt, data["a"], stop_after=1))
    with pytest.raises(PeganError) as err:
        train(spec, _opts(ckpt, data["b"]))
    message = str(err.value)
    assert str(data["a"]) in message and str(data["b"]) in message
    assert fingerprint(data["a"]) in message and fingerprint(data["b"]) in message
    # a checkpoint written before the fingerprint existed stays loadable (count check only)
    path = CheckpointStore(ckpt).latest()
    state = torch.load(path, weights_only=True)
    del state["dataset"]
    torch.save(state, path)
    assert train(spec, _opts(ckpt, data["a"], stop_after=2)) == RESUME_EXIT_STATUS


# ------------------------------------------------------------------ 5. refused writes


def test_read_only_outputs_fail_before_any_work(cfg, data, mount_tmpfs):
    ro = mount_tmpfs(read_only=True)
    spec_json = json.dumps({"kind": "synthetic"})
    cases = {
        "prepare-data": ["prepare-data", "--dataset", "syn", "--spec", spec_json,
                         "--resolution", "32", "--num", "4", "--out", str(ro / "syn.zip")],
        # the snapshot does not exist: the writability check must come first
        "evaluate": ["evaluate", str(ro / "missing.pt"), "--scale", "32", "--real",
                     str(data["a"]), "--out", str(ro / "metrics" / "m.json")],
        "train": ["train", "t2a", "--preset", "smoke", "--data", str(data["a"]), "--out",
                  str(ro / "run")],
        "table": ["table", "table2", "--out", str(ro / "table2.csv")],
    }
    for command, argv in cases.items():
        result = _pegan(*argv)
        line = _one_line_error(result)
        assert line.startswith(f"pegan {command}: error: {ro}"), line
        assert "read-only file system (EROFS)" in line, line
        assert result.returncode == 74


def test_a_full_disk_during_a_checkpoint_loses_nothing(cfg, data, tmp_path, mount_tmpfs):
    disk = mount_tmpfs(size="64m")
    ckpt = disk / "ckpt"
    spec = _spec(cfg, iterations=6)
    cmd = ["train", "t2a", "--spec", json.dumps(spec.to_dict()), "--seed", "1", "--data",
           str(data["a"]), "--checkpoint-dir", str(ckpt), "--gpus", "0", "--checkpoint-every",
           "2", "--out", str(tmp_path / "final.pt"), "--no-progress"]
    first = _pegan(*cmd, "--stop-after", "2")
    assert first.returncode == RESUME_EXIT_STATUS, first.stderr[-3000:]
    size = CheckpointStore(ckpt).latest().stat().st_size
    # fill the disk but for half a checkpoint
    free = shutil.disk_usage(disk).free
    with open(disk / "filler", "wb") as fh:
        fh.write(b"\0" * (free - size // 2))
    full = _pegan(*cmd)
    line = _one_line_error(full)
    assert "no space left on the device (ENOSPC)" in line and str(ckpt) in line, line
    assert full.returncode == 74
    assert [p.name for p in CheckpointStore(ckpt).paths()] == ["ckpt-000000002.pt"]
    assert not list(ckpt.glob(".*.tmp"))                    # no half file left
    (disk / "filler").unlink()
    again = _pegan(*cmd)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = [e for e in read_jsonl(ckpt / "events.jsonl") if e["event"] == "resume"]
    assert resumed[-1]["iterations"] == 2 and (tmp_path / "final.pt").exists()


def test_prepare_data_on_a_full_disk_leaves_no_half_zip(mount_tmpfs):
    disk = mount_tmpfs(size="256k")
    out = disk / "syn.zip"
    result = _pegan("prepare-data", "--dataset", "syn", "--spec", '{"kind": "synthetic"}',
                    "--resolution", "64", "--num", "200", "--out", str(out))
    line = _one_line_error(result)
    assert f"{out}: cannot write: no space left on the device (ENOSPC)" in line, line
    assert not out.exists() and not list(disk.iterdir())


# ------------------------------------------------------------------ a closed pipe


def test_a_closed_pipe_ends_quietly():
    proc = subprocess.Popen([*PEGAN, "show", "t5f"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    proc.stdout.close()                                      # `| head` that already exited
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) != 0
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_cpu_kernels_torch_cannot_take_are_a_one_line_error(monkeypatch):
    # torch fixes its kernels at its first operator: pinning others later (or kernels the
    # processor lacks) must fail loudly, not train silently on the wrong ones
    from pegan.provenance import use_cpu_kernels

    torch.ones(4).add_(1)                        # torch has chosen its kernels now
    chosen = torch.backends.cpu.get_cpu_capability()
    other = {"AVX512": "avx2", "AVX2": "avx512"}.get(chosen)
    if other is None:
        pytest.skip(f"no other x86 kernels to ask for ({chosen})")
    for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"):
        monkeypatch.setenv(name, "")              # restored after the test
    with pytest.raises(PeganError, match=rf"--cpu-kernels {other}: torch runs {chosen} kernels"):
        use_cpu_kernels(other)
    use_cpu_kernels("default")                   # leaves the libraries' choice alone
    assert "bogus" in _one_line_error(_pegan("--cpu-kernels", "bogus", "validate"))
