"""Self-conditioning: k-means clusters of the training images used as labels.

Liu et al. 2020 ("Diverse Image Generation via Self-Conditioned GANs",
https://arxiv.org/abs/2006.10728) for GANs; the diffusion models use the same clusters the
same way. A model with ``config.self_condition = K`` registers the buffers
``cluster_centroids`` [K, C*H*W] and ``cluster_freq`` [K] (saved with its weights) and
mixes this class in before :class:`~genvision.models.base.GenerativeModel`: the training
loop fits the clusters once, through ``init_from_data``, at the start of a fresh run.
"""

from __future__ import annotations

from torch import Tensor

from ..errors import UserError
from ..nn.pixel_clusters import assign_clusters, fit_pixel_clusters


class SelfConditioned:
    """``init_from_data`` that fits the clusters, and the checked cluster of an image."""

    def init_from_data(self, x: Tensor) -> None:
        """Fit the self-conditioning clusters to the training images x [N, C, H, W] (a
        no-op without ``self_condition``)."""
        k = self.config.self_condition
        if not k:
            return
        if x.shape[0] < k:
            raise UserError(f"--self-condition {k} needs at least {k} training images, "
                            f"got {x.shape[0]}", "use fewer clusters or more data")
        centroids, freq = fit_pixel_clusters(x, k, seed=self.config.seed)
        self.cluster_centroids.copy_(centroids)
        self.cluster_freq.copy_(freq)

    def _require_clusters(self) -> None:
        if not float(self.cluster_freq.sum()) > 0:
            raise UserError(f"this self-conditioned {self.name} has no clusters yet",
                            "call model.init_from_data(train_x) first (genvision train does)")

    def clusters(self, x: Tensor) -> Tensor:
        """Index [N] of each image's nearest cluster (the label it is conditioned on)."""
        self._require_clusters()
        return assign_clusters(x, self.cluster_centroids)
