"""Data-parallel training: 2 gloo processes under torchrun (launched by `pegan train --gpus 2`)."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch

from pegan import config as pconfig
from pegan.data.prepare import prepare
from pegan.train.budget import RESUME_EXIT_STATUS
from pegan.train.checkpoint import CheckpointStore, state_digest
from pegan.train.logs import read_jsonl


def test_two_gloo_processes_train_identical_replicas_and_resume(tmp_path):
    spec = pconfig.resolve(pconfig.load(), "t5f", "smoke")          # MS-PIE: scales drawn alike
    spec = dataclasses.replace(spec, total_kimg=5 * spec.batch / 1000,
                               snapshot_every_kimg=5 * spec.batch / 1000)
    data = tmp_path / "d.zip"
    prepare("syn", {"kind": "synthetic"}, resolution=max(spec.scales), num=8, out=data)
    ckpt = tmp_path / "ckpt"
    cmd = [sys.executable, "-m", "pegan.cli", "train", "t5f", "--spec", json.dumps(spec.to_dict()),
           "--seed", "1", "--data", str(data), "--checkpoint-dir", str(ckpt),
           "--selection-scales", "none", "--gpus", "2", "--device", "cpu", "--no-progress",
           "--out", str(tmp_path / "final.pt"), "--snapshot-log", str(tmp_path / "s.jsonl"),
           "--set", "r1_interval=2", "--set", "pl_interval=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # stopped early (as by the time budget): torchrun's failure becomes the resume status ...
    run = subprocess.run(cmd + ["--stop-after", "2"], capture_output=True, text=True,
                         timeout=400, env=env)
    assert run.returncode == RESUME_EXIT_STATUS, run.stdout[-2000:] + run.stderr[-3000:]
    # ... and the retry resumes both ranks from the checkpoint and finishes
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    events = read_jsonl(ckpt / "events.jsonl")
    assert events[0]["world_size"] == 2
    assert [e["iterations"] for e in events if e["event"] == "resume"] == [2]
    replicas = [e for e in events if e["event"] == "replicas"]
    assert len(replicas) == 1
    d0, d1 = replicas[0]["digests"]
    assert d0 == d1
    state = torch.load(CheckpointStore(ckpt).latest(), weights_only=True)
    assert state_digest(state["recipe"]) == d0           # rank 0 wrote what both ranks hold
    assert len(state["rng"]) == 2                         # every rank's RNG state is kept
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])
    assert (tmp_path / "final.pt").exists()


def _launch(tmp_path, experiment, name, extra=()):
    spec = pconfig.resolve(pconfig.load(), experiment, "smoke")
    spec = dataclasses.replace(spec, total_kimg=4 * spec.batch / 1000,
                               snapshot_every_kimg=2 * spec.batch / 1000)
    data = tmp_path / "d.zip"
    if not data.exists():
        prepare("syn", {"kind": "synthetic"}, resolution=max(spec.scales), num=8, out=data)
    ckpt = tmp_path / name
    cmd = [sys.executable, "-m", "pegan.cli", "train", experiment,
           "--spec", json.dumps(spec.to_dict()), "--seed", "3", "--data", str(data),
           "--checkpoint-dir", str(ckpt), "--selection-scales", "none", "--gpus", "2",
           "--device", "cpu", "--no-progress", "--out", str(tmp_path / f"{name}.pt"),
           "--snapshot-log", str(tmp_path / f"{name}.jsonl"), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env), ckpt


@pytest.mark.parametrize("experiment", ["swd-pggan-a", "swd-dcgan-a"])
def test_per_rank_streams_and_batch_norm_keep_replicas_identical_and_resume_exact(
        tmp_path, experiment):
    # PGGAN and DCGAN draw z from their own per-rank generators (checkpointed per rank, not in
    # the replicated state), DCGAN's batch norm sees each rank's own batch (rank 0's running
    # statistics are broadcast), and its snapshots' curve points sample in eval mode
    whole, ckpt = _launch(tmp_path, experiment, "whole")
    assert whole.returncode == 0, whole.stdout[-2000:] + whole.stderr[-3000:]
    stopped, ckpt2 = _launch(tmp_path, experiment, "split", ["--stop-after", "2"])
    assert stopped.returncode == RESUME_EXIT_STATUS, stopped.stderr[-3000:]
    resumed, _ = _launch(tmp_path, experiment, "split")
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    digests = {}
    for run in (ckpt, ckpt2):
        replicas = [e for e in read_jsonl(run / "events.jsonl") if e["event"] == "replicas"]
        d0, d1 = replicas[-1]["digests"]
        assert d0 == d1
        state = torch.load(CheckpointStore(run).latest(), weights_only=True)
        assert state_digest(state["recipe"]) == d0
        streams = [r["recipe"]["rng"] for r in state["rng"]]
        assert not torch.equal(streams[0], streams[1])       # each rank its own stream
        digests[run.name] = (d0, [state_digest(s) for s in streams])
    assert digests["whole"] == digests["split"]               # stop + resume = one run


def test_snapshot_curves_do_not_touch_a_batch_norm_generator(tmp_path):
    # DCGAN's generator is its eval generator: the curve points sample it in eval mode, so a
    # run with curves ends with the state of a run without (running statistics included)
    spec = pconfig.resolve(pconfig.load(), "swd-dcgan-a", "smoke")
    spec = dataclasses.replace(spec, total_kimg=4 * spec.batch / 1000,
                               snapshot_every_kimg=2 * spec.batch / 1000)
    data = tmp_path / "d.zip"
    prepare("syn", {"kind": "synthetic"}, resolution=max(spec.scales), num=8, out=data)
    from pegan.train.loop import RunOptions, train

    states = []
    for curve in (True, False):
        ckpt = tmp_path / f"curve-{curve}"
        assert train(spec, RunOptions(checkpoint_dir=ckpt, data=data, seed=0, curve=curve,
                                      progress=False)) == 0
        states.append(state_digest(torch.load(CheckpointStore(ckpt).latest(),
                                              weights_only=True)["recipe"]))
        log = read_jsonl(ckpt / "snapshots.jsonl")
        assert all(("structure@32" in r) == curve for r in log) and log
    assert states[0] == states[1]
