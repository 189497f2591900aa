"""Small exact checks of the theory behind genvision.

* :mod:`genvision.theory.kl_mle`: minimising KL(p_D || p_theta) is maximum likelihood,
  checked by exact enumeration of the 16 binary 2x2 images (``genvision theory kl-mle``;
  the derivation is in ``docs/theory_kl_mle.md``).
"""

from .kl_mle import (
    FVSBN,
    BernoulliMixture,
    all_states,
    exact_terms,
    fit,
    target_distribution,
)

__all__ = ["FVSBN", "BernoulliMixture", "all_states", "exact_terms", "fit",
           "target_distribution"]
