"""Extending pegan, as the README's "Extending pegan" section says: a metric is one file, an
encoding is one registered function; each plus config rows, and nothing else changes.

Each test writes its extension as a module of its own in a temporary folder, imports it (as
pegan would import a module of ``pegan/metrics/``) and checks that the rest of pegan picks it
up: the schema, the plan, ``pegan evaluate``, the tables, ``pegan compare``, training.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import json
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

from pegan import compare, encodings, plan, tables
from pegan import config as pconfig
from pegan.data.prepare import prepare
from pegan.evaluate import evaluate
from pegan.metrics import registry
from pegan.metrics.images import ImageSet

TOY_METRIC = '''
"""Mean brightness of the fakes: a toy metric in one file."""

from pegan.metrics.registry import Output, register


@register("brightness", version="brightness-1", description="mean pixel value of the fakes",
          outputs=(Output("brightness", "mean uint8 value / 255", lower_is_better=False),),
          samples="swd")
class Brightness:
    def __init__(self, ctx, num):
        self.num, self.total, self.count = num, 0.0, 0

    def add(self, images, features):
        self.total += float(images.double().sum()) / 255.0
        self.count += images.numel()

    def finish(self):
        return {"brightness": self.total / self.count}, {"network": None, "num_fake": self.num,
                                                          "num_real": 0}
'''

TOY_ENCODING = '''
"""A radial positional encoding (distance to the centre, in [0, 1]): one function."""

import torch

from pegan.encodings import register_encoding


@register_encoding("radial", channels=lambda dim: 1, resolution_free=True,
                   description="distance to the canvas centre")
def radial(height, width, *, dim, centered, dtype, device):
    ys = torch.linspace(-1, 1, height, dtype=dtype, device=device)[:, None]
    xs = torch.linspace(-1, 1, width, dtype=dtype, device=device)[None, :]
    return (torch.sqrt(xs ** 2 + ys ** 2) / 2 ** 0.5)[None]
'''


def _import(tmp_path, name: str, source: str, monkeypatch):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)
    return importlib.import_module(name)


@pytest.fixture
def toy_metric(tmp_path, monkeypatch):
    registry.load_builtin()
    before = dict(registry._REGISTRY)
    _import(tmp_path, "pegan_toy_metric", TOY_METRIC, monkeypatch)
    yield registry.get("brightness")
    registry._REGISTRY.clear()
    registry._REGISTRY.update(before)


@pytest.fixture
def toy_encoding(tmp_path, monkeypatch):
    before = dict(encodings.ENCODINGS)
    _import(tmp_path, "pegan_toy_encoding", TOY_ENCODING, monkeypatch)
    yield encodings.encoding("radial")
    encodings.ENCODINGS.clear()
    encodings.ENCODINGS.update(before)


def _with_toy_table(cfg: dict) -> dict:
    """The shipped config plus one table whose column is the toy metric (and a tolerance)."""
    raw = copy.deepcopy(cfg)
    raw["tables"] = {"toy": {
        "title": "Toy brightness", "reported": "toy.csv",
        "columns": [{"key": "bright", "label": "Brightness", "metric": "brightness",
                     "scale": 128, "snapshot": "final"}],
        "rows": [{"id": "a", "label": "DCGAN", "experiment": "swd-dcgan-a"},
                 {"id": "b", "label": "DCGAN, no padding", "experiment": "swd-dcgan-b"}]}}
    raw["claims"] = []
    for preset in raw["presets"].values():
        preset.pop("claims", None)
    raw["tolerances"] = {**raw.get("tolerances", {}), "brightness": {"abs": 0.01, "rel": 0}}
    return pconfig.validate(raw)


def test_a_metric_in_one_file_is_evaluated_tabulated_and_compared(toy_metric, cfg, tmp_path):
    # the schema, the plan and the table know it from its registration alone
    assert "brightness" in pconfig.load_schema()["$defs"]["column"]["properties"]["metric"]["enum"]
    config = _with_toy_table(cfg)
    cells = plan.cells(config, "smoke")
    assert {c.evaluation.metricset for c in cells} == {"brightness"}

    # pegan evaluate runs it on a set of fakes
    fakes = tmp_path / "fakes.zip"
    prepare("syn", {"kind": "synthetic"}, resolution=32, num=6, out=fakes)
    result = evaluate(fakes, scale=32, metrics="brightness", real=fakes, samples={"swd": 6},
                      seed=0, device="cpu")
    pixels = np.concatenate([b.numpy() for b in ImageSet(fakes).batches(6)])
    assert result["values"]["brightness"] == pytest.approx(pixels.mean() / 255.0)
    prot = result["protocol"]
    assert prot["per_metric"]["brightness"]["version"] == "brightness-1"
    assert prot["units"]["brightness"] == "mean uint8 value / 255"

    # the table reads it, the comparison judges it with its direction (higher is better)
    files = []
    for cell in cells:
        path = tmp_path / plan.metrics_path("metrics", cell.evaluation.experiment, 0,
                                            cell.evaluation)
        path.parent.mkdir(parents=True, exist_ok=True)
        value = result["values"]["brightness"] + (0.0 if cell.row == "a" else -0.1)
        path.write_text(json.dumps({"values": {"brightness": value}, "protocol": prot}))
        files.append(path)
    frame, prov = tables.build_table(config, "toy", files, "smoke")
    got = frame.set_index("row")["bright"]
    assert got["a"] == pytest.approx(result["values"]["brightness"])
    reported = pd.DataFrame({"row": ["a", "b"], "bright": [got["a"], got["a"]]})
    results = compare.compare_table(config, "toy", frame, prov, reported, None, "paper")
    by_row = {r.row: r for r in results}
    assert by_row["a"].verdict == "within"
    assert by_row["b"].verdict == "outside" and by_row["b"].delta < 0
    assert not tables.lower_is_better("brightness")


def test_an_encoding_in_one_place_trains_and_evaluates_at_smoke(toy_encoding, cfg, tmp_path,
                                                               one_thread):
    raw = copy.deepcopy(cfg)
    raw["experiments"]["toy-radial"] = {**cfg["experiments"]["swd-dcgan-c"], "head": "radial"}
    config = pconfig.validate(raw)           # the schema's head enum includes the new encoding
    assert "radial" in pconfig.load_schema()["$defs"]["experiment"]["properties"]["head"]["enum"]
    spec = pconfig.resolve(config, "toy-radial", "smoke")
    assert spec.switches["head"] == "radial"

    from pegan.models import build_models
    from pegan.train.loop import RunOptions, train

    G, _, _, _ = build_models(spec)
    torch.testing.assert_close(G.grid, toy_encoding.render(4, 4, dim=0, centered=False,
                                                          dtype=torch.float32, device=None))
    data = tmp_path / "data.zip"
    prepare("syn", {"kind": "synthetic"}, resolution=spec.resolution, num=8, out=data)
    snapshot = tmp_path / "final.pt"
    spec = dataclasses.replace(spec, total_kimg=4 * spec.batch / 1000)
    assert train(spec, RunOptions(checkpoint_dir=tmp_path / "ckpt", data=data, out=snapshot,
                                  progress=False, device="cpu")) == 0
    result = evaluate(snapshot, scale=spec.resolution, metrics="swd-structure", real=data,
                      samples={"swd": 8}, seed=0, device="cpu")
    assert set(result["values"]) == {"swd", "structure", "diversity", "patch_swd"}
    assert result["protocol"]["experiment"] == "toy-radial"


def test_schema_lists_come_from_the_code(cfg):
    """One source for every list of allowed values: the schema's are the code's."""
    from pegan.device import DEVICES
    from pegan.nn.padding import SINGAN_PADDINGS, UPSAMPLE_KINDS

    schema = pconfig.load_schema()
    exp = schema["$defs"]["experiment"]["properties"]
    assert exp["arch"]["enum"] == list(pconfig.FAMILIES)
    assert exp["head"]["enum"] == list(encodings.all_heads())
    assert exp["head_mode"]["enum"] == list(encodings.HEAD_MODES)
    assert exp["upsample"]["enum"] == list(UPSAMPLE_KINDS)
    assert {"enum": list(SINGAN_PADDINGS)} in exp["padding"]["oneOf"]
    assert schema["$defs"]["preset"]["properties"]["device"]["enum"] == list(DEVICES)
    assert schema["$defs"]["column"]["properties"]["metric"]["enum"] == list(registry.outputs())
    settings = schema["properties"]["metrics"]["properties"]
    assert {k: v["default"] for k, v in settings.items()} == registry.default_settings()
    # the filled config carries exactly the registered settings and the schema's defaults
    assert cfg["metrics"] == registry.default_settings()
    assert cfg["presets"]["smoke"]["singan"]["scale_factor"] == 0.75
    # the per-family allowed values agree with what the models accept
    for family in pconfig.FAMILIES:
        heads = pconfig.allowed_values(family)["head"]
        assert heads[0] == pconfig.SWITCHES[family]["head"]
        assert set(heads[1:]) == set(encodings.ENCODINGS)


def test_the_metric_registry_drives_plan_and_tables():
    outputs = registry.outputs()
    assert [m for m in registry.metrics() if m in ("fid", "kid", "pr")] == ["fid", "kid", "pr"]
    assert registry.metric_set({"pr"}) == "fid-kid-pr"        # FID/KID share the pass
    # the clean column beside a legacy FID joins the same job (and the same fakes)
    assert registry.metric_set({"fid", "fidclean", "pr"}) == "fid-kid-fidclean-pr"
    assert registry.owner("fid_clean").name == "fidclean"
    assert registry.metric_set({"swd"}) == "swd"
    assert registry.owner("recall").name == "pr"
    assert outputs["precision"].percent and not outputs["fid"].percent
    assert outputs["swd"].levels and outputs["fid"].lower_is_better
    assert not tables.lower_is_better("structure")
    assert registry.get("structure").singan and not registry.get("fid").singan
