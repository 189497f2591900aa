"""The decoded cache of folder: sources, --skip-bad-images and --stream (issue 21)."""

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image

from genvision.cli import main
from genvision.data import DataConfig, load_dataset, prepare, split_indices
from genvision.data import files as files_mod
from genvision.data.stream import StreamedImages, StreamedImageSet
from genvision.errors import DataError


def make_folder(root, n_per_class=8, size=8, seed=0, ext="png"):
    """Two class sub-folders of random RGB images; returns the folder."""
    rng = np.random.default_rng(seed)
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(n_per_class):
            arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / cls / f"{i:03d}.{ext}")
    return root


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "imgs")


def entries(cache):
    return sorted(p for p in (cache / "decoded").iterdir() if p.is_dir())


def no_decoding(monkeypatch):
    def refuse(path):
        raise AssertionError(f"decoded {path} again")
    monkeypatch.setattr(files_mod, "_read_image", refuse)


def test_cache_hit_returns_the_same_arrays_without_decoding(folder, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = load_dataset(f"folder:{folder}", "all", cache_dir=cache)
    assert first.x.shape == (16, 3, 8, 8) and first.y.tolist() == [0] * 8 + [1] * 8
    no_decoding(monkeypatch)
    for split in ("all", "train", "test"):  # one entry serves every split
        again = load_dataset(f"folder:{folder}", split, cache_dir=cache)
        idx = split_indices(16, split)
        assert torch.equal(again.x, first.x[idx]) and torch.equal(again.y, first.y[idx])
    assert len(entries(cache)) == 1
    # the file is a plain .npy: NumPy maps it without genvision
    mapped = np.load(entries(cache)[0] / "x.npy", mmap_mode="r")
    assert np.array_equal(mapped, first.x.numpy())


def test_pixels_match_the_files(folder, tmp_path):
    ds = load_dataset(f"folder:{folder}", "all", cache_dir=tmp_path / "c")
    arr = np.asarray(Image.open(folder / "dog" / "003.png"))
    assert np.array_equal(ds.x[8 + 3].numpy().transpose(1, 2, 0), arr)


def test_a_changed_file_changes_the_key(tmp_path):
    # BMP: a rewritten file keeps its size, so only the modification time tells
    folder = make_folder(tmp_path / "bmp", ext="bmp")
    cache = tmp_path / "cache"
    before = load_dataset(f"folder:{folder}", "all", cache_dir=cache)
    target = folder / "cat" / "002.bmp"
    size = target.stat().st_size
    Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(target)
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a later mtime for sure
    assert target.stat().st_size == size
    after = load_dataset(f"folder:{folder}", "all", cache_dir=cache)
    assert len(entries(cache)) == 2
    assert (after.x[2] == 7).all() and not torch.equal(after.x[2], before.x[2])
    assert torch.equal(after.x[3:], before.x[3:])
    # other preprocessing is another entry too
    load_dataset(f"folder:{folder}", "all", image_size=4, cache_dir=cache)
    assert len(entries(cache)) == 3


@pytest.mark.parametrize("damage", ["truncate", "header", "meta"])
def test_a_damaged_cache_is_decoded_again(folder, tmp_path, damage, capsys):
    cache = tmp_path / "cache"
    good = load_dataset(f"folder:{folder}", "all", cache_dir=cache)
    entry = entries(cache)[0]
    x_path = entry / "x.npy"
    if damage == "truncate":
        with open(x_path, "r+b") as fh:
            fh.truncate(x_path.stat().st_size - 100)
    elif damage == "header":
        with open(x_path, "r+b") as fh:
            fh.write(b"garbage!")
    else:
        (entry / "meta.json").write_text("{")
    again = load_dataset(f"folder:{folder}", "all", cache_dir=cache)
    assert torch.equal(again.x, good.x) and torch.equal(again.y, good.y)
    assert "damaged" in capsys.readouterr().err
    assert x_path.stat().st_size == 256 + good.x.numel()


def add_bad_files(folder):
    (folder / "cat" / "bad1.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (folder / "dog" / "bad2.jpg").write_bytes(b"not a jpeg")


def test_by_default_the_first_bad_file_is_named_with_the_flag(folder, tmp_path):
    add_bad_files(folder)
    with pytest.raises(DataError, match=r"cannot read image .*bad1\.png.*; 2 of 18 images "
                                        r".*--skip-bad-images"):
        load_dataset(f"folder:{folder}", "all", cache_dir=tmp_path / "c")


def test_skip_bad_images_counts_them_in_the_protocol(folder, tmp_path, monkeypatch):
    add_bad_files(folder)
    cache = tmp_path / "c"
    with pytest.raises(DataError):
        load_dataset(f"folder:{folder}", "all", cache_dir=cache)
    no_decoding(monkeypatch)  # the failed run's decode is reused by the rerun
    cfg = DataConfig(data=f"folder:{folder}", split="all", skip_bad_images=True)
    prep = prepare(cfg, "rgb8", cache_dir=cache)
    assert prep.protocol["skipped_bad_images"] == 2
    assert prep.protocol["skipped_examples"] == ["cat/bad1.png", "dog/bad2.jpg"]
    assert len(prep.x) == 16 and prep.y.tolist() == [0] * 8 + [1] * 8


def test_unreadable_everything_is_one_error(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.png").write_bytes(b"nope")
    with pytest.raises(DataError, match="none of the 1 images"):
        load_dataset(f"folder:{tmp_path / 'd'}", "all", cache_dir=tmp_path / "c",
                     skip_bad_images=True)


def test_streamed_batches_equal_the_in_memory_ones(folder, tmp_path):
    cache = tmp_path / "c"
    base = DataConfig(data=f"folder:{folder}", split="train")
    mem = prepare(base, "rgb8", cache_dir=cache)
    cfg = DataConfig(data=f"folder:{folder}", split="train", stream=True)
    streamed = prepare(cfg, "rgb8", cache_dir=cache)
    assert isinstance(streamed.x, StreamedImages) and isinstance(streamed.train, StreamedImageSet)
    assert streamed.x.shape == mem.x.shape and len(streamed.x) == len(mem.x)
    assert torch.equal(streamed.y, mem.y) and streamed.protocol == mem.protocol
    idx = torch.randperm(len(mem.x), generator=torch.Generator().manual_seed(0))[:5]
    assert torch.equal(streamed.x[idx], mem.x[idx])
    assert torch.equal(streamed.x[:3], mem.x[:3]) and torch.equal(streamed.x[2], mem.x[2])
    assert torch.equal(streamed.x[[4, 4, 1]], mem.x[[4, 4, 1]])  # repeats, any order
    sub = streamed.train.subset([3, 0])
    assert torch.equal(sub.batch([0, 1]), mem.train.x[[3, 0]])
    assert torch.equal(sub.to_float(), mem.train.subset([3, 0]).to_float())
    # a validation set streams too, unless static bits need the whole split in memory
    assert isinstance(prepare(cfg, "rgb8", for_eval=True, cache_dir=cache).x, StreamedImages)
    static = prepare(cfg, "binary", for_eval=True, cache_dir=cache)
    assert isinstance(static.x, torch.Tensor) and static.protocol["binarize"]["scheme"] == "static"


def test_stream_refuses_static_bits_and_non_folder_sources(folder, tmp_path):
    cfg = DataConfig(data=f"folder:{folder}", stream=True, binarize="static")
    with pytest.raises(DataError, match="--stream cannot binarise statically"):
        prepare(cfg, "binary", cache_dir=tmp_path / "c")
    with pytest.raises(DataError, match="--stream reads folder: sources"):
        load_dataset("digits", "train", stream=True)


def test_training_streams_from_the_cache(folder, tmp_path):
    out = tmp_path / "run"
    argv = ["train", "vae", "--data", f"folder:{folder}", "--stream", "--steps", "2",
            "--out", str(out), "--latent-dim", "2", "--hidden", "4", "4", "--fc-dim", "8",
            "--res-blocks", "0", "--ar-layers", "1", "--ar-channels", "4",
            "--batch-size", "4", "--no-progress"]
    assert main(argv) == 0
    assert (out / "run.json").is_file()


def test_concurrent_loaders_decode_once(folder, tmp_path, monkeypatch):
    # two DDP ranks (or two runs) asking at once: one decodes, the other waits for it
    calls = []
    real = files_mod._read_image

    def slow_read(path):
        calls.append(path)
        time.sleep(0.005)
        return real(path)

    monkeypatch.setattr(files_mod, "_read_image", slow_read)
    cache = tmp_path / "c"
    with ThreadPoolExecutor(2) as pool:
        sets = list(pool.map(lambda _: load_dataset(f"folder:{folder}", "all", cache_dir=cache),
                             range(2)))
    assert len(calls) == 16 and torch.equal(sets[0].x, sets[1].x)
    assert len(entries(cache)) == 1
    assert not [p for p in (cache / "decoded").iterdir() if ".tmp-" in p.name]


def test_a_crashed_build_leaves_nothing_that_is_used(folder, tmp_path):
    cache = tmp_path / "c"
    good = load_dataset(f"folder:{folder}", "all", cache_dir=cache)
    entry = entries(cache)[0]
    shutil.rmtree(entry)
    stale = entry.with_name(entry.name + ".tmp-crashed")  # what a killed decode leaves
    stale.mkdir()
    (stale / "x.npy").write_bytes(b"half")
    again = load_dataset(f"folder:{folder}", "all", cache_dir=cache)
    assert torch.equal(again.x, good.x) and not stale.exists()
