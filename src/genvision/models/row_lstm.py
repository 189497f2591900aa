"""PixelRNN Row LSTM (van den Oord et al. 2016, "Pixel Recurrent Neural Networks",
https://arxiv.org/abs/1601.06759, sec. 3.1).

A type-A masked k0 x k0 convolution, then Row LSTM layers that process the image one row at
a time, top to bottom:

* **input-to-state**: a masked 1 x k convolution (type B) along the row of the layer's input,
  computed for the whole image at once;
* **state-to-state**: a 1 x k convolution (k = 3 by default) over the previous row's
  hidden state, run sequentially row by row;
* the four gates ``[i, f, o, g] = [sigma, sigma, sigma, tanh](K_ss * h_{r-1} + K_is * x_r)``,
  ``c_r = f * c_{r-1} + i * g``, ``h_r = o * tanh(c_r)``;
* a residual connection around each layer (a 1x1 type-B conv from the ``h`` hidden units
  back to the ``2h`` features), and 1x1 type-B output convs to the head.

Feature channels are channel-group major (R -> G -> B, :mod:`genvision.nn.masked`); the 4h
gate pre-activations are laid out per group as ``[i_g, f_g, o_g, g_g]`` so every hidden unit
and its gates stay in one group.

**Receptive field (a blind spot).** The state-to-state convolution widens the context by
k//2 columns on each side per row upwards, so pixel (i, j) sees a *triangle* above it: row
i - d only within columns j +- (d + const). Pixels further to the right (or left) in the
rows above are never seen, and within the current row it sees only the ``k0//2 + L*(k//2)``
pixels to its left (there is no recurrence along the row). Gated PixelCNN and the Diagonal
BiLSTM have no such blind spot; tests check both the causality and this triangle.

Sampling: :meth:`RowLSTM.sample_cached` recomputes only the current row per drawn value
(the states of earlier rows are cached), which is H times less work than the naive path
and gives the same samples from the same generator.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UserError
from ..nn.masked import CausalConv2d
from .base import DEPTH, KERNEL, WIDTH, register
from .gated_pixelcnn import single_thread
from .pixel_base import PixelAutoregressive, PixelModelConfig, draw_channel
from .sampling import SampleRNG, as_sample_rng

__all__ = ["RowLSTM", "RowLSTMConfig"]


@dataclasses.dataclass
class RowLSTMConfig(PixelModelConfig):
    """Hyper-parameters of :class:`RowLSTM` (small defaults so it trains on a CPU).

    MNIST-5k benchmark (10 minutes on a shared 2-core CPU, 1 thread): 32 hidden units,
    2 layers (86k parameters) reach 93.7 nats on the official test digits after 606 steps.
    """

    hidden: int = field(
        default=32, metadata={"help": "LSTM hidden units h per layer; features between "
                                      "layers are 2h (rounded up to a multiple of the "
                                      "image channels)", **WIDTH})
    layers: int = field(default=2, metadata={"help": "Row LSTM layers", **DEPTH})
    kernel: int = field(
        default=3, metadata={"help": "width k of the input-to-state (masked 1 x k) and "
                                     "state-to-state (1 x k) convolutions; odd", **KERNEL})
    input_kernel: int = field(
        default=7, metadata={"help": "kernel of the first (type-A masked) conv; odd", **KERNEL})
    out_hidden: int = field(
        default=64, metadata={"help": "width of the 1x1 output layer before the head "
                                      "(rounded up to a multiple of the image channels)", **WIDTH})

    def __post_init__(self) -> None:
        checks = [(self.hidden >= 1 and self.out_hidden >= 1,
                   "hidden and out_hidden must be >= 1"),
                  (self.layers >= 1, "layers must be >= 1"),
                  (self.kernel >= 1 and self.kernel % 2 == 1
                   and self.input_kernel >= 1 and self.input_kernel % 2 == 1,
                   "kernel and input_kernel must be odd")]
        for ok, msg in checks:
            if not ok:
                raise UserError(f"invalid row-lstm config: {msg}", "change the option value")


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


class RowLSTMLayer(nn.Module):
    """One Row LSTM layer with its residual connection: u [N, F, H, W] -> same.

    Args:
        features: channels F of the layer's input and output.
        hidden: LSTM units h (a multiple of ``data_channels``).
        k: odd width of the input-to-state and state-to-state convolutions.
        data_channels: ``C`` of the image, for the R -> G -> B groups.
        num_classes: classes of the conditional gate bias (0 = none).
    """

    def __init__(self, features: int, hidden: int, k: int, data_channels: int,
                 num_classes: int):
        super().__init__()
        self.hidden, self.groups = hidden, data_channels
        self.input_to_state = CausalConv2d(features, 4 * hidden, (1, k), data_channels, "B")
        self.state_to_state = nn.Conv1d(hidden, 4 * hidden, k, padding=k // 2)
        self.res = CausalConv2d(hidden, features, 1, data_channels, "B")
        self.cond = nn.Embedding(num_classes, 4 * hidden) if num_classes else None
        with torch.no_grad():  # forget gates start open (bias 1): long memory from the start
            self.input_to_state.bias.view(data_channels, 4, -1)[:, 1] = 1.0

    def row_bias(self, y: Tensor | None) -> Tensor | float:
        """The class-conditional gate bias [N, 4h, 1] (0 for an unconditional model)."""
        return 0.0 if self.cond is None or y is None else self.cond(y)[:, :, None]

    def zero_state(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """(h, c) of the row above the image: zeros [N, h, W]."""
        z = u.new_zeros(u.shape[0], self.hidden, u.shape[-1])
        return z, z

    def cell(self, z: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """Gate pre-activations z [N, 4h, W] and the cell above c [N, h, W] -> (h, c)."""
        n, w = z.shape[0], z.shape[-1]
        z = z.reshape(n, self.groups, 4, -1, w)
        gates = torch.sigmoid(z[:, :, :3])
        c = gates[:, :, 1] * c.reshape(n, self.groups, -1, w) \
            + gates[:, :, 0] * torch.tanh(z[:, :, 3])
        h = gates[:, :, 2] * torch.tanh(c)
        return h.reshape(n, self.hidden, w), c.reshape(n, self.hidden, w)

    def forward(self, u: Tensor, y: Tensor | None) -> Tensor:
        bias = self.row_bias(y)
        s = self.input_to_state(u) + (bias[..., None] if torch.is_tensor(bias) else bias)
        h, c = self.zero_state(u)
        rows = []
        for r in range(u.shape[2]):
            h, c = self.cell(s[:, :, r] + self.state_to_state(h), c)
            rows.append(h)
        return u + self.res(torch.stack(rows, dim=2))


@register("row-lstm")
class RowLSTM(PixelAutoregressive):
    """PixelRNN Row LSTM for any image size and channel count; see the module docstring."""

    config_class = RowLSTMConfig

    def __init__(self, config: RowLSTMConfig):
        super().__init__(config)
        c = config
        C = c.channels
        self.hidden = _round_up(c.hidden, C)
        feats, q = 2 * self.hidden, _round_up(c.out_hidden, C)
        with torch.random.fork_rng(devices=[]):  # init from config.seed, global RNG untouched
            torch.manual_seed(c.seed)
            self.first = CausalConv2d(C, feats, c.input_kernel, C, "A")
            self.layers = nn.ModuleList(
                [RowLSTMLayer(feats, self.hidden, c.kernel, C, c.num_classes)
                 for _ in range(c.layers)])
            self.out1 = CausalConv2d(feats, q, 1, C, "B")
            self.out2 = CausalConv2d(q, C * self.head.params_per_channel, 1, C, "B")

    def _output(self, u: Tensor) -> Tensor:
        return self.out2(F.relu(self.out1(F.relu(u))))

    def params(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Head parameters [N, C*P, H, W] for images x [N, C, H, W] in [0, 1]."""
        y = None if y is None else y.reshape(-1).long()
        u = self.first(self.head.network_input(x))
        for layer in self.layers:
            u = layer(u, y)
        return self._output(u)

    # ----- row-cached sampling -------------------------------------------------------------
    def _row(self, xin: Tensor, i: int, above: list[tuple[Tensor, Tensor]],
             y: Tensor | None) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        """Row i alone: head params [N, C*P, W] and each layer's (h, c) of row i.

        Args:
            xin: network input padded k0//2 rows on top and k0//2 columns on each side.
            above: each layer's (h, c) of row i-1.
        """
        k2 = self.config.input_kernel // 2
        w = self.first.masked_weight()[:, :, : k2 + 1]  # rows below the centre are masked
        u = F.conv2d(xin[:, :, i: i + k2 + 1], w, self.first.bias)  # [N, F, 1, W]
        states = []
        for layer, (h, c) in zip(self.layers, above, strict=True):
            z = layer.input_to_state(u)[:, :, 0] + layer.row_bias(y) + layer.state_to_state(h)
            h, c = layer.cell(z, c)
            states.append((h, c))
            u = u + layer.res(h[:, :, None])
        return self._output(u)[:, :, 0], states

    @torch.no_grad()
    def sample_cached(self, n: int, y: Tensor | None = None,
                      generator: torch.Generator | SampleRNG | None = None, *,
                      x: Tensor | None = None, keep: Tensor | None = None) -> Tensor:
        """Row-cached sampler: per drawn value only the current row is recomputed from the
        cached LSTM states of the row above; same draws as :meth:`sample_naive`."""
        y = self._labels_for(n, y)
        x = torch.zeros(n, *self.config.shape, device=self.device) if x is None else x.clone()
        keep = torch.zeros_like(x, dtype=torch.bool) if keep is None else keep.expand_as(x)
        with single_thread(x.device):
            return self._fill_rows(x, keep, y, as_sample_rng(generator, n))

    def _fill_rows(self, x: Tensor, keep: Tensor, y: Tensor | None,
                   rng: SampleRNG) -> Tensor:
        n, (C, H, W) = x.shape[0], self.config.shape
        P, k2 = self.head.params_per_channel, self.config.input_kernel // 2
        xin = x.new_zeros(n, C, H + k2, W + 2 * k2)
        u0 = x.new_zeros(n, 1, 1, W)
        above = [layer.zero_state(u0) for layer in self.layers]

        def refresh(i: int) -> None:
            xin[:, :, i + k2, k2: k2 + W] = self.head.network_input(x[:, :, i])

        for i in range(H):
            for j in range(W):
                if bool(keep[:, :, i, j].all()):
                    continue
                for ch in range(C):
                    refresh(i)
                    pc = self._row(xin, i, above, y)[0][:, ch * P:(ch + 1) * P, j]
                    x[:, ch, i, j] = draw_channel(self.head, pc, rng, keep[:, ch, i, j],
                                                  x[:, ch, i, j])
            refresh(i)
            above = self._row(xin, i, above, y)[1]  # the finished row's states
        return x
