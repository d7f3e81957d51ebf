"""Every smoke-preset experiment of Table 2 and Table 5 (incl. the hi-res rows) trains on CPU:
a few iterations at each of its scales, through the loop with checkpoints and a snapshot."""

import dataclasses

import pytest
import torch

from pegan import config as pconfig
from pegan.data.prepare import prepare
from pegan.train.budget import RESUME_EXIT_STATUS
from pegan.train.checkpoint import CheckpointStore, state_digest
from pegan.train.logs import read_jsonl
from pegan.train.loop import RunOptions, train

torch.set_num_threads(1)
CFG = pconfig.load()
EXPERIMENTS = sorted({row["experiment"] for t in ("table2", "table5", "table5-hires")
                      for row in CFG["tables"][t]["rows"]})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root, paths = tmp_path_factory.mktemp("data"), {}

    def get(res):
        if res not in paths:
            paths[res] = root / f"syn-{res}.zip"
            prepare("syn", {"kind": "synthetic"}, resolution=res, num=8, out=paths[res])
        return paths[res]
    return get


def test_every_table_experiment_is_covered():
    assert {"t2a", "t2e", "t5b", "t5k", "t5f-896", "t5f-1024"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_smoke_experiment_trains(name, data, tmp_path):
    spec = pconfig.resolve(CFG, name, "smoke")
    n = len(spec.scales)
    iterations = 2 * n
    spec = dataclasses.replace(spec, total_kimg=50 * spec.batch / 1000)
    # lazy regularisers at every other iteration; the uniform draw spreads the MS-PIE scales
    settings = {"r1_interval": 2, "pl_interval": 2, "scale_sampling": "official-uniform"}
    ckpt = tmp_path / "ckpt"
    code = train(spec, RunOptions(checkpoint_dir=ckpt, data=data(max(spec.scales)), seed=0,
                                  settings=settings, progress=False, stop_after=iterations,
                                  checkpoint_every=1, keep_checkpoints=100,
                                  log_every=1))
    assert code == RESUME_EXIT_STATUS
    records = read_jsonl(ckpt / "train.jsonl")
    assert len(records) == iterations
    for r in records:
        assert all(torch.isfinite(torch.tensor(r[k])) for k in ("D_loss", "G_loss"))
        assert set(map(int, r["scales"])) <= set(spec.scales)
    store = CheckpointStore(ckpt)
    first = torch.load(store.path_for(1), weights_only=True)["recipe"]["modules"]
    last = torch.load(store.latest(), weights_only=True)["recipe"]["modules"]
    assert state_digest(first["G"]) != state_digest(last["G"])
    assert state_digest(first["D"]) != state_digest(last["D"])


@pytest.mark.parametrize("name", ["t5f", "t5h", "t5f-1024"])
def test_mspie_experiment_trains_at_each_scale(name, monkeypatch):
    """Force each scale in turn through the recipe (padding, no padding, G C1 / D C2)."""
    from pegan.train.recipe import TrainContext
    from pegan.train.stylegan2 import StyleGAN2Recipe, StyleGAN2Settings

    spec = pconfig.resolve(CFG, name, "smoke")
    recipe = StyleGAN2Recipe(spec, TrainContext(torch.device("cpu"), 0),
                             StyleGAN2Settings(r1_interval=1, pl_interval=1, pl_scale="drawn"))
    real = torch.rand(spec.batch, 3, max(spec.scales), max(spec.scales)) * 2 - 1
    for i, scale in enumerate(spec.scales):
        monkeypatch.setattr(recipe, "draw_scale", lambda s=scale: s)
        out = recipe.step(real, i)
        assert out.info["scale"] == scale
        assert {"D_loss", "G_loss", "R1", "PL"} <= set(out.losses)
        assert all(torch.isfinite(v) for v in out.losses.values())
