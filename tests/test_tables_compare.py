"""Tables from fixture metrics; the comparison's deltas, verdicts, protocol flags and claims."""

from __future__ import annotations

import copy
import json
import math

import pandas as pd
import pytest

from pegan import compare, plan, tables
from pegan import config as pconfig



@pytest.fixture
def cfg(cfg):
    """The registry with the paper's tables only (and their claims): the fixtures here echo
    the reported numbers, which pegan-only tables (layout, singan, ...) do not have."""
    paper = {n: t for n, t in cfg["tables"].items() if t.get("reported") is not None}
    return {**cfg, "tables": paper,
            "claims": [c for c in cfg["claims"] if c["table"] in paper]}


def _write_metrics(root, cfg, preset, seeds, value_of, protocol=None):
    """One metrics JSON per (evaluation, seed); value_of(ev, seed) -> values dict or None."""
    files = []
    for ev in plan.evaluations(cfg, preset):
        for seed in seeds:
            values = value_of(ev, seed)
            if values is None:
                continue
            path = root / plan.metrics_path("metrics", ev.experiment, seed, ev)
            path.parent.mkdir(parents=True, exist_ok=True)
            prot = protocol or {"network": "inception", "mode": "clean", "num_fake": 24, "num_real": 24}
            path.write_text(json.dumps({"values": values, "protocol": prot}))
            files.append(path)
    return files


def _paper_like_values(cfg, preset):
    """Reproduced values equal to the reported ones + a per-seed offset (paper units)."""
    reported = {name: pd.read_csv(pconfig.REPO_ROOT / t["reported"], dtype={"row": str}).set_index("row")
                for name, t in cfg["tables"].items()}
    lookup = {}
    for cell in plan.cells(cfg, preset):
        lookup.setdefault(cell.evaluation, []).append(cell)

    def value_of(ev, seed):
        values = {}
        for cell in lookup[ev]:
            rep = float(reported[cell.table].loc[cell.row, cell.column])
            v = rep + 0.1 * seed
            if cell.metric in ("precision", "recall"):
                values[cell.metric] = v / 100.0
            elif cell.metric == "swd":
                if cell.level != "avg":
                    values.setdefault("swd", {})[cell.level] = v
            else:
                values[cell.metric] = v
        values.setdefault("kid", 0.001)
        return values

    return value_of


def test_table_has_the_paper_rows_and_columns(cfg, tmp_path):
    files = _write_metrics(tmp_path, cfg, "paper", [0], _paper_like_values(cfg, "paper"))
    for name, spec in cfg["tables"].items():
        frame, prov = tables.build_table(cfg, name, files, "paper")
        assert list(frame["row"]) == [str(r["id"]) for r in spec["rows"]]
        keys = [c["key"] for c in spec["columns"]]
        assert list(frame.columns) == ["row", "label", "experiment", "seeds"] + [
            x for k in keys for x in (k, f"{k}_std")]
        reported = pd.read_csv(pconfig.REPO_ROOT / spec["reported"], dtype={"row": str})
        # same numbers back, in the paper's units (percent for P&R)
        for key in keys:
            if name.startswith("swd") and key == "swd_avg":
                continue      # recomputed as the mean of the printed levels
            pd.testing.assert_series_equal(frame[key], reported[key], check_names=False, atol=1e-9)
        assert (frame["seeds"] == 1).all()
        assert frame[[f"{k}_std" for k in keys]].isna().all().all()


def test_swd_average_is_the_mean_of_the_printed_levels(cfg, tmp_path):
    files = _write_metrics(tmp_path, cfg, "paper", [0], _paper_like_values(cfg, "paper"))
    frame, _ = tables.build_table(cfg, "swd-pggan", files, "paper")
    mean = frame[["swd128", "swd64", "swd32"]].mean(axis=1)
    assert ((frame["swd_avg"] - mean).abs() < 1e-9).all()


def test_several_seeds_give_mean_and_std(cfg, tmp_path):
    files = _write_metrics(tmp_path, cfg, "paper", [0, 1, 2], _paper_like_values(cfg, "paper"))
    frame, prov = tables.build_table(cfg, "table2", files, "paper")
    a = frame.set_index("row").loc["a"]
    assert a["seeds"] == 3
    assert a["fid256_20M"] == pytest.approx(5.62 + 0.1)          # mean of +0, +0.1, +0.2
    assert a["fid256_20M_std"] == pytest.approx(0.1)             # sample std of 0, .1, .2
    assert prov["cells"]["a"]["fid256_20M"]["per_seed"] == pytest.approx(
        {"0": 5.62, "1": 5.72, "2": 5.82})


def test_write_and_read_round_trip(cfg, tmp_path):
    files = _write_metrics(tmp_path, cfg, "paper", [0], _paper_like_values(cfg, "paper"))
    frame, prov = tables.build_table(cfg, "table5", files, "paper")
    out = tmp_path / "tables" / "table5.csv"
    tables.write_table(frame, prov, out)
    back, prov_back = tables.read_table(out)
    assert prov_back["table"] == "table5"
    pd.testing.assert_frame_equal(back, frame, check_dtype=False, atol=1e-5)


def _compare(cfg, tmp_path, preset, seeds, value_of, protocol=None, protocols=None,
             claims=False):
    """compare over tables built from fixture metrics; `claims`: with the verdicts of
    `pegan claims` on the same files (as the workflow's compare rule)."""
    files = _write_metrics(tmp_path, cfg, preset, seeds, value_of, protocol)
    csvs = []
    for name in cfg["tables"]:
        frame, prov = tables.build_table(cfg, name, files, preset)
        out = tmp_path / "tables" / f"{name}.csv"
        tables.write_table(frame, prov, out)
        csvs.append(out)
    stats = None
    if claims:
        from pegan import claims as pc

        stats = pc.frame(pc.check_claims(cfg, files, preset))
    return compare.compare(cfg, csvs, preset, protocols, stats)


PAPER_PROTOCOLS = {
    name: {"fid": {"network": "inception", "mode": "clean", "num_fake": 24, "num_real": 24},
           "precision": {"network": "inception", "num_fake": 24, "num_real": 24},
           "recall": {"network": "inception", "num_fake": 24, "num_real": 24},
           "swd": {"num_fake": 24, "num_real": 24}}
    for name in ("table2", "table5", "table5-hires", "swd-pggan", "swd-dcgan")
}


def test_deltas_and_verdicts(cfg, tmp_path):
    base = _paper_like_values(cfg, "paper")

    def value_of(ev, seed):
        values = base(ev, seed)
        if ev.experiment == "t2c" and "fid" in values:
            values["fid"] += 1.0                       # outside the FID tolerance, worse
        if ev.experiment == "t2d" and "fid" in values:
            values["fid"] -= 0.2                       # within tolerance (abs 0.3)
        if ev.experiment == "t5k" and ev.scale == 512 and ev.snapshot == "25M":
            return None                                # missing value
        return values

    cells, claims = _compare(cfg, tmp_path, "paper", [0], value_of, protocols=PAPER_PROTOCOLS)
    by_key = {(c.table, c.row, c.column): c for c in cells}
    c = by_key[("table2", "c", "fid256_20M")]
    assert c.delta == pytest.approx(1.0) and c.rel_delta == pytest.approx(1.0 / 6.13)
    assert c.tolerance == pytest.approx(max(0.3, 0.05 * 6.13))
    assert (c.verdict, c.comparable, c.regression) == ("outside", True, True)
    d = by_key[("table2", "d", "fid256_20M")]
    assert (d.verdict, d.regression) == ("within", False)
    assert d.delta == pytest.approx(-0.2)
    a = by_key[("table2", "a", "precision")]
    assert a.verdict == "within" and a.delta == pytest.approx(0.0, abs=1e-9)
    k = by_key[("table5", "k", "fid512_25M")]
    assert k.verdict == "missing" and math.isnan(k.reproduced)
    assert ("table5", "a", "fid512_25M") not in by_key            # skipped cell of the paper
    assert compare.exit_status(cells, claims, "regression") == 1
    assert compare.exit_status(cells, claims, "never") == 0


def test_protocol_mismatch_is_flagged(cfg, tmp_path):
    cells, _ = _compare(cfg, tmp_path, "smoke", [0], lambda ev, s: {"fid": 10.0, "kid": 0.1,
                                                                    "precision": 0.5, "recall": 0.5,
                                                                    "swd": {"32": 5.0, "16": 6.0}})
    pr = next(c for c in cells if c.table == "table2" and c.column == "precision")
    assert not pr.comparable and not pr.regression
    assert any("preset smoke" in n for n in pr.notes)
    assert any("features inception vs reported vgg16" in n for n in pr.notes)
    fid = next(c for c in cells if c.table == "table2" and c.column == "fid256_20M")
    assert any("FID mode clean vs reported legacy_pytorch" in n for n in fid.notes)
    assert any("num_fake 24 vs reported 50000" in n for n in fid.notes)
    # smoke SWD at 32 px has no level for the paper's 32 px column (it would be 8 px)
    swd32 = next(c for c in cells if c.table == "swd-pggan" and c.column == "swd32")
    assert swd32.verdict == "missing"
    avg = next(c for c in cells if c.table == "swd-pggan" and c.column == "swd_avg")
    assert avg.reproduced == pytest.approx(5.5)                   # mean of the levels present


def test_claims_hold_on_the_reported_numbers(cfg, tmp_path):
    cells, claims = _compare(cfg, tmp_path, "paper", [0], _paper_like_values(cfg, "paper"),
                             protocols=PAPER_PROTOCOLS)
    assert claims and all(c.reported == "consistent" for c in claims), [
        (c.id, c.reported) for c in claims if c.reported != "consistent"]
    assert all(c.margin > 0 for c in claims)
    # no claims CSV: compare judges nothing itself (one definition of "held": pegan claims')
    assert {c.reproduced for c in claims} == {"not tested"}


def test_claim_not_held_and_not_comparable(cfg, tmp_path):
    base = _paper_like_values(cfg, "paper")

    def value_of(ev, seed):
        values = base(ev, seed)
        if ev.experiment == "t2c" and "fid" in values:
            values["fid"] = 5.0 + 0.01 * seed          # no-padding row now beats (b)
        if ev.experiment == "swd-dcgan-a":
            return None                                 # DCGAN baseline missing
        return values

    _, claims = _compare(cfg, tmp_path, "paper", [0, 1, 2], value_of, protocols=PAPER_PROTOCOLS,
                         claims=True)
    by_id = {c.id: c for c in claims}
    pad = by_id["padding-stylegan2-fid"]
    assert pad.reproduced == "not held" and pad.reported == "consistent"
    assert pad.margin == pytest.approx(5.01 - 5.78)               # worse(c) - better(b), means
    assert by_id["padding-dcgan"].reproduced == "inconclusive"    # a row without values
    assert by_id["padding-dcgan"].reported == "consistent"
    assert by_id["spe-recovers-dcgan"].reproduced == "held"
    assert by_id["spe-recovers-dcgan"].p_holm >= by_id["spe-recovers-dcgan"].p
    assert compare.exit_status([], claims, "claims") == 1


def test_markdown_and_csv_outputs(cfg, tmp_path):
    cells, claims = _compare(cfg, tmp_path, "smoke", [0], lambda ev, s: {"fid": 10.0, "kid": 0.1})
    md, csv = tmp_path / "comparison.md", tmp_path / "comparison.csv"
    compare.write_outputs(cells, claims, "smoke", {}, md, csv)
    text = md.read_text()
    assert text.startswith("# pegan: reported vs reproduced (smoke preset)")
    assert "| claim |" in text and "## table2" in text
    frame = pd.read_csv(csv)
    assert len(frame) == len(cells)
    assert set(frame["verdict"]) <= {"within", "outside", "missing", "no reference", "no tolerance"}
    assert (tmp_path / "comparison-claims.csv").is_file()


def test_bad_claims_are_rejected(cfg):
    bad = copy.deepcopy(cfg)
    bad["claims"][0]["better"] = "z"
    errors = pconfig.check(bad)
    assert any("claims[0].better: 'z' is not a row of table2" in e for e in errors)
    bad = copy.deepcopy(cfg)
    bad["claims"][0]["column"] = "fid999"
    assert any("claims[0].column" in e for e in pconfig.check(bad))
