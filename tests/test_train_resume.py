"""Checkpoint/resume (bit-exact on CPU), NaN guard, time budget and config-hash refusal."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch

from pegan import config as pconfig
from pegan.data.prepare import prepare
from pegan.errors import PeganError
from pegan.train import losses
from pegan.train.budget import RESUME_EXIT_STATUS
from pegan.train.checkpoint import CheckpointStore, state_digest
from pegan.train.logs import read_jsonl
from pegan.train.loop import RunOptions, TrainingDiverged, train

# Lazy regularisers every few iterations and a real EMA, so that the resumed stretch uses them.
SETTINGS = {"r1_interval": 2, "pl_interval": 3, "ema_kimg_paper": 50000.0}


def _spec(cfg, name, iterations=6, snapshot_every=None):
    spec = pconfig.resolve(cfg, name, "smoke")
    kimg = iterations * spec.batch / 1000
    every = (snapshot_every or iterations) * spec.batch / 1000
    return dataclasses.replace(spec, total_kimg=kimg, snapshot_every_kimg=every)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    paths = {}
    for res in (32, 64):
        paths[res] = root / f"syn-{res}.zip"
        prepare("syn", {"kind": "synthetic"}, resolution=res, num=12, out=paths[res])
    return paths


def _opts(ckpt, data, **kw):
    kw.setdefault("settings", SETTINGS)
    return RunOptions(checkpoint_dir=ckpt, data=data, seed=5, progress=False, **kw)


def _final_state(ckpt_dir, iterations):
    state = torch.load(CheckpointStore(ckpt_dir).path_for(iterations), weights_only=True)
    return state


@pytest.mark.parametrize("name", ["t2e", "t5f"])
def test_kill_and_resume_is_bit_exact(cfg, data, tmp_path, name):
    torch.set_num_threads(1)
    spec = _spec(cfg, name, iterations=100)
    zip_ = data[max(spec.scales)]
    # 2N iterations in one go ...
    assert train(spec, _opts(tmp_path / "a", zip_, stop_after=8)) == RESUME_EXIT_STATUS
    # ... vs N, a stop (as a kill after the checkpoint), then a fresh process state and N more
    assert train(spec, _opts(tmp_path / "b", zip_, stop_after=4)) == RESUME_EXIT_STATUS
    torch.manual_seed(1234)                      # the resumed run must not depend on this
    assert train(spec, _opts(tmp_path / "b", zip_, stop_after=8)) == RESUME_EXIT_STATUS
    a, b = _final_state(tmp_path / "a", 8), _final_state(tmp_path / "b", 8)
    for part in ("G", "D", "G_ema"):
        assert state_digest(a["recipe"]["modules"][part]) == state_digest(b["recipe"]["modules"][part]), part
    for part in ("G", "D"):
        assert state_digest(a["recipe"]["optimizers"][part]) == state_digest(b["recipe"]["optimizers"][part]), part
    assert state_digest(a["recipe"]["extra"]) == state_digest(b["recipe"]["extra"])
    assert state_digest(a["rng"]) == state_digest(b["rng"])
    assert a["data"] == b["data"] and a["data"]["next_iteration"] == 8
    # the runs really trained: weights moved away from the first checkpoint of run b
    first = torch.load(CheckpointStore(tmp_path / "b").path_for(4), weights_only=True)
    assert state_digest(first["recipe"]["modules"]["G"]) != state_digest(b["recipe"]["modules"]["G"])
    # the loss log of the resumed run equals the uninterrupted one
    la = read_jsonl(tmp_path / "a" / "train.jsonl")
    lb = read_jsonl(tmp_path / "b" / "train.jsonl")
    strip = lambda rs: [{k: v for k, v in r.items() if not k.startswith("sec")} for r in rs]
    assert strip(la) == strip(lb)
    events = [e["event"] for e in read_jsonl(tmp_path / "b" / "events.jsonl")]
    assert "resume" in events and events.count("stopped") == 2


def test_run_to_the_end_writes_outputs_and_snapshots(cfg, data, tmp_path):
    spec = _spec(cfg, "t2a", iterations=4, snapshot_every=2)
    out, snap_log = tmp_path / "run" / "final.pt", tmp_path / "run" / "snapshots.jsonl"
    code = train(spec, _opts(tmp_path / "ckpt", data[32], out=out, snapshot_log=snap_log))
    assert code == 0 and out.exists()
    records = read_jsonl(snap_log)
    assert [r["iterations"] for r in records] == [2, 4]
    assert records[0]["mimg"] == pytest.approx(records[0]["kimg"] / spec.kimg_per_mimg)
    from pegan.snapshot import load_generator

    G, meta = load_generator(out)
    assert meta["kimg"] == pytest.approx(spec.total_kimg) and meta["experiment"] == "t2a"
    img = G(torch.randn(2, G.z_dim))
    assert img.shape == (2, 3, 32, 32) and torch.isfinite(img).all()
    # a rerun of a finished run (Snakemake deleted the outputs) only rewrites them
    out.unlink()
    snap_log.unlink()
    assert train(spec, _opts(tmp_path / "ckpt", data[32], out=out, snapshot_log=snap_log)) == 0
    assert out.exists() and len(read_jsonl(snap_log)) == 2


def test_nan_stops_with_a_message_and_keeps_the_last_checkpoint(cfg, data, tmp_path, monkeypatch):
    spec = _spec(cfg, "t2a", iterations=20)
    real_loss = losses.g_nonsaturating_loss
    calls = {"n": 0}

    def poisoned(logits):
        calls["n"] += 1
        loss = real_loss(logits)
        return loss * float("nan") if calls["n"] == 6 else loss   # iteration 5

    monkeypatch.setattr(losses, "g_nonsaturating_loss", poisoned)
    ckpt = tmp_path / "ckpt"
    with pytest.raises(TrainingDiverged) as err:
        train(spec, _opts(ckpt, data[32], checkpoint_every=2))
    msg = str(err.value)
    assert "iteration 5" in msg and "G_loss" in msg and "ckpt-000000004.pt" in msg
    store = CheckpointStore(ckpt)
    assert store.latest().name == "ckpt-000000004.pt"
    state = torch.load(store.latest(), weights_only=True)
    assert all(torch.isfinite(t).all() for t in state["recipe"]["modules"]["G"].values())
    assert read_jsonl(ckpt / "events.jsonl")[-1]["event"] == "diverged"
    assert json.loads((ckpt / "exit-status.json").read_text())["status"] == TrainingDiverged.exit_code


def test_resume_refuses_another_configuration(cfg, data, tmp_path):
    spec = _spec(cfg, "t2a", iterations=10)
    train(spec, _opts(tmp_path / "c", data[32], stop_after=1))
    with pytest.raises(PeganError, match="another configuration"):
        train(spec, _opts(tmp_path / "c", data[32], settings={**SETTINGS, "mix_prob": 0.5}))
    with pytest.raises(PeganError, match="another configuration"):
        train(dataclasses.replace(spec, switches={**spec.switches, "head": "csg"}),
              _opts(tmp_path / "c", data[32]))


def _cli_train(cfg, data, tmp_path, *pegan_options):
    """`pegan [pegan_options] train` of a 12-iteration t2a in a fresh process: the command
    (without its time budget), its checkpoint folder and its final snapshot."""
    spec = _spec(cfg, "t2a", iterations=12, snapshot_every=12)
    ckpt, out = tmp_path / "ckpt", tmp_path / "final.pt"
    cmd = [sys.executable, "-m", "pegan.cli", *pegan_options, "train", "t2a", "--spec",
           json.dumps(spec.to_dict()), "--seed", "0", "--data", str(data[32]),
           "--checkpoint-dir", str(ckpt), "--selection-scales", "none", "--gpus", "0",
           "--out", str(out), "--snapshot-log", str(tmp_path / "s.jsonl"), "--no-progress"]
    return cmd, ckpt, out


def test_tiny_time_budget_exits_with_resume_status_then_resumes(cfg, data, tmp_path):
    cmd, ckpt, out = _cli_train(cfg, data, tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}      # 2 shared cores: no oversubscription
    first = subprocess.run(cmd + ["--max-minutes", "0.001", "--safety-minutes", "0"],
                           capture_output=True, text=True, timeout=300, env=env)
    assert first.returncode == RESUME_EXIT_STATUS, first.stderr[-2000:]
    assert not out.exists()
    stopped = [e for e in read_jsonl(ckpt / "events.jsonl") if e["event"] == "stopped"]
    assert stopped and stopped[-1]["reason"] == "time budget" and stopped[-1]["iterations"] < 12
    second = subprocess.run(cmd + ["--max-minutes", "30"], capture_output=True, text=True,
                            timeout=300, env=env)
    assert second.returncode == 0, second.stderr[-2000:]
    events = read_jsonl(ckpt / "events.jsonl")
    resume = [e for e in events if e["event"] == "resume"]
    assert resume and resume[0]["iterations"] == stopped[-1]["iterations"]
    assert events[-1]["event"] == "done" and out.exists()


def test_a_checkpoint_with_the_recipe_stream_in_extra_still_resumes_exactly(cfg, data, tmp_path):
    # before per-rank generator states, PGGAN/DCGAN/SinGAN kept their z stream in the
    # recipe's `extra`: such checkpoints (runs interrupted before the change) must resume
    # to the same state as an uninterrupted run
    torch.set_num_threads(1)
    spec = _spec(cfg, "swd-dcgan-a", iterations=100)
    zip_ = data[max(spec.scales)]
    assert train(spec, _opts(tmp_path / "a", zip_, stop_after=6, settings={})) == RESUME_EXIT_STATUS
    assert train(spec, _opts(tmp_path / "b", zip_, stop_after=3, settings={})) == RESUME_EXIT_STATUS
    store = CheckpointStore(tmp_path / "b")
    old = torch.load(store.path_for(3), weights_only=True)
    assert "rng" not in old["recipe"]["extra"]
    old["recipe"]["extra"]["rng"] = old["rng"][0].pop("recipe")["rng"]   # the old layout
    torch.save(old, store.path_for(3))
    assert train(spec, _opts(tmp_path / "b", zip_, stop_after=6, settings={})) == RESUME_EXIT_STATUS
    a, b = _final_state(tmp_path / "a", 6), _final_state(tmp_path / "b", 6)
    assert state_digest(a["recipe"]) == state_digest(b["recipe"])
    assert state_digest(a["rng"]) == state_digest(b["rng"])


def test_snapshots_record_the_commits_and_machines_that_trained_the_run(cfg, data, tmp_path,
                                                                       monkeypatch):
    # every attempt's pegan commit and machine, in order; a resume on the same adds none
    from pegan.snapshot import load_snapshot
    from pegan.train import loop

    spec = _spec(cfg, "t2e", iterations=6, snapshot_every=2)
    zip_ = data[max(spec.scales)]
    for commit, host, stop in (("a" * 40, "m1", 2), ("a" * 40, "m2", 4),
                               ("b" * 40 + "-dirty", "m2", None)):
        monkeypatch.setattr(loop, "git_commit", lambda c=commit: c)
        monkeypatch.setattr(loop, "machine", lambda m=host: m)
        assert train(spec, _opts(tmp_path, zip_, stop_after=stop)) in (0, RESUME_EXIT_STATUS)
    extra = lambda it: load_snapshot(tmp_path / f"snapshot-{it:09d}.pt")["extra"]
    assert extra(2)["trained_by"] == ["a" * 40] and extra(2)["trained_on"] == ["m1"]
    assert extra(6)["trained_by"] == ["a" * 40, "b" * 40 + "-dirty"]
    assert extra(6)["trained_on"] == ["m1", "m2"]
    starts = [e for e in read_jsonl(tmp_path / "events.jsonl") if e["event"] in ("start", "resume")]
    assert [e["pegan_commit"][0] for e in starts] == ["a", "a", "b"]
    assert [e["machine"] for e in starts] == ["m1", "m2", "m2"]


def test_sigterm_stops_with_a_checkpoint_and_the_resume_is_bit_exact(cfg, data, tmp_path,
                                                                     monkeypatch):
    # SLURM's scancel / preemption / time limit: SIGTERM, then a clean stop after the current
    # iteration (checkpoint, exit 75), and the retry resumes as if nothing happened
    import os
    import signal

    from pegan.train.stylegan2 import StyleGAN2Recipe

    torch.set_num_threads(1)
    spec = _spec(cfg, "t2e", iterations=100)
    zip_ = data[max(spec.scales)]
    assert train(spec, _opts(tmp_path / "a", zip_, stop_after=7)) == RESUME_EXIT_STATUS
    step = StyleGAN2Recipe.step

    def step_then_signal(self, real, iteration):
        out = step(self, real, iteration)
        if iteration == 2:                          # during the 3rd iteration
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    monkeypatch.setattr(StyleGAN2Recipe, "step", step_then_signal)
    before = signal.getsignal(signal.SIGTERM)
    assert train(spec, _opts(tmp_path / "b", zip_, stop_after=7)) == RESUME_EXIT_STATUS
    assert signal.getsignal(signal.SIGTERM) is before          # the handler is put back
    stopped = [e for e in read_jsonl(tmp_path / "b" / "events.jsonl") if e["event"] == "stopped"]
    assert (stopped[0]["iterations"], stopped[0]["reason"]) == (3, "signal SIGTERM")
    monkeypatch.setattr(StyleGAN2Recipe, "step", step)
    assert train(spec, _opts(tmp_path / "b", zip_, stop_after=7)) == RESUME_EXIT_STATUS
    a, b = _final_state(tmp_path / "a", 7), _final_state(tmp_path / "b", 7)
    assert state_digest(a["recipe"]) == state_digest(b["recipe"])
    assert state_digest(a["rng"]) == state_digest(b["rng"])


def test_a_resume_with_other_cpu_kernels_warns_and_records_them(cfg, data, tmp_path):
    # --cpu-kernels reaches torch in a fresh process, the run records the kernels of each
    # attempt, and a resume on other kernels says that it continues differently
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        pytest.skip("x86 kernels (AVX2) needed")
    cmd, ckpt, out = _cli_train(cfg, data, tmp_path)
    pinned, _, _ = _cli_train(cfg, data, tmp_path, "--cpu-kernels", "avx2")
    env = {k: v for k, v in os.environ.items()
           if k not in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR",
                         "PEGAN_CPU_KERNELS")}
    env["OMP_NUM_THREADS"] = "1"
    first = subprocess.run(cmd + ["--max-minutes", "0.001", "--safety-minutes", "0"],
                           capture_output=True, text=True, timeout=300, env=env)
    assert first.returncode == RESUME_EXIT_STATUS, first.stderr[-2000:]
    assert "another machine" not in first.stderr
    second = subprocess.run(pinned + ["--max-minutes", "30"], capture_output=True, text=True,
                            timeout=300, env=env)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming on another machine than the last attempt's" in second.stderr
    machines = [e["machine"] for e in read_jsonl(ckpt / "events.jsonl")
                if e["event"] in ("start", "resume")]
    assert len(machines) == 2 and "oneDNN at most" not in machines[0]
    assert machines[1].endswith("(AVX2, oneDNN at most AVX2)")
    from pegan.snapshot import load_snapshot

    assert load_snapshot(out)["extra"]["trained_on"] == machines
