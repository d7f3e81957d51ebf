"""Figures: deterministic bytes, and drawn from the inputs they are given."""

from __future__ import annotations

import hashlib

import pytest

from pegan import figures
from pegan import config as pconfig


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_encodings_figure_is_byte_identical_across_runs(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    figures.figure_encodings(a)
    figures.figure_encodings(b)
    assert a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _digest(a) == _digest(b)


def test_bars_figure_is_deterministic_and_reads_its_table(tmp_path):
    cfg = pconfig.load()
    spec = cfg["tables"]["swd-pggan"]
    csv = tmp_path / "swd-pggan.csv"
    csv.write_text("row,label,experiment,seeds,swd128,swd128_std,swd64,swd64_std,swd32,swd32_std,"
                   "swd_avg,swd_avg_std\n"
                   "a,(a),swd-pggan-a,2,3,0.1,4,0.2,5,0.1,4,0.1\n"
                   "b,(b),swd-pggan-b,2,11,1,7,1,7,1,8,1\n"
                   "c,(c),swd-pggan-c,2,4,1,6,1,6,1,5,1\n")
    outs = []
    for name in ("x.png", "y.png"):
        figures.make_figure("bars-swd-pggan", tmp_path / name, [str(csv)], cfg)
        outs.append(_digest(tmp_path / name))
    assert outs[0] == outs[1]
    csv.write_text(csv.read_text().replace("11,1", "12,1"))
    figures.make_figure("bars-swd-pggan", tmp_path / "z.png", [str(csv)], cfg)
    assert _digest(tmp_path / "z.png") != outs[0]


def test_curves_figure_from_snapshot_logs(tmp_path):
    log = tmp_path / "runs" / "t2a" / "seed0" / "snapshots.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text('{"kimg": 0.08, "mimg": 10.0, "fid@32": 200.0}\n'
                   '{"kimg": 0.16, "mimg": 20.0, "fid@32": 150.0}\n')
    figures.figure_curves(tmp_path / "c1.png", [log], "Table 2")
    figures.figure_curves(tmp_path / "c2.png", [log], "Table 2")
    assert _digest(tmp_path / "c1.png") == _digest(tmp_path / "c2.png")


def test_unknown_figure_is_a_clear_error(tmp_path):
    from pegan.errors import PeganError

    with pytest.raises(PeganError, match="unknown figure 'pie'"):
        figures.make_figure("pie", tmp_path / "p.png", [], pconfig.load())


@pytest.mark.parametrize("reported", [True, False])
def test_bars_figure_draws_reported_bars_only_where_the_paper_has_them(tmp_path, monkeypatch,
                                                                       reported):
    ours = tmp_path / "ours.csv"
    ours.write_text("row,fid,fid_std\na,10,1\nb,20,2\nc,30,3\n")
    theirs = tmp_path / "theirs.csv"
    theirs.write_text("row,fid\na,11\nb,19\nc,29\n")
    drawn = {}
    monkeypatch.setattr(figures, "save", lambda fig, out: drawn.setdefault("fig", fig))
    figures.figure_bars(tmp_path / "b.png", ours, theirs if reported else None,
                        [{"key": "fid", "label": "FID"}])
    ax = drawn["fig"].axes[0]
    heights = sorted(p.get_height() for p in ax.patches)
    assert heights == ([10, 11, 19, 20, 29, 30] if reported else [10, 20, 30])
    assert (ax.get_legend() is not None) == reported
