"""Snapshots load with torch.load(weights_only=True): every registry experiment's snapshot
content round-trips, and a file with any other pickled object is refused."""

from __future__ import annotations

import pytest
import torch

from pegan import config as pconfig
from pegan.errors import PeganError
from pegan.models import build_models
from pegan.snapshot import FORMAT, load_snapshot, save_snapshot


@pytest.mark.parametrize("preset", ["smoke", "paper"])
def test_every_experiments_snapshot_loads_weights_only(cfg, tmp_path, preset):
    G = torch.nn.Linear(2, 3)
    for name in cfg["experiments"]:
        spec = pconfig.resolve(cfg, name, preset)
        with torch.device("meta"):              # constructor arguments only, no weights
            _, _, g_kwargs, _ = build_models(spec)
        path = tmp_path / f"{name}.pt"
        extra = {"seed": 0, "real": torch.zeros(3, 4, 4), "trained_stages": 2}
        save_snapshot(path, arch=spec.arch, experiment=name, G_kwargs=g_kwargs, G_ema=G,
                      kimg=1.5, spec=spec.to_dict(), extra=extra)
        snap = load_snapshot(path)
        assert snap["format"] == FORMAT and snap["G_kwargs"] == g_kwargs, name
        assert snap["spec"] == spec.to_dict() and snap["kimg"] == 1.5, name
        torch.testing.assert_close(snap["G_ema"]["weight"], G.weight.detach())


class _Arbitrary:
    pass


def test_a_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "arch": "stylegan2", "extra": {"x": _Arbitrary()}}, path)
    with pytest.raises(PeganError, match="cannot be read"):
        load_snapshot(path)
