"""Perceptual (feature-space) losses of SRGAN.

SRGAN's content loss compares VGG19 features of the output and the target (Ledig et al.
2017, "VGG54": after the 4th convolution of the 5th block, before its pooling). VGG19
weights cannot be downloaded here, so:

* ``vgg19:PATH`` loads a local file with torchvision's key names (``features.N.weight``,
  ``features.N.bias``; ``classifier.*`` is ignored): ``.safetensors``, or ``.pth``/``.pt``
  read with ``torch.load(weights_only=True)``, which runs no code from the file. The
  network is written here in plain torch, so torchvision is not needed.
* ``disc`` (the default) uses the features of the SRGAN's own patch discriminator, which
  genvision trains alongside the generator: the "feature matching" loss of pix2pixHD
  (Wang et al. 2018, https://arxiv.org/abs/1711.11585).
* ``none``: pixel and adversarial losses only.

Every run states which one it used (``describe``), in the output and in ``task.json``.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import CheckpointError, UserError
from ..storage import load_tensors

#: torchvision's VGG19 ``features``: channels per conv, "M" = 2x2 max pooling
VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
#: ReLU outputs by name -> index in ``features`` (relu5_4 = SRGAN's VGG54)
VGG19_RELUS = {"relu1_2": 3, "relu2_2": 8, "relu3_4": 17, "relu4_4": 26, "relu5_4": 35}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_FIX = ("pass torchvision's vgg19 weights (vgg19-dcbb9e9d.pth) or a .safetensors file with "
        "its features.N.weight / features.N.bias keys")


def vgg19_features(upto: int = VGG19_RELUS["relu5_4"]) -> nn.Sequential:
    """VGG19's ``features`` up to and including index ``upto``, torchvision's layout."""
    layers: list[nn.Module] = []
    c_in = 3
    for item in VGG19_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c_in, int(item), 3, padding=1), nn.ReLU(inplace=False)]
            c_in = int(item)
    return nn.Sequential(*layers[:upto + 1])


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``disc`` / ``none`` / ``vgg19:PATH`` -> (kind, path)."""
    kind, _, path = spec.partition(":")
    if kind in ("disc", "none") and not path:
        return kind, None
    if kind == "vgg19" and path:
        return kind, path
    raise UserError(f"unknown --perceptual {spec!r}", "use disc, none or vgg19:PATH")


def load_vgg19(path: str, layer: str = "relu5_4") -> tuple[nn.Sequential, dict[str, Any]]:
    """Load VGG19 feature layers up to ``layer`` from a local weights file.

    Returns:
        ``(net, info)``: the frozen network in eval mode, and ``{"path", "sha256", "layer"}``.

    Raises:
        CheckpointError: missing, unreadable or corrupt file, pickled code, wrong keys/shapes.
    """
    if layer not in VGG19_RELUS:
        raise UserError(f"unknown VGG19 layer {layer!r}", f"use one of {', '.join(VGG19_RELUS)}")
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise CheckpointError(f"VGG19 weights {p} do not exist", _FIX)
    state = _read_state_dict(p)
    net = vgg19_features(VGG19_RELUS[layer])
    wanted = net.state_dict()
    feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    missing = [f"features.{k}" for k in wanted if k not in feats]
    wrong = [f"features.{k} {list(feats[k].shape)} != {list(v.shape)}"
             for k, v in wanted.items() if k in feats and feats[k].shape != v.shape]
    # an integer tensor would be cast without a word; NaN weights make every loss NaN
    bad = [f"features.{k} {str(feats[k].dtype).removeprefix('torch.')}" for k in wanted
           if k in feats and (not feats[k].is_floating_point()
                              or not bool(torch.isfinite(feats[k]).all()))]
    if missing or wrong or bad:
        what = (f"{len(missing)} missing keys ({', '.join(missing[:3])})" if missing else
                f"wrong shapes ({', '.join(wrong[:2])})" if wrong else
                f"weights that are not finite floats ({', '.join(bad[:2])})")
        raise CheckpointError(f"{p} is not VGG19: {what}", _FIX)
    net.load_state_dict({k: feats[k].float() for k in wanted})
    net.eval().requires_grad_(False)
    digest = hashlib.sha256(p.read_bytes()).hexdigest()[:16]
    return net, {"path": str(p), "sha256": digest, "layer": layer}


def _read_state_dict(p: Path) -> dict[str, Tensor]:
    if p.suffix.lower() == ".safetensors":
        try:
            raw: Any = load_tensors(p)
        except CheckpointError as exc:  # reword: load_tensors' fix speaks of retraining
            raise CheckpointError(exc.problem, _FIX) from None
    elif p.suffix.lower() in (".pth", ".pt"):
        try:
            raw = torch.load(p, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            why = ("holds pickled Python objects that are not tensors and was not unpickled"
                   if _refused_code(exc) else "is not a readable PyTorch file")
            raise CheckpointError(f"{p} {why} ({_gist(exc)})", _FIX) from None
        except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
            raise CheckpointError(f"{p} is not a readable PyTorch file, it may be truncated "
                                  f"or corrupt ({_gist(exc)})", _FIX) from None
    else:
        raise CheckpointError(f"VGG19 weights {p} have an unknown file type '{p.suffix}'", _FIX)
    if not isinstance(raw, Mapping) or not all(isinstance(v, Tensor) for v in raw.values()):
        raise CheckpointError(f"{p} is not a flat state dict of tensors", _FIX)
    return dict(raw)


def _refused_code(exc: pickle.UnpicklingError) -> bool:
    """weights_only refused a global (a function or class the file names), not a bad stream."""
    text = str(exc).lower()
    return "unsupported global" in text or "unsupported class" in text


def _gist(exc: BaseException) -> str:
    """The informative line of torch's multi-paragraph load errors, for a one-line message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "unsupported" in line.lower():
            return line[:160]
    return (lines[0] if lines else type(exc).__name__)[:160]


class VGGLoss(nn.Module):
    """L1 distance of VGG19 features of ImageNet-normalised images (frozen network)."""

    def __init__(self, net: nn.Sequential):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        f_pred = self.net((pred - self.mean) / self.std)
        with torch.no_grad():
            f_target = self.net((target - self.mean) / self.std)
        return (f_pred - f_target).abs().mean()


def disc_feature_loss(feats_pred: list[Tensor], feats_target: list[Tensor]) -> Tensor:
    """Mean L1 distance of discriminator features, averaged over layers (targets detached)."""
    terms = [(a - b.detach()).abs().mean() for a, b in zip(feats_pred, feats_target,
                                                             strict=True)]
    return torch.stack(terms).mean()


def describe(spec: str, info: dict[str, Any] | None = None) -> str:
    """One line saying which feature network the perceptual loss uses."""
    kind, _ = parse_spec(spec)
    if kind == "vgg19":
        assert info is not None
        return (f"perceptual loss: VGG19 {info['layer']} features from {info['path']} "
                f"(sha256 {info['sha256']})")
    if kind == "disc":
        return ("perceptual loss: features of the SRGAN's own patch discriminator, trained by "
                "genvision alongside the generator (no VGG19 weights given; pass "
                "--perceptual vgg19:PATH to use them)")
    return "perceptual loss: none (pixel L1 + adversarial only)"
