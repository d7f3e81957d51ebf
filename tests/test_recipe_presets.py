"""Per-preset training recipes: `presets.<p>.train.<family>` settings apply to their preset's
runs (under `pegan train --set`), never to `paper`, and a wrong key or type is one line."""

from __future__ import annotations

import copy
import dataclasses
import math
import subprocess
import sys

import pytest
import torch
import yaml

from pegan import config as pconfig
from pegan.errors import ConfigError
from pegan.train import check_settings, recipe_class, settings_for
from pegan.train.recipe import TrainContext


def test_paper_trains_every_experiment_with_the_official_values(cfg):
    assert not cfg["presets"]["paper"].get("train")
    for name in cfg["experiments"]:
        spec = pconfig.resolve(cfg, name, "paper")
        assert spec.train == {}
        assert settings_for(spec) == recipe_class(spec.arch).Settings(), name


def test_a_presets_settings_reach_every_run_of_its_family_and_no_other(cfg):
    presets = {p: v.get("train") or {} for p, v in cfg["presets"].items()}
    assert presets["mini"], "the mini preset has its laptop recipe"
    for preset, families in presets.items():
        for name, exp in cfg["experiments"].items():
            spec = pconfig.resolve(cfg, name, preset)
            settings = dataclasses.asdict(settings_for(spec))
            official = dataclasses.asdict(recipe_class(spec.arch).Settings())
            ours = families.get(spec.arch, {})
            for key, value in settings.items():
                assert value == ours.get(key, official[key]), (preset, name, key)


def test_set_overrides_the_preset_which_overrides_the_default(cfg):
    spec = pconfig.resolve(cfg, "t2b", "mini")
    assert spec.train["g_lr"] != recipe_class("stylegan2").Settings().g_lr
    assert settings_for(spec).g_lr == spec.train["g_lr"]
    assert settings_for(spec, {"g_lr": "0.5"}).g_lr == 0.5


@pytest.mark.parametrize("values, fragment", [
    ({"r1_gama": 1.0}, "unknown training setting 'r1_gama'"),
    ({"r1_gamma": "ten"}, "r1_gamma='ten'"),
    ({"r1_interval": 1.5}, "r1_interval=1.5"),
])
def test_a_wrong_preset_setting_is_one_line(cfg, values, fragment):
    broken = copy.deepcopy(cfg)
    broken["presets"]["mini"]["train"] = {"stylegan2": values}
    with pytest.raises(ConfigError) as err:
        check_settings(broken)
    message = str(err.value)
    assert message.startswith("presets.mini.train.stylegan2: ") and fragment in message
    assert "\n" not in message


def test_pegan_validate_refuses_a_wrong_preset_setting(tmp_path):
    raw = yaml.safe_load(pconfig.DEFAULT_CONFIG.read_text())
    raw["presets"]["mini"]["train"]["dcgan"] = {"learning_rate": 0.1}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = subprocess.run([sys.executable, "-m", "pegan.cli", "validate", "--config", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "presets.mini.train.dcgan: unknown training setting" in lines[0]


def test_the_training_hash_is_the_resolved_settings_not_the_preset_section(cfg):
    """Moving a value from `--set` into the preset keeps a run's checkpoints valid."""
    from pegan.train.loop import _UNHASHED_SPEC_FIELDS

    assert "train" in _UNHASHED_SPEC_FIELDS


def test_ema_ramp_up_and_half_life_in_run_images(cfg, one_thread):
    from pegan.train.ema import ema_momentum

    spec = pconfig.resolve(cfg, "t2b", "smoke")
    ctx = TrainContext(torch.device("cpu"), 0)
    cls = recipe_class("stylegan2")
    official = cls(spec, ctx, settings_for(spec))
    # official: the paper's 10 kimg half-life in paper images, 32 images per update, no ramp
    paper_half_life = 10.0 / 1000 * spec.kimg_per_mimg
    assert official.ema_beta(0) == official.ema_beta(500) == ema_momentum(paper_half_life, 32)
    ramped = cls(spec, ctx, settings_for(spec, {"ema_kimg": "2.0", "ema_rampup": "0.05",
                                                "ema_nimg_per_step": "4"}))
    assert ramped.ema_beta(0) == 0.0                       # G_ema starts as G
    seen_kimg = 100 * spec.batch / 1000
    assert math.isclose(ramped.ema_beta(100), 0.5 ** (4 / (seen_kimg * 0.05 * 1000)))
    late = int(2.0 / 0.05 * 1000 / spec.batch) + 1         # past the ramp-up
    assert math.isclose(ramped.ema_beta(late), 0.5 ** (4 / 2000))
