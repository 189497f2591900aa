"""The minimised loss's normal range, so a run knows which checkpoints came before a blow-up.

A learning rate that is too high often makes the loss explode by orders of magnitude
while staying finite for a while; the weights written then are finite but useless, and a
``--resume`` from them diverges again at once. :class:`LossRange` keeps robust running
statistics of the loss each optimisation phase minimises (the median and the median
absolute deviation, MAD, of a window of recent in-range values; Hampel's outlier rule,
see Rousseeuw and Croux 1993, https://doi.org/10.1080/01621459.1993.10476408) and says
whether a step is in that range. The loop marks every checkpoint with the verdict, never
prunes the last in-range checkpoint while a later one is out of range, and names it when
the run diverges.

Rules:

* the first ``warmup`` values of a phase only fill its window (no range is known yet;
  checkpoints written then are marked ``None``, unjudged);
* afterwards a step is in range when the median of the phase's last ``recent`` values
  lies within ``median +- width * scale`` of the window, with
  ``scale = max(1.4826 * MAD, rel_floor * |median|, abs_floor)`` (1.4826 * MAD estimates
  a Gaussian's standard deviation; the floors keep a flat loss from making every wobble
  an outlier). Looking at a short recent median, not the single value, keeps one noisy
  step (common in GANs) from marking a checkpoint;
* a value above the band never enters the window, so a blown-up loss never becomes the
  new normal; a value below it does (a minimised loss falling fast is progress), so the
  range follows a loss that drops to a new level. A loss that explodes towards minus
  infinity (a WGAN critic) is therefore flagged only until the window follows it.

The state (every window, as plain floats) is JSON, stored in each checkpoint's
``trainer.json``, so a resumed run judges exactly as the uninterrupted one.
"""

from __future__ import annotations

import statistics
from collections import deque
from typing import Any

#: values per phase in the reference window, values in the recent median, values before
#: any verdict, band half-width in robust standard deviations, the scale's floors
WINDOW, RECENT, WARMUP, WIDTH, REL_FLOOR, ABS_FLOOR = 200, 5, 20, 10.0, 0.05, 1e-6


class LossRange:
    """Robust running range of each phase's minimised loss (see the module docstring).

    Example:
        >>> r = LossRange()
        >>> for v in [1.0, 0.9, 0.95] * 10:
        ...     r.observe({"loss": v})
        >>> r.in_range()
        True
        >>> for _ in range(5):
        ...     r.observe({"loss": 1e9})
        >>> r.in_range()
        False
    """

    def __init__(self, window: int = WINDOW, recent: int = RECENT, warmup: int = WARMUP,
                 width: float = WIDTH):
        self.window, self.recent, self.warmup, self.width = window, recent, warmup, width
        self.reference: dict[str, deque[float]] = {}
        self.latest: dict[str, deque[float]] = {}
        self.seen: dict[str, int] = {}
        #: the step the loss last left its range (None: in range since it was known)
        self.left_at: int | None = None
        #: the first step of the current run of values outside a band (None: none)
        self.streak_from: int | None = None

    def band(self, phase: str) -> tuple[float, float] | None:
        """(low, high) of ``phase``'s normal range; None while it is still unknown."""
        ref = self.reference.get(phase)
        if not ref or self.seen.get(phase, 0) < self.warmup:
            return None
        med = statistics.median(ref)
        mad = statistics.median(abs(v - med) for v in ref)
        scale = max(1.4826 * mad, REL_FLOOR * abs(med), ABS_FLOOR)
        return med - self.width * scale, med + self.width * scale

    def observe(self, losses: dict[str, float], step: int | None = None) -> None:
        """Add one step's minimised loss of every phase (finite floats, keyed by phase)."""
        outside = False
        for phase, value in losses.items():
            band = self.band(phase)
            ref = self.reference.setdefault(phase, deque(maxlen=self.window))
            outside |= band is not None and not band[0] <= value <= band[1]
            if band is None or value <= band[1]:
                ref.append(float(value))
            self.latest.setdefault(phase, deque(maxlen=self.recent)).append(float(value))
            self.seen[phase] = self.seen.get(phase, 0) + 1
        if not outside:
            self.streak_from = None
        elif self.streak_from is None:
            self.streak_from = step
        verdict = self.in_range()
        if verdict is False and self.left_at is None:
            # from the first step of the streak that moved the recent median out
            self.left_at = self.streak_from if self.streak_from is not None else step
        elif verdict is not False:
            self.left_at = None

    def in_range(self) -> bool | None:
        """Whether every phase's recent loss is in its normal range (None: not yet known)."""
        verdicts = []
        for phase, latest in self.latest.items():
            band = self.band(phase)
            if band is None:
                return None
            recent = statistics.median(latest)
            verdicts.append(band[0] <= recent <= band[1])
        return all(verdicts) if verdicts else None

    def describe(self) -> str:
        """The phases' recent losses and normal ranges, for a message."""
        parts = []
        for phase, latest in self.latest.items():
            band = self.band(phase)
            if band is not None:
                name = "the loss" if len(self.latest) == 1 else f"phase {phase!r}'s loss"
                parts.append(f"{name} {statistics.median(latest):.4g} (normal range "
                             f"{band[0]:.4g} to {band[1]:.4g})")
        return "; ".join(parts)

    # ----- checkpointed state -------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """JSON-ready state (exact: floats round-trip through JSON)."""
        return {"reference": {k: list(v) for k, v in self.reference.items()},
                "latest": {k: list(v) for k, v in self.latest.items()},
                "seen": dict(self.seen), "left_at": self.left_at,
                "streak_from": self.streak_from}

    def load_state(self, state: dict[str, Any] | None) -> None:
        """Inverse of :meth:`state`; a checkpoint without one (older runs) starts afresh."""
        if not state:
            return
        self.reference = {k: deque(map(float, v), maxlen=self.window)
                          for k, v in state["reference"].items()}
        self.latest = {k: deque(map(float, v), maxlen=self.recent)
                       for k, v in state["latest"].items()}
        self.seen = {k: int(v) for k, v in state["seen"].items()}
        self.left_at, self.streak_from = state.get("left_at"), state.get("streak_from")
