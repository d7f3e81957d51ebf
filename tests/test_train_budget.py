"""The wall-time budget: SLURM end time, safety margin, stop decision."""

import time

import pytest

from pegan.train import budget


def test_parse_slurm_durations():
    assert budget.parse_slurm_duration("1-02:03:04") == 86400 + 2 * 3600 + 3 * 60 + 4
    assert budget.parse_slurm_duration("02:03:04") == 2 * 3600 + 3 * 60 + 4
    assert budget.parse_slurm_duration("03:04") == 3 * 60 + 4
    assert budget.parse_slurm_duration("UNLIMITED") is None
    assert budget.parse_slurm_duration("x:y") is None


def test_deadline_is_the_earliest_end_minus_the_margin(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_END_TIME", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    start = 1000.0
    assert budget.deadline(None, start=start) is None
    # 24 h job: 10 min margin; 5 min job: 10 % margin
    assert budget.deadline(1440, start=start) == pytest.approx(start + 1440 * 60 - 600)
    assert budget.deadline(5, start=start) == pytest.approx(start + 300 - 30)
    assert budget.deadline(5, start=start, margin_minutes=1) == pytest.approx(start + 240)
    # an earlier SLURM end time wins
    monkeypatch.setenv("SLURM_JOB_END_TIME", str(int(start + 1200)))
    assert budget.deadline(1440, start=start) == pytest.approx(start + 1200 - 120)
    assert budget.deadline(None, start=start) == pytest.approx(start + 1200 - 120)


def test_exhausted_accounts_for_the_next_step_and_the_save():
    b = budget.TimeBudget(time.time() + 10)
    assert not b.exhausted()
    b.observe_step(4.0)
    b.observe_save(5.0)
    assert b.exhausted()                       # 1.5 * 4 + 5 > 10
    assert not budget.TimeBudget(None).exhausted(1e9)
    # data parallel: the ranks agree every few iterations, so all of them must fit
    b = budget.TimeBudget(time.time() + 100)
    b.observe_step(5.0)
    assert not b.exhausted(steps=1)            # 1.5 * 5 < 100
    assert not b.exhausted(steps=16)           # 16.5 * 5 = 82.5 < 100
    assert b.exhausted(steps=16, upcoming_seconds=20.0)
    assert b.exhausted(steps=20)               # 20.5 * 5 > 100


def test_squeue_time_left_when_slurm_has_no_end_time_variable(monkeypatch, caplog):
    # SLURM 22.05 sets no SLURM_JOB_END_TIME: the time left comes from `squeue -o %L`
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return type("Done", (), {"stdout": "1:00\n"})()

    monkeypatch.delenv("SLURM_JOB_END_TIME", raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "51")
    monkeypatch.setattr(budget.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(budget.subprocess, "run", fake_run)
    now = time.time()
    # the job ends 60 s from now; the trainer started 20 s ago
    with caplog.at_level("INFO", logger="pegan.train.budget"):
        end = budget.deadline(1, start=now - 20, margin_minutes=10 / 60)
    assert calls and calls[0][:4] == ["squeue", "-h", "-j", "51"]
    assert end == pytest.approx(now - 20 + 60 - 10, abs=1.0)       # --max-minutes is earlier
    assert "--max-minutes minus a 0.17-minute safety margin" in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="pegan.train.budget"):
        end = budget.deadline(2, start=now - 20, margin_minutes=10 / 60)
    assert end == pytest.approx(now + 60 - 10, abs=1.0)            # the SLURM end is earlier
    assert "the SLURM job's end time minus a 0.17-minute safety margin" in caplog.text
