"""Features of a trained run: a VAE's encoder mean, a GAN discriminator's penultimate layer,
an RBM's hidden-unit probabilities.

* VAE (Kingma & Welling 2013, https://arxiv.org/abs/1312.6114): mu(x), the mean of
  q(z|x), [N, latent_dim]. The mean, not a sample z ~ q(z|x): the probe should see the
  representation, not the reparameterisation noise.
* GAN (dcgan, wgan-gp, sngan; :mod:`genvision.nn.gan_nets`): phi(x), the flattened
  activations the discriminator's final linear score reads, [N, 2 * d_width * H/4 * W/4].
  For a projection discriminator phi(x) is computed before the label enters, so the
  features never see the label.
* RBM (:mod:`genvision.models.rbm`): p(h = 1 | x) = sigmoid(c + x W), [N, hidden], the
  exact posterior means of the hidden units (the classic use of RBM features, Hinton &
  Salakhutdinov 2006).

Conditional VAEs and RBMs are refused: their encoder (hidden units) reads the label, which
would leak it into features that a probe then "predicts".
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from ...errors import UserError
from ...progress import progress_bar

#: model name -> what its features are (the families the probe supports)
FEATURE_KINDS: dict[str, str] = {
    "vae": "VAE encoder mean mu(x)",
    "dcgan": "discriminator penultimate features phi(x)",
    "wgan-gp": "discriminator penultimate features phi(x)",
    "sngan": "discriminator penultimate features phi(x)",
    "rbm": "RBM hidden-unit probabilities p(h = 1 | x)",
}
SUPPORTED_HINT = "probe a vae run (encoder mean), a dcgan, wgan-gp or sngan run " \
                 "(discriminator features) or an rbm run (hidden units)"


def check_supported(model_name: str, conditional: bool) -> None:
    """Refuse models whose features the probe does not define (one-line UserError)."""
    if model_name not in FEATURE_KINDS:
        raise UserError(f"`features probe` has no latent features for {model_name!r} runs",
                        SUPPORTED_HINT)
    if model_name == "vae" and conditional:
        raise UserError("a conditional VAE's encoder reads the label, so its latent would "
                        "leak the class to the probe", "probe an unconditional vae run")
    if model_name == "rbm" and conditional:
        raise UserError("a conditional RBM's hidden units read the label, so its features "
                        "would leak the class to the probe", "probe an unconditional rbm run")


def feature_fn(model: torch.nn.Module, model_name: str) -> Callable[[Tensor], Tensor]:
    """A function images [B, C, H, W] -> features [B, D] for a supported model."""
    if model_name == "vae":
        return lambda x: model.encode(x)[0]
    if model_name == "rbm":
        return lambda x: model.hidden_probs(x)
    if model_name in FEATURE_KINDS:
        d = model.D
        return lambda x: d.net(2 * x - 1)  # the centring of Discriminator.forward
    raise UserError(f"`features probe` has no latent features for {model_name!r} runs",
                    SUPPORTED_HINT)


@torch.no_grad()
def extract(fn: Callable[[Tensor], Tensor], x: Tensor, *, batch_size: int = 500,
            device: torch.device | str = "cpu", progress: bool = False,
            desc: str = "features") -> np.ndarray:
    """Apply ``fn`` to ``x`` [N, C, H, W] in batches; returns float32 [N, D] on the CPU."""
    out = []
    for start in progress_bar(range(0, len(x), batch_size), desc=desc, disable=not progress,
                              unit="batch", leave=False):
        out.append(fn(x[start:start + batch_size].to(device)).flatten(1).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def pixels(x: Tensor) -> np.ndarray:
    """The raw-pixel baseline: images [N, C, H, W] -> float32 [N, C*H*W]."""
    return x.flatten(1).float().numpy()
