"""The paper's numbers in results/reported/: complete, mapped to the registry, consistent."""

from __future__ import annotations

import pandas as pd
import pytest

from pegan import config as pconfig

ROOT = pconfig.REPO_ROOT


PEGAN_ONLY = {"layout", "singan", "mspie-upsampling"}    # measurements behind the claim tests


def _reported(table):
    return pd.read_csv(ROOT / table["reported"], dtype={"row": str})


def _paper_tables(cfg):
    return {name: t for name, t in cfg["tables"].items() if t.get("reported") is not None}


def test_every_paper_table_has_a_reported_csv(cfg):
    assert set(cfg["tables"]) - set(_paper_tables(cfg)) == PEGAN_ONLY
    for name, table in _paper_tables(cfg).items():
        assert (ROOT / table["reported"]).is_file(), name


def test_every_reported_row_maps_to_a_registry_experiment(cfg):
    for name, table in _paper_tables(cfg).items():
        df = _reported(table)
        rows = {str(r["id"]): r for r in table["rows"]}
        assert list(df["row"]) == list(rows), name          # same rows, paper order
        for row_id in df["row"]:
            assert rows[row_id]["experiment"] in cfg["experiments"], (name, row_id)


def test_reported_columns_are_the_table_columns_plus_provenance(cfg):
    for name, table in _paper_tables(cfg).items():
        df = _reported(table)
        keys = [c["key"] for c in table["columns"]]
        assert list(df.columns) == ["row", "label", *keys, "source"], name
        assert df["source"].str.len().min() > 10, name
        for key in keys:
            assert pd.api.types.is_numeric_dtype(df[key]), (name, key)


def test_empty_reported_cells_are_exactly_the_skipped_cells(cfg):
    for name, table in _paper_tables(cfg).items():
        df = _reported(table).set_index("row")
        for row in table["rows"]:
            for col in table["columns"]:
                empty = pd.isna(df.loc[str(row["id"]), col["key"]])
                assert empty == (col["key"] in row.get("skip", [])), (name, row["id"], col["key"])


@pytest.mark.parametrize("table", ["swd-pggan", "swd-dcgan"])
def test_swd_average_is_the_mean_of_the_printed_levels(cfg, table):
    df = _reported(cfg["tables"][table])
    mean = df[["swd128", "swd64", "swd32"]].mean(axis=1)
    assert ((mean - df["swd_avg"]).abs() < 0.006).all()


def test_table2_and_table5_share_the_baseline_run(cfg):
    """Table 5 (a) and Table 2 (a) are one run: same FID@256 at 20M, same experiment."""
    t2 = _reported(cfg["tables"]["table2"]).set_index("row")
    t5 = _reported(cfg["tables"]["table5"]).set_index("row")
    assert t2.loc["a", "fid256_20M"] == t5.loc["a", "fid256_20M"] == 5.62
    rows5 = {r["id"]: r["experiment"] for r in cfg["tables"]["table5"]["rows"]}
    rows2 = {r["id"]: r["experiment"] for r in cfg["tables"]["table2"]["rows"]}
    assert rows5["a"] == rows2["a"]


def test_mmgen_readme_numbers_match_table5(cfg):
    """The MMGeneration README (FID50k, P&R10k) equals Table 5's FID@512 25M for c-k."""
    readme = {"c": (3.35, 73.84, 55.77), "f": (2.93, 73.51, 57.32), "k": (4.17, 73.05, 51.07)}
    t5 = _reported(cfg["tables"]["table5"]).set_index("row")
    for row, (fid, p, r) in readme.items():
        assert (t5.loc[row, "fid512_25M"], t5.loc[row, "precision512"], t5.loc[row, "recall512"]) == (fid, p, r)
