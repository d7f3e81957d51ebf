"""Data-parallel training: 2 gloo processes under torchrun (launched by `pegan train --gpus 2`)."""

import dataclasses
import json
import os
import subprocess
import sys

import torch

from pegan import config as pconfig
from pegan.data.prepare import prepare
from pegan.train.budget import RESUME_EXIT_STATUS
from pegan.train.checkpoint import CheckpointStore, state_digest
from pegan.train.logs import read_jsonl


def test_two_gloo_processes_train_identical_replicas_and_resume(tmp_path):
    spec = pconfig.resolve(pconfig.load(), "t5f", "smoke")          # MS-PIE: scale broadcast
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
