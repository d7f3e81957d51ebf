"""`pegan select-snapshot`: best FID under an image budget, final, and error cases."""

import json

import pytest

from pegan.cli import main
from pegan.errors import PeganError
from pegan.train.select import choose


def _log(tmp_path, records):
    path = tmp_path / "snapshots.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    for r in records:
        (tmp_path / r["snapshot"]).write_bytes(r["snapshot"].encode())
    return path


RECORDS = [
    {"iterations": 20, "kimg": 0.08, "mimg": 10.0, "snapshot": "snapshot-20.pt", "fid@32": 90.0, "fid@64": 80.0},
    {"iterations": 40, "kimg": 0.16, "mimg": 20.0, "snapshot": "snapshot-40.pt", "fid@32": 70.0, "fid@64": 85.0},
    {"iterations": 53, "kimg": 0.212, "mimg": 26.5, "snapshot": "snapshot-53.pt", "fid@32": 60.0, "fid@64": 50.0},
]


def test_budget_limits_the_candidates_and_the_lowest_fid_wins():
    assert choose(RECORDS, "10M", 32)[0]["iterations"] == 20
    assert choose(RECORDS, "20M", 32)[0]["iterations"] == 40
    assert choose(RECORDS, "20M", 64)[0]["iterations"] == 20
    assert choose(RECORDS, "25M", 64)[0]["iterations"] == 20
    assert choose(RECORDS, "30M", 64)[0]["iterations"] == 53
    assert choose(RECORDS, "final", 64)[0]["iterations"] == 53


def test_errors_name_the_problem():
    with pytest.raises(PeganError, match="no snapshot at or before 5M"):
        choose(RECORDS, "5M", 32)
    with pytest.raises(PeganError, match="fid@48"):
        choose(RECORDS, "20M", 48)
    with pytest.raises(PeganError, match="budget"):
        choose(RECORDS, "20", 32)
    with pytest.raises(PeganError, match="empty"):
        choose([], "final", 32)


def test_nan_metric_is_not_chosen_and_a_replayed_snapshot_counts_once():
    recs = [dict(RECORDS[0], **{"fid@32": float("nan")}), RECORDS[1],
            dict(RECORDS[1], **{"fid@32": 95.0})]               # logged again after a resume
    best, reason = choose(recs, "20M", 32)
    assert best["iterations"] == 40 and best["fid@32"] == 95.0 and "1 snapshot" in reason


def test_cli_copies_the_snapshot_and_explains(tmp_path):
    log = _log(tmp_path, RECORDS)
    out = tmp_path / "sel" / "20M-32px.pt"
    assert main(["select-snapshot", str(log), "--checkpoint-dir", str(tmp_path),
                 "--budget", "20M", "--scale", "32", "--out", str(out)]) == 0
    assert out.read_bytes() == b"snapshot-40.pt"
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["snapshot"] == "snapshot-40.pt" and info["metric"] == 70.0
    assert "lowest fid@32" in info["reason"]
