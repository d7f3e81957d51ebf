"""Datasets: synthetic aligned objects, bundled data, folders/zips, prepare-data, batch order."""

import io
import json
import logging
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from pegan.cli import main
from pegan.data import synthetic
from pegan.data.images import ImageArchive
from pegan.data.loader import ImageDataset, IterationSampler, real_batches
from pegan.data.prepare import prepare
from pegan.errors import PeganError


def _png(path, size=(20, 12), colour=(200, 10, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _zip_images(path):
    with zipfile.ZipFile(path) as zf:
        names = sorted(zf.namelist())
        return names, [np.asarray(Image.open(io.BytesIO(zf.read(n)))) for n in names]


# ------------------------------------------------------------------------- synthetic


def test_synthetic_is_deterministic_by_seed_and_index():
    a = synthetic.aligned_objects(6, 32, seed=0)
    assert a.shape == (6, 32, 32, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, synthetic.aligned_objects(6, 32, seed=0))
    # image i does not depend on how many images are drawn
    np.testing.assert_array_equal(a[:3], synthetic.aligned_objects(3, 32, seed=0))
    assert not np.array_equal(a, synthetic.aligned_objects(6, 32, seed=1))
    assert len({a[i].tobytes() for i in range(6)}) == 6


def test_synthetic_renders_the_same_image_at_any_resolution():
    small = synthetic.aligned_object(4, 32).astype(float)
    big = synthetic.aligned_object(4, 128).astype(float)
    pooled = big.reshape(32, 4, 32, 4, 3).mean(axis=(1, 3))
    assert np.abs(pooled - small).mean() < 6.0        # same picture, edges aside


def test_synthetic_layout_is_aligned():
    """Absolute position matters: eyes are dark and sit at the same place in every image."""
    imgs = synthetic.aligned_objects(64, 64).astype(float).mean(axis=3)   # [N, H, W]
    cy, cx = synthetic.HEAD_CENTRE[1], synthetic.HEAD_CENTRE[0]
    eye_y = int((cy + synthetic.EYE_OFFSET[1]) * 64)
    eye_x = int((cx - synthetic.EYE_OFFSET[0]) * 64)
    cheek_y = int((cy + 0.08) * 64)
    eyes, cheeks = imgs[:, eye_y, eye_x], imgs[:, cheek_y, eye_x]
    assert (eyes < cheeks).mean() > 0.9
    # the mean image has structure (the layout) that a shuffled-position dataset would not
    mean = imgs.mean(axis=0)
    assert mean[eye_y, eye_x] < mean[cheek_y, eye_x] - 40


# ---------------------------------------------------------------------- prepare-data


def test_prepare_synthetic_zip(tmp_path):
    out = tmp_path / "s.zip"
    assert main(["prepare-data", "--dataset", "syn", "--spec", '{"kind": "synthetic"}',
                 "--resolution", "24", "--num", "5", "--out", str(out)]) == 0
    names, imgs = _zip_images(out)
    assert names == [f"{i:08d}.png" for i in range(5)]
    assert all(im.shape == (24, 24, 3) for im in imgs)
    np.testing.assert_array_equal(imgs[2], synthetic.aligned_object(2, 24, seed=0))


def test_prepare_lfw_subset_keeps_what_exists(tmp_path, caplog):
    out = tmp_path / "lfw.zip"
    with caplog.at_level(logging.WARNING):
        n = prepare("lfw", {"kind": "lfw_subset"}, resolution=32, num=500, out=out)
    assert n == 200 and "fewer" in caplog.text
    names, imgs = _zip_images(out)
    assert len(names) == 200 and imgs[0].shape == (32, 32, 3)


def test_prepare_single_image_keeps_aspect(tmp_path):
    out = tmp_path / "coffee.zip"
    prepare("coffee", {"kind": "skimage", "image": "coffee"}, resolution=40, num=64, out=out)
    names, imgs = _zip_images(out)
    assert names == ["00000000.png"]
    assert imgs[0].shape == (27, 40, 3)                 # coffee is 400 x 600


def test_prepare_folder_recursive_crops_to_square(tmp_path):
    _png(tmp_path / "imgs" / "b" / "x.png", size=(30, 20))
    _png(tmp_path / "imgs" / "a.JPG", size=(20, 30), colour=(0, 0, 250))
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    out = tmp_path / "f.zip"
    n = prepare("f", {"kind": "folder", "path": str(tmp_path / "imgs")}, resolution=16, num=10,
                out=out)
    names, imgs = _zip_images(out)
    assert n == 2 and all(im.shape == (16, 16, 3) for im in imgs)
    assert imgs[0][..., 2].mean() > 200                 # sorted: a.JPG first (blue)


def test_missing_folder_says_what_to_download(tmp_path):
    spec = {"kind": "folder", "path": str(tmp_path / "data" / "ffhq"),
            "description": "FFHQ (https://github.com/NVlabs/ffhq-dataset)"}
    with pytest.raises(PeganError) as err:
        prepare("ffhq", spec, resolution=32, num=4, out=tmp_path / "o.zip")
    msg = str(err.value)
    assert "ffhq-dataset" in msg and str(tmp_path / "data" / "ffhq") in msg and "\n" not in msg
    assert not (tmp_path / "o.zip").exists()


def test_corrupt_image_error_names_the_file(tmp_path):
    _png(tmp_path / "imgs" / "good.png")
    (tmp_path / "imgs" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(PeganError, match="bad.png"):
        prepare("f", {"kind": "folder", "path": str(tmp_path / "imgs")}, resolution=8, num=4,
                out=tmp_path / "o.zip")
    zpath = tmp_path / "d.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("sub/broken.jpg", b"not a jpeg")
    with pytest.raises(PeganError, match=r"d\.zip:sub/broken\.jpg"):
        ImageDataset(zpath, 8)


def test_cli_error_is_one_line(tmp_path, capsys):
    spec = json.dumps({"kind": "folder", "path": str(tmp_path / "nope"), "description": "X"})
    code = main(["prepare-data", "--dataset", "x", "--spec", spec, "--resolution", "8",
                 "--num", "1", "--out", str(tmp_path / "o.zip")])
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1 and "nope" in err


# ------------------------------------------------------------------------ batches


def test_archive_and_dataset_read_zip_any_depth(tmp_path):
    out = tmp_path / "s.zip"
    prepare("syn", {"kind": "synthetic"}, resolution=16, num=7, out=out)
    ds = ImageDataset(out, 16)
    assert len(ds) == 7 and ds[3].shape == (3, 16, 16) and ds[3].dtype == torch.uint8
    np.testing.assert_array_equal(ds[3].permute(1, 2, 0).numpy(), synthetic.aligned_object(3, 16))
    lazy = ImageDataset(out, 16, preload=False)
    torch.testing.assert_close(lazy.batch(np.array([1, 5])), ds.batch(np.array([1, 5])))
    assert len(ImageArchive(out)) == 7


def test_sampler_epochs_cover_every_image_and_ranks_partition_the_batch():
    s = IterationSampler(num_images=10, batch=4, seed=3)
    seen = np.concatenate([s.global_batch(i)[0] for i in range(5)])   # 20 = 2 epochs
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))
    idx, flips = s.global_batch(2)
    parts = [s.rank_batch(2, r, 2) for r in range(2)]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), idx)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), flips)
    np.testing.assert_array_equal(s.global_batch(4)[0], IterationSampler(10, 4, 3).global_batch(4)[0])
    all_flips = np.concatenate([s.global_batch(i)[1] for i in range(200)])
    assert 0.4 < all_flips.mean() < 0.6
    assert not IterationSampler(10, 4, 3, flip=False).global_batch(1)[1].any()


def test_real_batches_resume_mid_stream_and_apply_flips(tmp_path):
    out = tmp_path / "s.zip"
    prepare("syn", {"kind": "synthetic"}, resolution=8, num=5, out=out)
    ds = ImageDataset(out, 8)
    s = IterationSampler(5, 3, seed=0)
    full = real_batches(ds, s, start_iteration=0)
    first = [next(full) for _ in range(4)]
    resumed = real_batches(ds, s, start_iteration=2)
    torch.testing.assert_close(next(resumed), first[2])
    idx, flips = s.global_batch(0)
    ref = ds.batch(idx).float() / 127.5 - 1
    ref[torch.from_numpy(flips)] = ref[torch.from_numpy(flips)].flip(-1)
    torch.testing.assert_close(first[0], ref)
    assert first[0].min() >= -1 and first[0].max() <= 1


def test_worker_processes_deliver_the_same_batches_without_touching_the_global_rng(tmp_path):
    out = tmp_path / "s.zip"
    prepare("syn", {"kind": "synthetic"}, resolution=8, num=5, out=out)
    ds = ImageDataset(out, 8, preload=False)
    s = IterationSampler(5, 2, seed=1)
    torch.manual_seed(0)
    expected_rng = torch.get_rng_state()
    it = real_batches(ds, s, start_iteration=3, workers=1)
    got = [next(it) for _ in range(3)]
    assert torch.equal(torch.get_rng_state(), expected_rng)
    ref = real_batches(ds, s, start_iteration=3)
    for g in got:
        torch.testing.assert_close(g, next(ref))
