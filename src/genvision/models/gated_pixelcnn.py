"""Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN
Decoders", https://arxiv.org/abs/1606.05328) with an incremental sampler.

Two stacks remove the blind spot of the original PixelCNN:

* the **vertical stack** sees whole rows: a (k//2+1) x k convolution whose output at row r
  covers input rows r-k//2..r. Shifted down one row before it reaches the horizontal
  stack, it brings in everything above the current row (no masks needed: rows above are
  earlier for every channel);
* the **horizontal stack** sees the current row up to the current pixel: a 1 x (k//2+1)
  convolution whose rightmost tap is the current pixel, masked by R -> G -> B channel
  groups (type A in the first layer, B after it; :func:`genvision.nn.masked.causal_mask`).
  It has a residual connection and receives the vertical stack through a 1x1 link.

Each layer is gated, ``tanh(W_f * x) * sigmoid(W_g * x)``; a class-conditional model adds a
learned per-class bias inside every gate of both stacks. 1x1 type-B convs map the last
horizontal features to the head's ``C * P`` parameters.

One deviation from the paper, on by default (``vertical_residual``): the vertical stack has
residual connections too. Without them the context from rows above passes through a
plain chain of gates and trains slowly: on MNIST-5k the training loss after 150 steps was
102.4 with them and 107.4 without (same data order, 16 channels, 8 layers).

Feature channels are channel-group major (group g of ``C`` groups belongs to data channel
g) and a gate's ``2p`` pre-activations are laid out per group as ``[f_g, g_g]``, so the
masks of :mod:`genvision.nn.masked` apply to gate inputs unchanged.

Sampling (:meth:`GatedPixelCNN.sample_cached`) caches per row (Ramachandran et al. 2017,
https://arxiv.org/abs/1704.06001): when row i starts, the vertical stack is computed for
row i-1 only (it depends on rows < i alone); per pixel, the horizontal stack is computed
for the new column only, from cached per-layer activations of the current row. It draws
the same values from the same per-sample streams as :meth:`sample_naive`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UserError
from ..nn.masked import CausalConv2d, causal_mask
from .base import DEPTH, IMAGE_SIDE, KERNEL, WIDTH, register
from .pixel_base import PixelAutoregressive, PixelModelConfig, draw_channel
from .sampling import SampleRNG, as_sample_rng

__all__ = ["GatedPixelCNN", "GatedPixelCNNConfig", "single_thread"]


@dataclasses.dataclass
class GatedPixelCNNConfig(PixelModelConfig):
    """Hyper-parameters of :class:`GatedPixelCNN`.

    Defaults were picked on the MNIST-5k benchmark: 16 channels, 8 layers (42k parameters).
    Per wall-clock second the narrow model wins: 32 channels learn little more per step
    (100.8 vs 102.4 train loss after 150 steps) at 2.2x the step time, 24 channels cost
    1.7x. Dilations 1 2 4 8 (in turn, after the first layer) widen the receptive field
    from 10 to 25 pixels either side at no extra cost: with its training recipe
    (:attr:`GatedPixelCNN.train_defaults`) the model reaches 82.10 nats on the official
    test digits in the 2,289 steps of a quiet 10-minute run, against 83.57 with 1 2 4 and
    87.73 undilated.
    """

    hidden: int = field(
        default=16, metadata={"help": "feature maps of each stack (rounded up to a multiple "
                                      "of the image channels)", **WIDTH})
    layers: int = field(default=8, metadata={"help": "gated layers (vertical + horizontal)",
                                             **DEPTH})
    kernel: int = field(
        default=3, metadata={"help": "kernel k of layers 2..: vertical (k//2+1) x k, "
                                     "horizontal 1 x (k//2+1); odd", **KERNEL})
    input_kernel: int = field(
        default=7, metadata={"help": "kernel of the first layer (odd)", **KERNEL})
    out_hidden: int = field(
        default=64, metadata={"help": "width of the 1x1 output layer before the head "
                                      "(rounded up to a multiple of the image channels)", **WIDTH})
    vertical_residual: bool = field(
        default=True, metadata={"help": "residual connections in the vertical stack too "
                                        "(the paper has them in the horizontal stack only)"})
    dilation: tuple[int, ...] = field(
        default=(1, 2, 4, 8), metadata={"help": "dilations of layers 2.. (rows and columns), "
                                             "repeated in turn: a wider receptive field at "
                                             "the same cost; empty = 1 everywhere", **IMAGE_SIDE})
    #: checkpoints from before ``dilation`` existed are undilated
    saved_before: ClassVar[dict[str, Any]] = {"dilation": ()}

    def __post_init__(self) -> None:
        checks = [(self.hidden >= 1 and self.out_hidden >= 1,
                   "hidden and out_hidden must be >= 1"),
                  (self.layers >= 1, "layers must be >= 1"),
                  (self.kernel >= 1 and self.kernel % 2 == 1
                   and self.input_kernel >= 1 and self.input_kernel % 2 == 1,
                   "kernel and input_kernel must be odd"),
                  (all(int(d) >= 1 for d in self.dilation), "dilations must be >= 1")]
        for ok, msg in checks:
            if not ok:
                raise UserError(f"invalid gated-pixelcnn config: {msg}",
                                "change the option value")
        # The horizontal stack at pixel j sees j-1 .. j-w after the first layer (type A:
        # w = input_kernel // 2); a layer of dilation d adds taps d apart, so d <= w keeps
        # the field free of holes, and the field grows to w + d * (kernel // 2).
        reach = self.input_kernel // 2
        for i in range(1, self.layers):
            d = self.layer_dilation(i)
            if d > max(reach, 1):
                raise UserError(
                    f"invalid gated-pixelcnn config: dilation {d} of layer {i + 1} skips "
                    f"pixels (the layers before it reach only {reach})",
                    f"use dilations <= {max(reach, 1)} there, e.g. --dilation 1 2 4")
            reach += d * (self.kernel // 2)

    def layer_dilation(self, i: int) -> int:
        """Dilation of layer i (0-based): 1 for the first, then ``dilation`` in turn."""
        if i == 0 or not self.dilation:
            return 1
        return int(self.dilation[(i - 1) % len(self.dilation)])


@contextlib.contextmanager
def single_thread(device: torch.device) -> Iterator[None]:
    """One intra-op CPU thread inside the block (restored after it).

    Incremental samplers run thousands of tiny ops; with several OpenMP threads each op
    pays a barrier, and on a busy machine a barrier can wait for a descheduled thread
    (measured: a row conv 0.4 ms with 1 thread, 32 ms with 2 on a loaded 2-core CPU).
    """
    before = torch.get_num_threads()
    if device.type != "cpu" or before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def gate(t: Tensor, groups: int) -> Tensor:
    """tanh(f) * sigmoid(g) of group-major pre-activations [N, 2p, ...] -> [N, p, ...].

    Channel block g of ``t`` is ``[f_g, g_g]``; the result keeps the groups contiguous.
    """
    n, c2, rest = t.shape[0], t.shape[1], t.shape[2:]
    t = t.reshape(n, groups, 2, c2 // (2 * groups), *rest)
    return (torch.tanh(t[:, :, 0]) * torch.sigmoid(t[:, :, 1])).reshape(n, c2 // 2, *rest)


class GatedLayer(nn.Module):
    """One gated layer of both stacks; (v, h) [N, in, H, W] -> (v', h') [N, p, H, W].

    With ``reach = dilation * (k//2)``, the vertical conv's input is padded ``reach + 1``
    rows on top and none below, so its output row t covers input rows t-reach-1 .. t-1:
    rows 0..H-1 are the vertical stack shifted down one row (what the horizontal stack may
    see) and rows 1..H are the stack itself (row r covers rows r-reach .. r, what the next
    vertical layer takes). Row 0 of the shifted map covers only padding (its bias). The
    horizontal conv's input is padded ``reach`` columns on the left: column j sees
    j-reach .. j. A dilation d takes every d-th row and column in that reach.

    Args:
        in_ch: input feature channels (the image's ``C`` for the first layer).
        p: output feature channels (a multiple of ``data_channels``).
        k: odd kernel size.
        data_channels: ``C`` of the image, for the R -> G -> B groups.
        first: the first layer (type-A horizontal mask, no residual).
        num_classes: classes of the conditional bias (0 = none).
        vertical_residual: add the input to the vertical output (not in the first layer).
        dilation: spacing of the taps of both convs, rows and columns.
    """

    def __init__(self, in_ch: int, p: int, k: int, data_channels: int, first: bool,
                 num_classes: int, vertical_residual: bool = False, dilation: int = 1):
        super().__init__()
        self.k2, self.p, self.first, self.groups = k // 2, p, first, data_channels
        self.dilation, self.reach = dilation, dilation * (k // 2)
        self.v_res = vertical_residual and not first
        # padding is explicit (asymmetric) in forward; the sampler uses the same weights
        self.v_conv = nn.Conv2d(in_ch, 2 * p, (k // 2 + 1, k), dilation=dilation)
        self.h_conv = nn.Conv2d(in_ch, 2 * p, (1, k // 2 + 1), dilation=dilation)
        # the causal 1 x k mask cut to its left half: taps left of the pixel + the centre
        mask = causal_mask((1, k), in_ch, 2 * p, data_channels, "A" if first else "B")
        self.register_buffer("h_mask", mask[..., : k // 2 + 1].contiguous(), persistent=False)
        with torch.no_grad():
            self.h_conv.weight.mul_(self.h_mask)
        self.link = nn.Conv2d(2 * p, 2 * p, 1)
        self.res = CausalConv2d(p, p, 1, data_channels, "B")
        self.cond = nn.Embedding(num_classes, 4 * p) if num_classes else None

    def h_weight(self) -> Tensor:
        return self.h_conv.weight * self.h_mask

    def class_bias(self, y: Tensor | None) -> tuple[Tensor | float, Tensor | float]:
        """Per-image gate biases [N, 2p, 1, 1] of the vertical and horizontal stacks."""
        if self.cond is None or y is None:
            return 0.0, 0.0
        b = self.cond(y)[:, :, None, None]
        return b[:, : 2 * self.p], b[:, 2 * self.p:]

    def forward(self, v: Tensor, h: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor]:
        bv, bh = self.class_bias(y)
        height = v.shape[2]
        r = self.reach
        v_in = F.pad(v, (r, r, r + 1, 0))
        if v.device.type == "cpu":
            # oneDNN runs this (k//2+1) x k conv ~1.5x faster (forward and backward,
            # measured at 16 channels) in channels-last layout than in NCHW
            v_in = v_in.contiguous(memory_format=torch.channels_last)
        vv = self.v_conv(v_in).contiguous()  # [N, 2p, H + 1, W]
        v_shift, v_pre = vv[:, :, :height] + bv, vv[:, :, 1:height + 1] + bv
        h_pre = F.conv2d(F.pad(h, (r, 0)), self.h_weight(), self.h_conv.bias,
                         dilation=self.dilation)
        h_pre = h_pre + self.link(v_shift) + bh
        out = self.res(gate(h_pre, self.groups))
        v_out = gate(v_pre, self.groups)
        return v + v_out if self.v_res else v_out, out if self.first else h + out


@register("gated-pixelcnn")
class GatedPixelCNN(PixelAutoregressive):
    """Gated PixelCNN for any image size and channel count; see the module docstring.

    Receptive field: every pixel above within ``1 + R`` rows and ``R`` columns either side,
    and the ``R`` pixels to the left in the current row, with ``R = k0//2 + (k//2) * (sum
    of the dilations of layers 2..L)`` (k0 = input_kernel; R = k0//2 + (L-1)*(k//2)
    without dilation): no blind spot, and no holes (the config refuses a dilation larger
    than the reach of the layers before it).
    """

    config_class = GatedPixelCNNConfig
    #: measured on MNIST-5k with the budget of the quiet 10-minute run (2,289 steps of 64):
    #: 87.73 nats exact vs 88.78 for constant 3e-3 and 89.85 for cosine 3e-3; 2e-2 and 3e-2
    #: trained worse (BENCHMARKS.md, "Learning-rate recipe for Gated PixelCNN")
    train_defaults: ClassVar[dict[str, Any]] = {
        "lr": 1e-2, "warmup_steps": 100, "grad_clip": 1.0, "lr_schedule": "cosine"}

    def __init__(self, config: GatedPixelCNNConfig):
        super().__init__(config)
        c = config
        C = c.channels
        self.p = _round_up(c.hidden, C)
        q = _round_up(c.out_hidden, C)
        with torch.random.fork_rng(devices=[]):  # init from config.seed, global RNG untouched
            torch.manual_seed(c.seed)
            self.layers = nn.ModuleList(
                [GatedLayer(C if i == 0 else self.p, self.p,
                            c.input_kernel if i == 0 else c.kernel, C, i == 0,
                            c.num_classes, c.vertical_residual, c.layer_dilation(i))
                 for i in range(c.layers)])
            self.out1 = CausalConv2d(self.p, q, 1, C, "B")
            self.out2 = CausalConv2d(q, C * self.head.params_per_channel, 1, C, "B")

    def params(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Head parameters [N, C*P, H, W] for images x [N, C, H, W] in [0, 1]."""
        v = h = self.head.network_input(x)
        y = None if y is None else y.reshape(-1).long()
        for layer in self.layers:
            v, h = layer(v, h, y)
        return self.out2(F.relu(self.out1(F.relu(h))))

    # ----- incremental sampling ------------------------------------------------------------
    @torch.no_grad()
    def sample_cached(self, n: int, y: Tensor | None = None,
                      generator: torch.Generator | SampleRNG | None = None, *,
                      x: Tensor | None = None, keep: Tensor | None = None) -> Tensor:
        """Row-cached sampler: the same draws as :meth:`sample_naive`, O(1) layers of work
        per pixel instead of a whole network pass.

        Args:
            n: number of images.
            y: labels (see :meth:`sample`).
            generator: source of every random draw.
            x, keep: images to complete and the bool mask [N, C, H, W] of values to keep.
        """
        y = self._labels_for(n, y)
        x = torch.zeros(n, *self.config.shape, device=self.device) if x is None else x.clone()
        keep = torch.zeros_like(x, dtype=torch.bool) if keep is None else keep.expand_as(x)
        with single_thread(x.device):
            _RowCache(self, x, y).fill(keep, as_sample_rng(generator, n))
        return x


class _RowCache:
    """State of one incremental sampling pass of a :class:`GatedPixelCNN` over ``x``.

    Per layer l it keeps ``vbuf[l]``, the zero-padded input of the vertical conv (rows are
    written as they complete), ``link[l]``, the vertical contribution (link + class bias)
    to the current row [N, W, 2p], and ``hbuf[l]``, the left-padded input of the
    horizontal conv for the current row [N, in, k//2 + W].
    """

    def __init__(self, model: GatedPixelCNN, x: Tensor, y: Tensor | None):
        self.m, self.x, self.y = model, x, y
        self.row = 0
        n, _, _, w = x.shape
        self.C, self.H, self.W = model.config.shape
        self.P = model.head.params_per_channel
        layers = list(model.layers)
        # the first layer's input width: C, or wider when a head embeds the values
        ins = [layers[0].v_conv.in_channels] + [model.p] * (len(layers) - 1)
        self.vbuf = [x.new_zeros(n, c, self.H + ly.reach + 1, w + 2 * ly.reach)
                     for c, ly in zip(ins, layers, strict=True)]
        self.hbuf = [x.new_zeros(n, c, w + ly.reach)
                     for c, ly in zip(ins, layers, strict=True)]
        self.link: list[Tensor] = [x.new_zeros(0)] * len(layers)
        # the weights as matrices for the per-pixel matmuls
        self.wh = [ly.h_weight().reshape(2 * ly.p, -1).t().contiguous() for ly in layers]
        self.wres = [ly.res.masked_weight()[:, :, 0, 0].t().contiguous() for ly in layers]
        self.w1 = model.out1.masked_weight()[:, :, 0, 0].t().contiguous()
        self.w2 = model.out2.masked_weight()[:, :, 0, 0].t().contiguous()

    def start_row(self, i: int) -> None:
        """Vertical stack at row i-1 (rows < i are final) -> each layer's link into row i."""
        for li, ly in enumerate(self.m.layers):
            bv, bh = ly.class_bias(self.y)
            v_shift = F.conv2d(self.vbuf[li][:, :, i: i + ly.reach + 1], ly.v_conv.weight,
                               ly.v_conv.bias, dilation=ly.dilation) + bv
            if i and li + 1 < len(self.vbuf):  # row 0's shifted map is padding only
                v_out = gate(v_shift, self.C)[:, :, 0]
                if ly.v_res:  # + this layer's input at row i-1
                    v_out = v_out + self.vbuf[li][:, :, i + ly.reach, ly.reach: ly.reach + self.W]
                nr = self.m.layers[li + 1].reach
                self.vbuf[li + 1][:, :, i + nr, nr: nr + self.W] = v_out
            self.link[li] = (ly.link(v_shift) + bh)[:, :, 0].transpose(1, 2).contiguous()
            self.hbuf[li].zero_()

    def end_row(self, i: int) -> None:
        r = self.m.layers[0].reach
        self.vbuf[0][:, :, i + r + 1, r: r + self.W] = \
            self.m.head.network_input(self.x[:, :, i])

    def column(self, j: int) -> Tensor:
        """Head parameters [N, C*P] at column j of the current row, given the current x."""
        i = self.row
        h = self.m.head.network_input(self.x[:, :, i, j])
        for li, ly in enumerate(self.m.layers):
            buf = self.hbuf[li]
            buf[:, :, ly.reach + j] = h
            window = buf[:, :, j: j + ly.reach + 1: ly.dilation].reshape(buf.shape[0], -1)
            pre = torch.addmm(ly.h_conv.bias, window, self.wh[li]) + self.link[li][:, j]
            out = torch.addmm(ly.res.bias, gate(pre, self.C), self.wres[li])
            h = out if ly.first else h + out
        hid = F.relu(torch.addmm(self.m.out1.bias, F.relu(h), self.w1))
        return torch.addmm(self.m.out2.bias, hid, self.w2)

    def fill(self, keep: Tensor, rng: SampleRNG) -> None:
        """Draw every value ``keep`` does not fix, in the order and with the draws of
        :meth:`PixelAutoregressive._fill`."""
        head, x, P = self.m.head, self.x, self.P
        for i in range(self.H):
            self.row = i
            self.start_row(i)
            for j in range(self.W):
                if bool(keep[:, :, i, j].all()):
                    self.column(j)  # the kept pixel still feeds the cached row
                    continue
                for ch in range(self.C):
                    pc = self.column(j)[:, ch * P:(ch + 1) * P]
                    x[:, ch, i, j] = draw_channel(head, pc, rng, keep[:, ch, i, j],
                                                  x[:, ch, i, j])
                # features at (i, j) never depend on its last channel, so only the raw
                # input of the cached row needs the value drawn last
                self.hbuf[0][:, :, self.m.layers[0].reach + j] = head.network_input(x[:, :, i, j])
            self.end_row(i)
