"""The SLURM path for real: a slice of the smoke DAG submitted through Snakemake's SLURM
executor (profiles/slurm-local) to a running cluster, checked against `sacct` and against a
local run of the same slice; a training job cancelled with `scancel` mid-run, which the
next `snakemake` invocation resumes from its checkpoint; and a training longer than its
1-minute SLURM time limit, which stops itself before the limit, is resubmitted by Snakemake
and resumes, with the sbatch resources checked against the profile and `sacct`.

Needs a cluster that `sinfo` reaches (CI starts one with `local-slurm.sh start`, see
.ci/run); without one these tests skip.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
import torch
import yaml

from workflow_slice import job_env, make_workdir, snakemake_exe

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# One Table 2 run (t2a) and one MS-PIE run (t5f), one column each: data -> train -> select
# -> evaluate -> table -> compare. A quarter of the smoke schedule keeps training short.
ROWS = {"table2": ["a"], "table5": ["f"]}
COLUMNS = {"table2": ["fid256_20M"], "table5": ["fid512_25M"]}
SCHEDULE = {"kimg_per_mimg": 0.002}
TARGET = "results/smoke/comparison.md"
TIMEOUT = 900  # seconds, per snakemake invocation


def _cluster_state() -> str | None:
    """None if a SLURM partition is up, else why not."""
    if not shutil.which("sinfo"):
        return "no SLURM client (sinfo) on PATH; CI starts a cluster with local-slurm.sh"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%a"], capture_output=True, text=True,
                             timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo timed out: no SLURM controller answers"
    if out.returncode != 0 or "up" not in out.stdout.split():
        return f"no SLURM partition is up ({(out.stderr or out.stdout).strip()[:200]})"
    return None


@pytest.fixture(scope="module")
def cluster():
    reason = _cluster_state()
    if reason:
        pytest.skip(reason)


def _snakemake(work: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([snakemake_exe(), *args], cwd=work, env=job_env(),
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def _sacct(name: str, expected: int, wait: float = 60.0) -> dict[str, str]:
    """{job id: state} of the allocations named `name`, once `expected` of them are final."""
    final = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"}
    end = time.monotonic() + wait
    while True:
        out = subprocess.run(["sacct", "-X", "-n", "-P", "-S", "now-2hours", "--name", name,
                              "-o", "JobID,State"], capture_output=True, text=True, timeout=30)
        jobs = dict(line.split("|")[:2] for line in out.stdout.split() if "|" in line)
        states = {j: s.split()[0] for j, s in jobs.items()}
        if (len(states) >= expected and set(states.values()) <= final) \
                or time.monotonic() > end:
            return states
        time.sleep(2)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["G_ema"]


def test_smoke_slice_through_slurm_matches_local(cluster, tmp_path):
    slurm = make_workdir(tmp_path / "slurm", ROWS, columns=COLUMNS, schedule=SCHEDULE)
    local = make_workdir(tmp_path / "local", ROWS, columns=COLUMNS, schedule=SCHEDULE)

    run = _snakemake(slurm, "--profile", "profiles/slurm-local", TARGET)
    log = run.stdout + run.stderr
    steps = [line for line in log.splitlines() if "steps (100%) done" in line]
    assert steps, log[-3000:]
    n_jobs = int(steps[-1].split()[0])
    run_id = [ln.split("SLURM run ID:")[1].strip() for ln in log.splitlines()
              if "SLURM run ID:" in ln][0]
    assert n_jobs >= 10          # data, features, 2 x train, select, evaluate, tables, compare
    n_local = sum(line.startswith("localrule ") for line in log.splitlines())  # effective_config
    n_slurm = n_jobs - n_local
    # every job ran as its own SLURM allocation and SLURM accounted it as COMPLETED
    states = _sacct(run_id, n_slurm)
    assert len(states) == n_slurm >= 10, states
    assert set(states.values()) == {"COMPLETED"}, states

    _snakemake(local, "--cores", "2", TARGET)
    out_s, out_l = slurm / "results" / "smoke", local / "results" / "smoke"
    for rel in ("tables/table2.csv", "tables/table5.csv", "comparison.csv", "comparison.md"):
        assert (out_s / rel).read_bytes() == (out_l / rel).read_bytes(), rel
    for exp in ("t2a", "t5f"):
        ws, wl = (_weights(o / "runs" / exp / "seed0" / "final.pt") for o in (out_s, out_l))
        assert ws.keys() == wl.keys()
        assert all(torch.equal(ws[k], wl[k]) for k in ws), exp


# ---------------------------------------------------------------- scancel mid-training
DCGAN_ROWS = {"swd-dcgan": ["a"]}                     # no snapshot selection: data -> train
DCGAN_LONG = {"swd-dcgan-a": {"total_mimg": 76.8}}    # 2x the smoke schedule: 77 iterations
DCGAN_FINAL = "results/smoke/runs/swd-dcgan-a/seed0/final.pt"
DCGAN_EVENTS = "results/smoke/checkpoints/swd-dcgan-a/seed0/events.jsonl"


def _events(work: Path) -> list[dict]:
    path = work / DCGAN_EVENTS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_scancel_mid_training_resumes_from_checkpoint(cluster, tmp_path):
    slurm = make_workdir(tmp_path / "slurm", DCGAN_ROWS, overrides=DCGAN_LONG)
    local = make_workdir(tmp_path / "local", DCGAN_ROWS, overrides=DCGAN_LONG)
    prefix = f"peganscancel{time.time_ns() % 10**9}"
    log = tmp_path / "driver.log"
    with log.open("w") as sink:
        driver = subprocess.Popen([snakemake_exe(), "--profile", "profiles/slurm-local",
                                   "--slurm-jobname-prefix", prefix, DCGAN_FINAL],
                                  cwd=slurm, env=job_env(), stdout=sink,
                                  stderr=subprocess.STDOUT)
    try:
        # wait for the first checkpoint of the training job, then cancel that job
        end = time.monotonic() + TIMEOUT
        while not any(e["event"] == "checkpoint" for e in _events(slurm)):
            assert driver.poll() is None and time.monotonic() < end, "no checkpoint written"
            time.sleep(0.5)
        jobs = subprocess.run(["squeue", "-h", "-o", "%i|%j"], capture_output=True, text=True,
                              timeout=30).stdout.split()
        train = [j.split("|")[0] for j in jobs if j.split("|")[1].startswith(prefix + "_")]
        assert len(train) == 1, jobs
        subprocess.run(["scancel", train[0]], check=True, timeout=30)
        assert _sacct_state(train[0]) == "CANCELLED"
        # plugin 2.8.0 does not recognise sacct's "CANCELLED by <uid>" and would wait for the
        # job forever (and does not exit on SIGTERM): kill this driver, as a lost login
        # session would, and run snakemake again
        driver.kill()
        driver.wait(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(timeout=60)
    _snakemake(slurm, "--unlock")
    _snakemake(slurm, "--profile", "profiles/slurm-local", DCGAN_FINAL)
    _snakemake(local, "--cores", "2", DCGAN_FINAL)   # the uninterrupted reference

    events = _events(slurm)
    checkpoints = [e["iterations"] for e in events if e["event"] == "checkpoint"]
    resumed = [e["iterations"] for e in events if e["event"] == "resume"]
    assert resumed and resumed[0] > 0, events            # no work lost: restarted mid-run
    assert resumed[0] in checkpoints
    ws, wl = _weights(slurm / DCGAN_FINAL), _weights(local / DCGAN_FINAL)
    assert ws.keys() == wl.keys()
    assert all(torch.equal(ws[k], wl[k]) for k in ws)


def _sacct_state(job: str, wait: float = 60.0) -> str:
    end = time.monotonic() + wait
    while True:
        out = subprocess.run(["sacct", "-X", "-n", "-P", "-j", job, "-o", "State"],
                             capture_output=True, text=True, timeout=30).stdout.split()
        if (out and out[0] != "RUNNING") or time.monotonic() > end:
            return out[0] if out else ""  # "CANCELLED by 0" -> "CANCELLED"
        time.sleep(2)


# ---------------------------------------------------------------- wall time
WALL_PROFILE = "profiles/slurm-walltime"     # written into the test's workdir
WALL_RUNTIME = 1                             # minutes: SLURM's smallest time limit
WALL_SAFETY = 10                             # seconds: the trainer stops this long before it
WALL_RETRIES = 8                             # short time limits need more submissions
WALL_TRAIN_SECONDS = 50                      # of training: more than one allocation holds
WALL_SCHEDULE = {"snapshot_mimg": 500.0}     # a snapshot + checkpoint every 500 iterations
TRAIN_LOG = "results/smoke/logs/train/swd-dcgan-a-seed0.log"


def _seconds_per_iteration(work: Path) -> tuple[float, float]:
    """(seconds, paper Mimg) per iteration of swd-dcgan-a with `work`'s config, measured by
    a short training by hand on this machine (its speed sets the length of the test run)."""
    out = work / "calibration"
    # as the workflow's train job runs it: one torch thread (the rule's `threads`)
    cmd = [str(Path(snakemake_exe()).parent / "pegan"), "--threads", "1", "train",
           "swd-dcgan-a", "--preset", "smoke", "--config", str(work / "config.yaml"), "--out", str(out),
           "--checkpoint-dir", str(out / "ckpt"), "--no-progress", "--log-every", "5",
           "--stop-after", "150", "--max-minutes", "0.5", "--safety-minutes", "0"]
    result = subprocess.run(cmd, cwd=work, env=job_env(), capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert result.returncode == 75, result.stderr[-3000:]
    lines = [json.loads(x) for x in (out / "ckpt" / "train.jsonl").read_text().splitlines()]
    later = lines[1:] or lines                          # the first window includes warm-up
    return (sum(x["sec_per_iter"] for x in later) / len(later),
            lines[-1]["mimg_paper"] / lines[-1]["iterations"])


def _wall_profile(work: Path) -> None:
    """profiles/slurm-local with a 1-minute time limit and a 10 s safety margin on train."""
    profile = yaml.safe_load((work / "profiles/slurm-local/config.v8+.yaml").read_text())
    profile["retries"] = WALL_RETRIES
    profile["set-resources"]["train"].update(runtime=WALL_RUNTIME, safety_seconds=WALL_SAFETY)
    (work / WALL_PROFILE).mkdir(parents=True)
    (work / WALL_PROFILE / "config.v8+.yaml").write_text(yaml.safe_dump(profile))


def _submissions(log: str) -> list[tuple[str, str, str]]:
    """(rule, SLURM job id, sbatch flags before --wrap) of every submission in a --verbose
    driver log, in order."""
    calls = [ln.split("sbatch call:", 1)[1].split("--wrap")[0].strip()
             for ln in log.splitlines() if "sbatch call:" in ln]
    ids = re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+)/", log)
    assert len(calls) == len(ids), (calls, ids)
    return [(rule, job, call) for (job, rule), call in zip(ids, calls)]


def _sacct_jobs(jobs: list[str]) -> dict[str, dict[str, str]]:
    fields = "JobID,State,Partition,Timelimit,ReqCPUS,ReqMem,Start,End,Elapsed"
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-j", ",".join(jobs), "-o", fields],
                         capture_output=True, text=True, timeout=30).stdout
    rows = [dict(zip(fields.split(","), ln.split("|"))) for ln in out.splitlines() if "|" in ln]
    return {r["JobID"]: r for r in rows}


def _clock(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def test_wall_time_stop_is_retried_and_resumes(cluster, tmp_path):
    # a training that needs clearly more than one 1-minute allocation on this machine
    probe = make_workdir(tmp_path / "probe", DCGAN_ROWS, schedule=WALL_SCHEDULE,
                         overrides={"swd-dcgan-a": {"total_mimg": 1e4}})
    seconds, mimg = _seconds_per_iteration(probe)
    iterations = 100 * int(WALL_TRAIN_SECONDS / seconds / 100 + 1)
    longer = {"swd-dcgan-a": {"total_mimg": round(iterations * mimg, 6)}}
    slurm, local = (make_workdir(tmp_path / name, DCGAN_ROWS, overrides=longer,
                                 schedule=WALL_SCHEDULE) for name in ("slurm", "local"))
    _wall_profile(slurm)
    print(f"\nwall-time test: {iterations} iterations x {seconds * 1000:.1f} ms "
          f"= {iterations * seconds:.0f} s of training in {WALL_RUNTIME}-minute allocations")

    t0 = time.monotonic()
    run = _snakemake(slurm, "--profile", WALL_PROFILE, "--verbose", DCGAN_FINAL)
    log = run.stdout + run.stderr
    (tmp_path / "driver.log").write_text(log)
    print(f"snakemake through SLURM: {time.monotonic() - t0:.0f} s")
    submissions = _submissions(log)
    accounted = _sacct_jobs([job for _, job, _ in submissions])
    for rule, job, call in submissions:
        print(f"{rule} {job}: {call}")
        print(f"    sacct: " + " ".join(f"{k}={v}" for k, v in accounted[job].items()))

    # the resources Snakemake asked for are the profile's, and SLURM granted them
    want = {"prepare_data": ("00:10:00", "-t 10", "1000"), "train": ("00:01:00", "-t 1", "2000")}
    for rule, job, call in submissions:
        limit, flag, mem = want[rule]
        assert f"-p cpu {flag} --mem {mem} --ntasks=1 --cpus-per-task=1" in call, call
        got = accounted[job]
        assert (got["Partition"], got["Timelimit"], got["ReqCPUS"], got["ReqMem"]) \
            == ("cpu", limit, "1", f"{mem}M"), got

    # every allocation but the last stopped itself before SLURM's kill (FAILED, not TIMEOUT,
    # through exit status 75), and Snakemake submitted the job again
    train = [accounted[job] for rule, job, _ in submissions if rule == "train"]
    assert len(train) >= 2, train
    assert [t["State"] for t in train] == ["FAILED"] * (len(train) - 1) + ["COMPLETED"], train
    events = _events(slurm)
    stops = [e for e in events if e["event"] == "stopped"]
    resumes = [e for e in events if e["event"] == "resume"]
    assert [e["reason"] for e in stops] == ["time budget"] * (len(train) - 1), events
    assert [e["iterations"] for e in resumes] == [e["iterations"] for e in stops], events
    assert all(0 < e["iterations"] < iterations for e in stops)
    assert events[-1]["event"] == "done" and events[-1]["iterations"] == iterations
    # ... at the deadline read from SLURM: the allocation's end minus the safety margin
    for stop, alloc in zip(stops, train):
        planned = _clock(stop["time"]) + 60.0 * stop["minutes_left"]
        expected = _clock(alloc["Start"]) + 60.0 * WALL_RUNTIME - WALL_SAFETY
        assert abs(planned - expected) <= 3.0, (stop, alloc)
        assert _clock(stop["time"]) < _clock(alloc["Start"]) + 60.0 * WALL_RUNTIME
    assert "the SLURM job's end time minus a" in (slurm / TRAIN_LOG).read_text()

    _snakemake(local, "--cores", "2", DCGAN_FINAL)   # the uninterrupted reference
    ws, wl = _weights(slurm / DCGAN_FINAL), _weights(local / DCGAN_FINAL)
    assert ws.keys() == wl.keys()
    assert all(torch.equal(ws[k], wl[k]) for k in ws)
