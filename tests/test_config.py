"""The registry: the shipped config is valid and complete, bad configs fail naming the key."""

from __future__ import annotations

import copy

import pytest
import yaml

from pegan import config as pconfig
from pegan import plan
from pegan.errors import ConfigError


@pytest.fixture(scope="module")
def raw():
    return yaml.safe_load(pconfig.DEFAULT_CONFIG.read_text())


def test_shipped_config_is_valid(cfg):
    assert cfg["preset"] in cfg["presets"]
    assert {"smoke", "mini", "paper"} <= set(cfg["presets"])


def test_registry_covers_the_whole_paper(cfg):
    exps = cfg["experiments"]
    assert {f"t2{c}" for c in "abcde"} <= set(exps)
    assert {f"t5{c}" for c in "bcdefghijk"} | {"t5f-896", "t5f-1024"} <= set(exps)
    for fam in ("pggan", "dcgan"):
        assert {f"swd-{fam}-{c}" for c in "abc"} <= set(exps)
    singan = {n: e for n, e in exps.items() if e["arch"] == "singan"}
    assert {e["padding"] for e in singan.values()} >= {"zero", "interp"}
    assert {e["head"] for e in singan.values()} == {"noise", "csg", "spe"}
    assert {e.get("spe_dim") for e in singan.values() if e["head"] == "spe"} == {4, 8}


def test_table5_switches_match_the_official_configs(cfg):
    """Table 5 rows c-k (official-implementation.md section 3)."""
    expected = {  # row: (padding, head, head_mode, channel_multiplier)
        "t5c": (True, "const", "interp", 2), "t5d": (True, "csg", "interp", 2),
        "t5e": (True, "spe", "interp", 2), "t5f": (True, "spe", "expand", 2),
        "t5g": (True, "spe", "expand", 1), "t5h": (False, "const", "interp", 2),
        "t5i": (False, "csg", "interp", 2), "t5j": (False, "spe", "interp", 2),
        "t5k": (False, "spe", "expand", 2),
    }
    for name, (padding, head, mode, cm) in expected.items():
        sw = pconfig.resolve(cfg, name, "paper").switches
        assert (sw["padding"], sw["head"], sw["head_mode"], sw["channel_multiplier"]) == (
            padding, head, mode, cm), name
        assert sw["scales"] == [256, 384, 512]
        assert sw["upsample"] == ("conv-bilinear" if padding else "bilinear-conv")
        assert sw["discriminator"] == "multiscale"
    hi = pconfig.resolve(cfg, "t5f-1024", "paper").switches
    assert (hi["channel_multiplier"], hi["d_channel_multiplier"]) == (1, 2)
    assert hi["scales"] == [256, 512, 1024]


@pytest.mark.parametrize("preset,expected", [("smoke", [32, 48, 64]), ("paper", [256, 384, 512])])
def test_presets_keep_the_scale_ratios(cfg, preset, expected):
    spec = pconfig.resolve(cfg, "t5f", preset)
    assert spec.scales == expected
    assert [spec.head_increment(s) for s in spec.scales] == [0, 2, 4]   # official chosen_scale
    base = expected[0]
    assert pconfig.resolve(cfg, "t5f-896", preset).scales == [base, 2 * base, base * 896 // 256]
    assert pconfig.resolve(cfg, "t5b", preset).resolution == expected[0] * 2


def test_presets_never_change_switches(cfg):
    for name in cfg["experiments"]:
        switches = {p: pconfig.resolve(cfg, name, p).switches for p in cfg["presets"]}
        assert len({repr(s) for s in switches.values()}) == 1, name


def test_paper_schedule_and_budgets(cfg):
    spec = pconfig.resolve(cfg, "t2a", "paper")
    assert spec.batch == 24 and spec.total_kimg == pytest.approx(26400)
    assert spec.budget_kimg("10M") == pytest.approx(10000)
    assert spec.budget_kimg("final") == spec.total_kimg
    grid = spec.snapshot_grid()
    assert grid[0] == pytest.approx(240) and grid[-1] == pytest.approx(26400)
    hi = pconfig.resolve(cfg, "t5f-1024", "paper")
    assert (hi.batch, hi.total_kimg) == (16, pytest.approx(24000))


def test_smoke_budgets_are_proportional(cfg):
    spec = pconfig.resolve(cfg, "t2a", "smoke")
    assert spec.budget_kimg("10M") / spec.total_kimg == pytest.approx(10 / 26.4)
    assert spec.snapshot_grid()[-1] == pytest.approx(spec.total_kimg)


def _mutate(raw, path, value):
    cfg = copy.deepcopy(raw)
    node = cfg
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return cfg


_DELETE = object()

# (mutation path, new value, text that must appear in the message: the offending key)
BAD_CONFIGS = [
    (("experiments", "t2a", "paddding"), True, "experiments.t2a.paddding: unknown key"),
    (("experiments", "t2a", "padding"), "yes", "experiments.t2a.padding"),
    (("experiments", "t5c", "upsample"), "nearest", "experiments.t5c.upsample"),
    (("experiments", "t5c", "scales"), [256, 300, 512], "experiments.t5c.scales: 300 cannot be produced"),
    (("experiments", "t5c", "scales"), [384, 512], "experiments.t5c.scales: the smallest scale"),
    (("experiments", "t2a", "arch"), "biggan", "experiments.t2a.arch"),
    (("experiments", "t2a", "head"), "noise", "experiments.t2a.head: 'noise' is not available"),
    (("experiments", "swd-pggan-a", "head_mode"), "expand", "experiments.swd-pggan-a.head_mode: not a switch"),
    (("experiments", "t2a", "channel_multiplier"), 4, "experiments.t2a.channel_multiplier"),
    (("experiments", "t2a", "resolution"), 300, "experiments.t2a.resolution: 300 is not 4 x 2^k"),
    (("experiments", "t5c", "discriminator"), "standard", "experiments.t5c.discriminator"),
    (("tables", "table2", "rows", 0, "experiment"), "t2z", "tables.table2.rows[0].experiment: 't2z'"),
    (("tables", "table5", "rows", 0, "skip"), ["fid1024"], "tables.table5.rows[0].skip: 'fid1024'"),
    (("tables", "table2", "columns", 0, "metric"), "is", "tables.table2.columns[0].metric"),
    (("tables", "table2", "columns", 0, "snapshot"), "10k", "tables.table2.columns[0].snapshot"),
    (("tables", "swd-pggan", "columns", 0, "level"), _DELETE, "tables.swd-pggan.columns[0].level: required"),
    (("preset",), "huge", "preset: 'huge' is not a preset"),
    (("preset",), 3, "preset: 3 is not of type 'string'"),
    (("presets", "smoke", "seeds"), [], "presets.smoke.seeds"),
    (("presets", "smoke", "schedule", "kimg_per_mimg"), -1, "presets.smoke.schedule.kimg_per_mimg"),
    (("presets", "smoke", "schedule", "batch", "stylegan2"), "four", "presets.smoke.schedule.batch.stylegan2"),
    (("presets", "smoke", "resolution", "stylegan2"), 30, "presets.smoke.resolution.stylegan2: 30 maps"),
    (("presets", "smoke", "data", "ffhq"), "imagenet", "presets.smoke.data.ffhq: 'imagenet' is not a dataset"),
    (("presets", "smoke", "data", "celeba"), _DELETE, "presets.smoke.data: no dataset for role 'celeba'"),
    (("presets", "smoke", "overrides"), {"t9z": {"batch": 2}}, "presets.smoke.overrides.t9z: not an experiment"),
    (("presets", "smoke", "singan", "min_size"), 500, "presets.smoke.singan.min_size"),
    (("presets", "smoke", "samples"), _DELETE, "presets.smoke.samples: required key is missing"),
    (("datasets", "ffhq", "path"), _DELETE, "datasets.ffhq.path: required for kind 'folder'"),
    (("datasets", "ffhq", "kind"), "lmdb", "datasets.ffhq.kind"),
    (("metrics", "fid_mode"), "tf", "metrics.fid_mode"),
    (("tolerances", "ssim"), {"abs": 1, "rel": 0}, "tolerances.ssim: unknown key"),
]


@pytest.mark.parametrize("path,value,message", BAD_CONFIGS,
                         ids=[".".join(map(str, p)) + f"={v!r}"[:30] for p, v, _ in BAD_CONFIGS])
def test_bad_config_is_rejected_naming_the_key(raw, path, value, message):
    bad = _mutate(raw, path, value)
    with pytest.raises(ConfigError) as info:
        pconfig.validate(bad)
    text = str(info.value)
    assert message in text, text
    assert "\n" not in text   # one line, for the CLI


def test_there_are_at_least_ten_distinct_rejections():
    assert len({m.split(":")[0] for _, _, m in BAD_CONFIGS}) >= 10


def test_resolve_rejects_unknown_names(cfg):
    with pytest.raises(ConfigError, match="'t9' is not in the registry"):
        pconfig.resolve(cfg, "t9")
    with pytest.raises(ConfigError, match="preset: 'nope' is not a preset"):
        pconfig.resolve(cfg, "t2a", "nope")


def test_load_reports_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        pconfig.load(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("preset: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        pconfig.load(broken)


def test_plan_has_one_run_per_experiment_and_seed(cfg):
    for preset in cfg["presets"]:
        runs = plan.runs(cfg, preset)
        assert len(runs) == len(cfg["experiments"]) * len(cfg["presets"][preset]["seeds"])


def test_plan_evaluates_mspie_models_at_both_scales(cfg):
    evs = plan.evaluations(cfg, "smoke")
    t5f = {(e.snapshot, e.scale, e.metricset) for e in evs if e.experiment == "t5f"}
    assert ("25M", 64, "fid-kid-pr") in t5f        # FID@512 + P&R at 512 (64 px in smoke)
    assert ("25M", 32, "fid-kid-pr") in t5f        # FID@256 + P&R at 256
    assert ("20M", 64, "fid-kid") in t5f
    pggan = {(e.snapshot, e.scale, e.metricset) for e in evs if e.experiment == "swd-pggan-b"}
    # SWD table + layout (the layout tables' structure metrics and their eqt column share
    # one job: metrics of one group are evaluated together)
    assert pggan == {("final", 32, "swd"), ("final", 32, "structure-equivariance")}
    # the up-sampled baseline: t5f rendered at 256 (32 px) and resized to 512 (64 px)
    assert plan.Evaluation("t5f", "25M", 64, "fid-kid", 32) in evs
    path = plan.metrics_path("m", "t5f", 1, plan.Evaluation("t5f", "25M", 64, "fid-kid", 32))
    assert path == "m/t5f/seed1/25M-64px-from32px-fid-kid.json"
    assert plan.parse_metrics_path(path) == (plan.Evaluation("t5f", "25M", 64, "fid-kid", 32), 1)
    # SinGAN rows are evaluated at the training image's size
    assert plan.Evaluation("singan-csg", "final", 40, "structure-equivariance") in evs


def test_mini_plan_compares_final_snapshots_of_claim_rows_only(cfg):
    assert not plan.uses_snapshot_selection(cfg, "mini")
    cells = plan.claim_cells(cfg, "mini")
    assert {c.evaluation.snapshot for c in cells} == {"final"}
    tested = {c["id"] for c in plan.tested_claims(cfg, "mini")}
    assert tested == set(cfg["presets"]["mini"]["claims"])
    experiments = {c.evaluation.experiment for c in cells}
    assert {"t2b", "t2c", "t2d", "t2e", "t5b", "t5f", "swd-dcgan-a", "singan-no-pad-fish"} <= experiments
    assert not experiments & {"t2a", "t5c", "t5k", "singan-spe8"}        # not compared by a claim
    # no selection, but the FID learning curve at every snapshot (snapshot_fid) of the runs
    # with an FID column, at the FID columns' scales
    assert plan.selection_scales(cfg, "t2b", "mini") == [32]
    assert plan.selection_scales(cfg, "t5f", "mini") == [32, 64]
    assert plan.selection_scales(cfg, "singan-no-pad-fish", "mini") == []


def test_plan_cells_cover_every_reported_cell(cfg):
    cells = plan.cells(cfg, "paper")
    keys = {(c.table, c.row, c.column) for c in cells}
    for tname, table in cfg["tables"].items():
        for row in table["rows"]:
            for col in table["columns"]:
                present = (tname, str(row["id"]), col["key"]) in keys
                assert present != (col["key"] in row.get("skip", []))
