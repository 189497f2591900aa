"""The FID Inception-v3 network, for users who have its standard weights on disk.

The Frechet Inception Distance (Heusel et al. 2017, https://arxiv.org/abs/1706.08500) is
only comparable across papers when it is computed with one particular network: the
TensorFlow graph ``inception-2015-12-05`` of Inception-v3 (Szegedy et al. 2016,
https://arxiv.org/abs/1512.00567), read out at its final average pool ("pool3", 2048
numbers per image). pytorch-fid distributes a converted copy of that graph's weights as
``pt_inception-2015-12-05-6726825d.pth``. We cannot download it and must not import
torchvision, so this module rebuilds the network in plain ``torch.nn`` with the module
names of that file, and ``--features inception:PATH`` loads it with strict key checking.

The TensorFlow graph differs from torchvision's ImageNet Inception-v3 in three ways, and
each one changes the features, so torchvision's weights are rejected rather than loaded:

* 1008 output classes instead of 1000 (``fc.weight`` is ``[1008, 2048]``);
* the 3x3 average pools inside the Inception blocks ignore padded zeros
  (TensorFlow's ``SAME`` pooling), i.e. ``count_include_pad=False``;
* the pool branch of the last block (``Mixed_7c``) is a 3x3 *max* pool, not an average.

Auxiliary classifier: pytorch-fid builds the model it loads this file into with
``aux_logits=False`` and then calls ``load_state_dict`` with the default ``strict=True``
(source: ``fid_inception_v3`` in mseitzer/pytorch-fid ``src/pytorch_fid/inception.py``),
so the file holds no ``AuxLogits.*`` keys, and this module has no AuxLogits either.

Public API::

    net, info = load_inception("pt_inception-2015-12-05-6726825d.pth")
    with torch.no_grad():
        feats = net.features(images)   # float [N, 1 or 3, H, W] in [0, 1] -> [N, 2048]
"""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import CheckpointError, UserError
from ..storage import load_tensors

__all__ = ["INCEPTION_DIM", "FIDInceptionV3", "load_inception"]

INCEPTION_DIM = 2048
"""Length of the pool3 feature vector that FID is computed on."""

NUM_CLASSES = 1008
"""Classes of the TensorFlow 2015-12-05 graph (1000 ImageNet classes plus unused slots)."""

INPUT_SIZE = 299
"""Images are resized to 299x299, the resolution the network was trained at."""

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
_WEIGHTS_FIX = (f"pass the pytorch-fid FID weights {WEIGHTS_FILE} "
                "or a .safetensors conversion of it")
_TORCH_SUFFIXES = (".pth", ".pt")


class _ConvBN(nn.Module):
    """Convolution without bias, BatchNorm (eps 1e-3, as in the TensorFlow graph), ReLU.

    The child names ``conv`` and ``bn`` are those of the weight file.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int | tuple[int, int],
                 stride: int = 1, padding: int | tuple[int, int] = 0):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _same_avg_pool(x: Tensor) -> Tensor:
    # TensorFlow's SAME average pool divides by the number of real pixels under the window,
    # so border outputs are not pulled towards zero by the padding.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _same_max_pool(x: Tensor) -> Tensor:
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


class _BlockA(nn.Module):
    """35x35 block (Mixed_5b/c/d): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1."""

    def __init__(self, c_in: int, pool_channels: int):
        super().__init__()
        self.branch1x1 = _ConvBN(c_in, 64, 1)
        self.branch5x5_1 = _ConvBN(c_in, 48, 1)
        self.branch5x5_2 = _ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _ConvBN(c_in, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, padding=1)
        self.branch_pool = _ConvBN(c_in, pool_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_same_avg_pool(x))
        return torch.cat([self.branch1x1(x), b5, b3, bp], dim=1)


class _ReductionB(nn.Module):
    """35x35 -> 17x17 grid reduction (Mixed_6a); identical in both Inception variants."""

    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3 = _ConvBN(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = _ConvBN(c_in, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([self.branch3x3(x), b3, bp], dim=1)


class _BlockC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (Mixed_6b..e)."""

    def __init__(self, c_in: int, c7: int):
        super().__init__()
        row, col = (1, 7), (7, 1)  # factorising 7x7 into 1x7 and 7x1 (paper, section 3.2)
        row_pad, col_pad = (0, 3), (3, 0)
        self.branch1x1 = _ConvBN(c_in, 192, 1)
        self.branch7x7_1 = _ConvBN(c_in, c7, 1)
        self.branch7x7_2 = _ConvBN(c7, c7, row, padding=row_pad)
        self.branch7x7_3 = _ConvBN(c7, 192, col, padding=col_pad)
        self.branch7x7dbl_1 = _ConvBN(c_in, c7, 1)
        self.branch7x7dbl_2 = _ConvBN(c7, c7, col, padding=col_pad)
        self.branch7x7dbl_3 = _ConvBN(c7, c7, row, padding=row_pad)
        self.branch7x7dbl_4 = _ConvBN(c7, c7, col, padding=col_pad)
        self.branch7x7dbl_5 = _ConvBN(c7, 192, row, padding=row_pad)
        self.branch_pool = _ConvBN(c_in, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3,
                      self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(_same_avg_pool(x))
        return torch.cat([self.branch1x1(x), b7, bd, bp], dim=1)


class _ReductionD(nn.Module):
    """17x17 -> 8x8 grid reduction (Mixed_7a); identical in both Inception variants."""

    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3_1 = _ConvBN(c_in, 192, 1)
        self.branch3x3_2 = _ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _ConvBN(c_in, 192, 1)
        self.branch7x7x3_2 = _ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _ConvBN(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], dim=1)


class _BlockE(nn.Module):
    """8x8 block with split 1x3 / 3x1 outputs (Mixed_7b, Mixed_7c).

    ``max_pool=True`` is the quirk of the TensorFlow graph's last block (Mixed_7c), whose
    pool branch is a max pool although the paper (and torchvision) use an average pool.
    """

    def __init__(self, c_in: int, *, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = _ConvBN(c_in, 320, 1)
        self.branch3x3_1 = _ConvBN(c_in, 384, 1)
        self.branch3x3_2a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _ConvBN(c_in, 448, 1)
        self.branch3x3dbl_2 = _ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _ConvBN(c_in, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        s = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(s), self.branch3x3_2b(s)], dim=1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], dim=1)
        pooled = _same_max_pool(x) if self.max_pool else _same_avg_pool(x)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], dim=1)


class FIDInceptionV3(nn.Module):
    """Inception-v3 as in TensorFlow's ``inception-2015-12-05`` graph, used for FID.

    Szegedy et al. 2016, https://arxiv.org/abs/1512.00567 (architecture); Heusel et al.
    2017, https://arxiv.org/abs/1706.08500 (FID on its pool3 features). Attribute names
    match pytorch-fid's weight file, so its state dict loads with ``strict=True``. The
    weights are random until loaded: use :func:`load_inception`.
    """

    def __init__(self) -> None:
        super().__init__()
        # Stem: 3x299x299 -> 192x35x35 (two stride-2 max pools live in _stem()).
        self.Conv2d_1a_3x3 = _ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = _ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = _ConvBN(80, 192, 3)
        self.Mixed_5b = _BlockA(192, pool_channels=32)  # -> 256x35x35
        self.Mixed_5c = _BlockA(256, pool_channels=64)  # -> 288x35x35
        self.Mixed_5d = _BlockA(288, pool_channels=64)  # -> 288x35x35
        self.Mixed_6a = _ReductionB(288)  # -> 768x17x17
        self.Mixed_6b = _BlockC(768, c7=128)
        self.Mixed_6c = _BlockC(768, c7=160)
        self.Mixed_6d = _BlockC(768, c7=160)
        self.Mixed_6e = _BlockC(768, c7=192)
        self.Mixed_7a = _ReductionD(768)  # -> 1280x8x8
        self.Mixed_7b = _BlockE(1280, max_pool=False)  # -> 2048x8x8
        self.Mixed_7c = _BlockE(2048, max_pool=True)  # -> 2048x8x8
        # The classifier is unused for FID; it exists so the weight file loads strictly.
        self.fc = nn.Linear(INCEPTION_DIM, NUM_CLASSES)

    def _stem(self, x: Tensor) -> Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        return F.max_pool2d(x, kernel_size=3, stride=2)

    def _blocks(self, x: Tensor) -> Tensor:
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a,
                      self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e,
                      self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return x

    def features(self, x: Tensor) -> Tensor:
        """pool3 features of images.

        Args:
            x: float ``[N, C, H, W]`` with values in [0, 1] and ``C`` 1 (grey, repeated to
                RGB) or 3. Any ``H, W``: images are resized to 299x299 bilinearly
                (``align_corners=False``, no antialiasing), exactly as pytorch-fid does,
                because the resize is part of the FID protocol.

        Returns:
            float ``[N, 2048]``: the final average pool, before the classifier.

        Call ``.eval()`` first (:func:`load_inception` does) and wrap in ``torch.no_grad()``;
        in training mode BatchNorm would use batch statistics and the features change.
        """
        _check_images(x)
        param = self.fc.weight
        x = x.to(device=param.device, dtype=param.dtype)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                          align_corners=False, antialias=False)
        x = 2.0 * x - 1.0  # the TensorFlow graph expects pixels in [-1, 1]
        x = self._blocks(self._stem(x))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: Tensor) -> Tensor:
        """Same as :meth:`features`: float ``[N, 1 or 3, H, W]`` in [0, 1] -> ``[N, 2048]``."""
        return self.features(x)


def _check_images(x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4:
        shape = list(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise UserError(f"Inception features need images of shape [N, C, H, W], got {shape}",
                        "pass a 4-D batch of images with values in [0, 1]")
    if x.shape[1] not in (1, 3):
        raise UserError(f"Inception features need 1 or 3 channels, got {x.shape[1]} "
                        f"(shape {list(x.shape)})",
                        "pass grey [N, 1, H, W] or RGB [N, 3, H, W] images")
    if not x.is_floating_point():
        raise UserError(f"Inception features need float images in [0, 1], got {x.dtype}",
                        "convert with images.float() / 255 first")


def load_inception(path: str | os.PathLike) -> tuple[FIDInceptionV3, dict[str, Any]]:
    """Load the FID Inception weights from a ``.pth``/``.pt`` or ``.safetensors`` file.

    ``.pth`` files are read with ``torch.load(weights_only=True)``, which refuses any
    pickled object that is not a tensor or plain container, so no code from the file runs.

    Args:
        path: pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` or a safetensors
            file with the same keys.

    Returns:
        ``(net, info)``: the network in eval mode on the CPU, and
        ``{"name": "inception-v3-fid", "path": resolved path, "sha256": first 16 hex digits
        of the file's SHA-256 (for cache keys), "dim": 2048}``.

    Raises:
        CheckpointError: the file is missing, unreadable, truncated, holds non-tensor
            pickled objects, or its keys or shapes are not those of the FID Inception.
    """
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise CheckpointError(f"Inception weights {resolved} do not exist", _WEIGHTS_FIX)
    state = _read_state_dict(resolved)
    net = FIDInceptionV3()
    _check_state_dict(resolved, state, net)
    net.load_state_dict(state, strict=True)
    net.eval()
    info = {"name": "inception-v3-fid", "path": str(resolved),
            "sha256": _sha256_prefix(resolved), "dim": INCEPTION_DIM}
    return net, info


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        try:
            raw: Any = load_tensors(path)
        except CheckpointError as exc:  # reword: the io fix speaks of run directories
            raise CheckpointError(exc.problem, _WEIGHTS_FIX) from None
    elif suffix in _TORCH_SUFFIXES:
        raw = _torch_load(path)
    else:
        raise CheckpointError(f"Inception weights {path} have an unknown file type "
                              f"'{suffix}' (expected .pth, .pt or .safetensors)", _WEIGHTS_FIX)
    return _as_tensor_dict(path, raw)


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not _refused_code(exc):  # a broken pickle stream, not a refused object
            raise CheckpointError(f"{path} is not a readable PyTorch file, it may be truncated "
                                  f"or corrupt ({_gist(exc)})", _WEIGHTS_FIX) from None
        raise CheckpointError(
            f"{path} holds pickled Python objects that are not tensors and was not "
            f"unpickled, since that could run code from the file ({_gist(exc)})", _WEIGHTS_FIX,
        ) from None
    # random bytes also make the unpickler index past its stacks or memo (IndexError,
    # KeyError): garbage either way, never a traceback
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError,
            zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path} is not a readable PyTorch file, it may be truncated "
                              f"or corrupt ({_gist(exc)})", _WEIGHTS_FIX) from None


def _refused_code(exc: pickle.UnpicklingError) -> bool:
    # weights_only names the class or function it would not import; other unpickling
    # errors (e.g. "Unsupported operand") come from bytes that are not a pickle at all.
    text = str(exc).lower()  # torch words it "Unsupported global" or "unsupported GLOBAL"
    return "unsupported global" in text or "unsupported class" in text


def _gist(exc: BaseException) -> str:
    """The informative sentence of torch's multi-paragraph load errors, for a one-line message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    # weights_only errors put the reason (e.g. "Unsupported global: GLOBAL os.system ...")
    # after two paragraphs of advice to load with weights_only=False, which we never do.
    marker = "WeightsUnpickler error:"
    reason = lines[0]
    for i, line in enumerate(lines):
        if marker in line:
            rest = line.split(marker, 1)[1].strip()
            reason = rest or (lines[i + 1] if i + 1 < len(lines) else reason)
            break
    return reason.split(". ")[0][:160]


def _as_tensor_dict(path: Path, raw: Any) -> dict[str, Tensor]:
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"{path} holds a {type(raw).__name__}, not a state dict of "
                              "tensors", _WEIGHTS_FIX)
    bad = [str(k) for k, v in raw.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(f"{path} is not a flat state dict of tensors (entries "
                              f"{_few(bad)} are not tensors)", _WEIGHTS_FIX)
    # A plain dict drops torch's `_metadata`; BatchNorm then treats the entries as saved by
    # an old torch, which is what _fill_batch_counters relies on.
    return dict(raw)


def _check_state_dict(path: Path, state: dict[str, Tensor], net: FIDInceptionV3) -> None:
    """Raise one clear line when keys or shapes differ from the FID Inception."""
    _fill_batch_counters(state, net)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k} {list(state[k].shape)} != {list(s)}" for k, s in expected.items()
             if k in state and tuple(state[k].shape) != s]
    floats = [k for k, v in net.state_dict().items() if v.is_floating_point() and k in state]
    # an integer tensor would be cast without a word and NaN weights give a NaN FID
    not_float = [f"{k} {str(state[k].dtype).removeprefix('torch.')}" for k in floats
                 if not state[k].is_floating_point()]
    not_finite = [k for k in floats if state[k].is_floating_point()
                  and not bool(torch.isfinite(state[k]).all())]
    if not (missing or unexpected or wrong or not_float or not_finite):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys ({_few(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys ({_few(unexpected)})")
    if wrong:
        parts.append(f"{len(wrong)} wrong shapes ({_few(wrong)})")
    if not_float:
        parts.append(f"{len(not_float)} weights that are not floats ({_few(not_float)})")
    if not_finite:
        parts.append(f"{len(not_finite)} weights holding NaN or inf ({_few(not_finite)})")
    raise CheckpointError(f"{path} is not the FID Inception-v3: {'; '.join(parts)}"
                          f"{_torchvision_hint(state)}", _WEIGHTS_FIX)


def _fill_batch_counters(state: dict[str, Tensor], net: FIDInceptionV3) -> None:
    # `bn.num_batches_tracked` only counts training steps and never affects eval outputs;
    # files converted by old torch versions or by safetensors tools may lack it, so it must
    # not decide whether a file is the FID network.
    for key, value in net.state_dict().items():
        if key.endswith(".num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)


def _torchvision_hint(state: dict[str, Tensor]) -> str:
    fc = state.get("fc.weight")
    from_torchvision = any(k.startswith("AuxLogits.") for k in state) or (
        fc is not None and tuple(fc.shape) == (1000, INCEPTION_DIM))
    if not from_torchvision:
        return ""
    return (" - this looks like torchvision's ImageNet Inception-v3, whose weights and "
            "pooling differ and give FIDs not comparable with published ones")


def _few(items: list[str], n: int = 3) -> str:
    shown = ", ".join(items[:n])
    return shown if len(items) <= n else f"{shown}, ... {len(items) - n} more"


def _sha256_prefix(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()[:16]
