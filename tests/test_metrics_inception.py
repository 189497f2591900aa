"""Tests of the FID Inception-v3: architecture vs the published weight file, feature shapes,
grey handling, save/load round trips and every way a weight file can be wrong.

The real weights cannot be downloaded here, so a randomly initialised network stands in for
them. Full 299x299 forwards are slow on CPU: every batch has 2 images and the number of
forwards is kept to five.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from genvision.errors import CheckpointError, UserError
from genvision.metrics.inception import INCEPTION_DIM, FIDInceptionV3, load_inception

# Parameter count derived independently of our code: torchvision's Inception-v3 metadata
# gives 27,161,264 parameters for the model with AuxLogits and 1000 classes. The FID graph
# drops AuxLogits and has 1008 classes.
TORCHVISION_INCEPTION_PARAMS = 27_161_264
AUX_PARAMS = (
    768 * 128 + 2 * 128  # AuxLogits.conv0: 1x1 conv 768->128 (no bias) + BN weight/bias
    + 128 * 768 * 5 * 5 + 2 * 768  # AuxLogits.conv1: 5x5 conv 128->768 + BN
    + 768 * 1000 + 1000  # AuxLogits.fc
)
FC_EXTRA = 8 * INCEPTION_DIM + 8  # fc grows from 1000 to 1008 outputs
FID_INCEPTION_PARAMS = TORCHVISION_INCEPTION_PARAMS - AUX_PARAMS + FC_EXTRA  # 23,850,960
CONV_LAYERS = 94  # 5 stem + 3x7 (A) + 4 (6a) + 4x10 (C) + 6 (7a) + 2x9 (E)


def _randomise(net: FIDInceptionV3, seed: int = 0) -> FIDInceptionV3:
    """He-initialised convs keep activations O(1) through 94 layers (PyTorch's default init
    shrinks them to ~1e-8), and random BatchNorm statistics make buffers matter, so a
    round trip that dropped them would change the features."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, nn.Conv2d):
                fan_in = mod.weight[0].numel()
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen)
                                 * (2.0 / fan_in) ** 0.5)
            elif isinstance(mod, nn.BatchNorm2d):
                n = mod.num_features
                mod.weight.copy_(0.8 + 0.4 * torch.rand(n, generator=gen))
                mod.bias.copy_(0.1 * torch.randn(n, generator=gen))
                mod.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                mod.running_var.copy_(0.5 + torch.rand(n, generator=gen))
                mod.num_batches_tracked.fill_(7)
    return net.eval()


@pytest.fixture(scope="module")
def net() -> FIDInceptionV3:
    return _randomise(FIDInceptionV3())


@pytest.fixture(scope="module")
def grey28() -> torch.Tensor:
    return torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def feats28(net, grey28) -> torch.Tensor:
    with torch.no_grad():
        return net.features(grey28)


@pytest.fixture(scope="module")
def files(net, tmp_path_factory) -> dict[str, Path]:
    """The random network saved the two supported ways."""
    root = tmp_path_factory.mktemp("inception")
    state = net.state_dict()
    paths = {"safetensors": root / "fid.safetensors", "pth": root / "fid.pth"}
    save_file({k: v.contiguous() for k, v in state.items()}, str(paths["safetensors"]))
    torch.save(state, paths["pth"])
    return paths


# --- architecture --------------------------------------------------------------------------


def test_parameter_count_matches_the_published_architecture(net):
    assert FID_INCEPTION_PARAMS == 23_850_960
    assert sum(p.numel() for p in net.parameters()) == FID_INCEPTION_PARAMS
    assert len(list(net.parameters())) == 3 * CONV_LAYERS + 2  # conv.weight, bn.{weight,bias}


def test_state_dict_names_and_shapes_are_those_of_the_weight_file(net):
    shapes = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert len(shapes) == 6 * CONV_LAYERS + 2  # conv, bn x5 (incl. num_batches_tracked), fc
    assert not [k for k in shapes if k.startswith("AuxLogits")]
    assert shapes["Conv2d_1a_3x3.conv.weight"] == [32, 3, 3, 3]
    assert shapes["Conv2d_1a_3x3.bn.running_mean"] == [32]
    assert shapes["Mixed_5b.branch1x1.conv.weight"] == [64, 192, 1, 1]
    assert shapes["Mixed_5b.branch_pool.conv.weight"] == [32, 192, 1, 1]
    assert shapes["Mixed_6b.branch7x7_2.conv.weight"] == [128, 128, 1, 7]
    assert shapes["Mixed_6e.branch7x7dbl_2.conv.weight"] == [192, 192, 7, 1]
    assert shapes["Mixed_7a.branch3x3_2.conv.weight"] == [320, 192, 3, 3]
    assert shapes["Mixed_7c.branch3x3_2a.conv.weight"] == [384, 384, 1, 3]
    assert shapes["Mixed_7c.branch3x3dbl_3b.bn.bias"] == [384]
    assert shapes["fc.weight"] == [1008, 2048]
    assert shapes["fc.bias"] == [1008]
    assert all(m.eps == 0.001 for m in net.modules() if isinstance(m, nn.BatchNorm2d))


def test_block_pools_follow_the_tensorflow_graph(net):
    """The pool branch is the last slice of each block's output; check it against the pool
    the TensorFlow graph uses, and that the torchvision pool would differ."""
    gen = torch.Generator().manual_seed(2)

    def pool_slice(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return block(x)[:, -block.branch_pool.conv.out_channels:]

    with torch.no_grad():
        x = torch.randn(1, 192, 9, 9, generator=gen)
        tf_avg = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        torch_avg = F.avg_pool2d(x, 3, stride=1, padding=1)
        assert torch.equal(pool_slice(net.Mixed_5b, x), net.Mixed_5b.branch_pool(tf_avg))
        assert not torch.allclose(net.Mixed_5b.branch_pool(torch_avg),
                                  net.Mixed_5b.branch_pool(tf_avg))
        x = torch.randn(1, 768, 5, 5, generator=gen)
        tf_avg = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        assert torch.equal(pool_slice(net.Mixed_6b, x), net.Mixed_6b.branch_pool(tf_avg))
        x = torch.randn(1, 1280, 4, 4, generator=gen)
        tf_avg = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        assert torch.equal(pool_slice(net.Mixed_7b, x), net.Mixed_7b.branch_pool(tf_avg))
        x = torch.randn(1, 2048, 4, 4, generator=gen)
        tf_max = F.max_pool2d(x, 3, stride=1, padding=1)
        assert torch.equal(pool_slice(net.Mixed_7c, x), net.Mixed_7c.branch_pool(tf_max))


# --- features ------------------------------------------------------------------------------


def test_grey_28x28_gives_2048_finite_features(feats28):
    assert feats28.shape == (2, INCEPTION_DIM)
    assert feats28.dtype == torch.float32
    assert torch.isfinite(feats28).all()
    assert feats28.std() > 1e-3  # not collapsed, so the comparisons below mean something
    assert not torch.allclose(feats28[0], feats28[1])


def test_grey_equals_grey_repeated_to_rgb_at_32x32(net):
    grey = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        from_grey = net(grey)
        from_rgb = net(grey.repeat(1, 3, 1, 1))
    assert from_rgb.shape == (2, INCEPTION_DIM)
    torch.testing.assert_close(from_grey, from_rgb, rtol=0, atol=0)


@pytest.mark.parametrize("shape", [(2, 2, 28, 28), (2, 4, 8, 8), (1, 28, 28), (28, 28)])
def test_bad_image_shapes_are_user_errors(net, shape):
    with pytest.raises(UserError, match="Inception features need"):
        net.features(torch.rand(shape))


def test_integer_images_are_user_errors(net):
    with pytest.raises(UserError, match="float images"):
        net.features(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))


# --- loading -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["safetensors", "pth"])
def test_round_trip_gives_identical_features(net, files, grey28, feats28, kind):
    loaded, info = load_inception(files[kind])
    assert not loaded.training
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    with torch.no_grad():
        torch.testing.assert_close(loaded.features(grey28), feats28, rtol=0, atol=0)
    digest = hashlib.sha256(files[kind].read_bytes()).hexdigest()[:16]
    assert info == {"name": "inception-v3-fid", "path": str(files[kind].resolve()),
                    "sha256": digest, "dim": INCEPTION_DIM}


def test_legacy_pth_format_loads(net, tmp_path):
    # The FID weights were released before torch 1.6 made zip the default .pth format.
    path = tmp_path / "legacy.pth"
    torch.save(net.state_dict(), path, _use_new_zipfile_serialization=False)
    loaded, _ = load_inception(path)
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_missing_batch_counters_still_load(net, tmp_path):
    # Converted files may lack BatchNorm's num_batches_tracked, which eval never uses.
    state = {k: v for k, v in net.state_dict().items() if "num_batches_tracked" not in k}
    path = tmp_path / "no_counters.safetensors"
    save_file(state, str(path))
    loaded, _ = load_inception(path)
    assert torch.equal(loaded.Mixed_7c.branch_pool.bn.running_var,
                       net.Mixed_7c.branch_pool.bn.running_var)


def test_missing_file_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="do not exist.*pt_inception-2015-12-05"):
        load_inception(tmp_path / "nope.pth")


def test_unknown_suffix_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "weights.npz"
    path.write_bytes(b"\0" * 16)
    with pytest.raises(CheckpointError, match="unknown file type"):
        load_inception(path)


@pytest.mark.parametrize("kind", ["safetensors", "pth"])
def test_truncated_file_is_a_checkpoint_error(files, tmp_path, kind):
    data = files[kind].read_bytes()
    path = tmp_path / files[kind].name
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=f"{path.name}.*pt_inception") as err:
        load_inception(path)
    assert "\n" not in str(err.value)


def test_garbage_bytes_are_a_checkpoint_error(tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"\x80\x02not a pickle")
    with pytest.raises(CheckpointError, match="not a readable PyTorch file"):
        load_inception(path)


def test_renamed_key_is_a_checkpoint_error(net, tmp_path):
    state = dict(net.state_dict())
    state["Mixed_7c.branch_pool.conv.weights"] = state.pop("Mixed_7c.branch_pool.conv.weight")
    path = tmp_path / "renamed.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        load_inception(path)
    msg = str(err.value)
    assert "1 missing keys (Mixed_7c.branch_pool.conv.weight)" in msg
    assert "1 unexpected keys (Mixed_7c.branch_pool.conv.weights)" in msg
    assert "\n" not in msg


def test_imagenet_fc_shape_is_rejected_with_a_torchvision_hint(net, tmp_path):
    state = dict(net.state_dict())
    state["fc.weight"] = torch.zeros(1000, INCEPTION_DIM)
    state["fc.bias"] = torch.zeros(1000)
    path = tmp_path / "imagenet.safetensors"
    save_file(state, str(path))
    with pytest.raises(CheckpointError, match=r"fc.weight \[1000, 2048\] != \[1008, 2048\]"
                       r".*torchvision's ImageNet Inception"):
        load_inception(path)


def test_unrelated_checkpoint_is_rejected(tmp_path):
    # 94 convs x 5 entries + fc x 2; the BatchNorm counters are filled in, not reported.
    path = tmp_path / "other.pt"
    torch.save(nn.Linear(3, 2).state_dict(), path)
    expected = r"472 missing keys.*2 unexpected keys \(bias, weight\)"
    with pytest.raises(CheckpointError, match=expected):
        load_inception(path)


def test_non_dict_and_non_tensor_entries_are_rejected(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(CheckpointError, match="holds a list"):
        load_inception(path)
    torch.save({"fc.weight": torch.zeros(1), "epoch": 3}, path)
    with pytest.raises(CheckpointError, match="entries epoch are not tensors"):
        load_inception(path)


UNPICKLED: list[str] = []


def _record_unpickling() -> dict:
    UNPICKLED.append("ran")
    return {}


class _Payload:
    """Unpickling this calls a function from the file: what a malicious .pth would do."""

    def __reduce__(self):
        return (_record_unpickling, ())


@pytest.mark.parametrize("zip_format", [True, False])
def test_pickled_code_is_refused_and_never_run(tmp_path, zip_format):
    path = tmp_path / "evil.pth"
    torch.save({"fc.weight": torch.zeros(1), "payload": _Payload()}, path,
               _use_new_zipfile_serialization=zip_format)
    with pytest.raises(CheckpointError, match="not tensors and was not unpickled"):
        load_inception(path)
    assert UNPICKLED == []
