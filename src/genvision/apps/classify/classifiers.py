"""The classifiers compared: generative (Bayes' rule on p(x|y) p(y)) and discriminative.

Every classifier has ``fit(x, y, seed)`` and ``predict_log_proba(x) -> [N, K]`` on binary
images [N, C, H, W], plus ``protocol()`` saying how its probabilities are made.

* ``naive-bayes`` -- Bernoulli naive Bayes, closed form (:mod:`.bayes`).
* ``vae`` -- class-conditional VAE; log p(x|y) is the IWAE-k bound (Burda et al. 2015,
  https://arxiv.org/abs/1509.00519), so the posterior uses a *bound* per class.
* ``gated-pixelcnn`` / ``pixelcnn`` -- class-conditional autoregressive models; exact
  log p(x|y) (van den Oord et al. 2016, https://arxiv.org/abs/1606.05328).
* ``rbm`` -- an RBM with label units; log p(x|y) = -F(x, y) - log Z_y with each class's
  log Z_y *estimated* by AIS (Salakhutdinov & Murray 2008), so the posterior carries the
  estimates' error (their standard errors are in the protocol).
* ``logreg`` -- multinomial logistic regression (scikit-learn, L2, C=1).
* ``cnn`` -- the small CNN of :mod:`genvision.tasks.common.small_cnn`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from ...errors import UserError
from ..common.small_cnn import SmallCNN
from .bayes import BernoulliNaiveBayes, class_log_likelihoods, log_prior, posterior_log_proba
from .generative import (
    GENERATIVE_MODELS,
    GenBudget,
    effective_lr,
    model_config,
    train_conditional,
)

DISCRIMINATIVE = ("logreg", "cnn")
ALL_CLASSIFIERS = ("naive-bayes", *GENERATIVE_MODELS, *DISCRIMINATIVE)
DEFAULT_CLASSIFIERS = ("naive-bayes", "vae", "gated-pixelcnn", "logreg", "cnn")


class Classifier:
    """Base: K classes of images of one shape."""

    name: ClassVar[str] = "?"
    kind: ClassVar[str] = "?"  # "generative" | "discriminative"

    def __init__(self, num_classes: int, shape: tuple[int, int, int]):
        self.num_classes, self.shape = num_classes, tuple(shape)

    def fit(self, x: Tensor, y: Tensor, seed: int) -> None:
        raise NotImplementedError

    def predict_log_proba(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def protocol(self) -> dict[str, Any]:
        return {"kind": self.kind}


class NaiveBayesClassifier(Classifier):
    name, kind = "naive-bayes", "generative"

    def __init__(self, num_classes: int, shape: tuple[int, int, int], alpha: float = 1.0):
        super().__init__(num_classes, shape)
        self.model = BernoulliNaiveBayes(num_classes, alpha)
        self.prior: Tensor | None = None

    def fit(self, x: Tensor, y: Tensor, seed: int) -> None:
        self.model.fit(x, y)
        self.prior = log_prior(y, self.num_classes)

    def predict_log_proba(self, x: Tensor) -> Tensor:
        return posterior_log_proba(self.model.all_class_log_prob(x), self.prior)

    def protocol(self) -> dict[str, Any]:
        return {"kind": self.kind, "likelihood": "exact (Bernoulli naive Bayes)",
                "smoothing_alpha": self.model.alpha, "prior": "label counts + 1"}


class DeepGenerativeClassifier(Classifier):
    """Bayes' rule on a class-conditional genvision model trained with the one loop.

    Args:
        model_name: one of ``GENERATIVE_MODELS`` (vae, the PixelCNNs, rbm, the flows).
        budget: training budget. k: importance samples of bound models (the VAE's IWAE
            bound, a flow's dequantisation noise).
        keep_dir: keep the training run here (None: a temporary directory).
    """

    kind = "generative"

    def __init__(self, model_name: str, num_classes: int, shape: tuple[int, int, int],
                 budget: GenBudget, k: int = 16, keep_dir: Path | None = None):
        super().__init__(num_classes, shape)
        self.name = model_name  # type: ignore[misc]  (instance-level: one class, 3 models)
        self.budget, self.k, self.keep_dir = budget, k, keep_dir
        model_config(model_name, num_classes, self.shape, 0, budget)  # bad options fail now
        self.model = None
        self.prior: Tensor | None = None
        self.seed = 0

    def fit(self, x: Tensor, y: Tensor, seed: int) -> None:
        self.model = train_conditional(self.name, x, y, self.num_classes, self.budget, seed,
                                       self.keep_dir)
        self.prior = log_prior(y, self.num_classes)
        self.seed = seed

    def class_log_likelihoods(self, x: Tensor) -> Tensor:
        """log p(x|y) for every class, [N, K] nats (a lower bound for the VAE and the
        flows, with ``k`` importance / dequantisation noise samples)."""
        options = self.model.likelihood_options
        if "generator" not in options:
            return class_log_likelihoods(self.model.log_prob, x, self.num_classes)
        kwargs = {"k": self.k} if "k" in options else {}

        def estimate(xb: Tensor, yb: Tensor) -> Tensor:
            # the same noise for every class (common random numbers): the posterior
            # compares classes, and shared noise cancels out of the differences
            gen = torch.Generator().manual_seed(self.seed)
            return self.model.log_prob(xb, yb, generator=gen, **kwargs)

        return class_log_likelihoods(estimate, x, self.num_classes)

    def predict_log_proba(self, x: Tensor) -> Tensor:
        return posterior_log_proba(self.class_log_likelihoods(x), self.prior)

    def protocol(self) -> dict[str, Any]:
        proto = {"kind": self.kind, "model": self.name, "steps": self.budget.steps,
                 "batch_size": self.budget.batch_size, "lr": effective_lr(self.name, self.budget),
                 "prior": "label counts + 1"}
        if self.model is not None:
            proto["likelihood"] = self.model.likelihood_protocol(
                **({"k": self.k} if "k" in self.model.likelihood_options else {}))
            proto["num_parameters"] = self.model.num_parameters()
        return proto


class LogRegClassifier(Classifier):
    """Multinomial logistic regression on the flattened binary pixels (scikit-learn)."""

    name, kind = "logreg", "discriminative"

    def __init__(self, num_classes: int, shape: tuple[int, int, int], c: float = 1.0,
                 max_iter: int = 200):
        super().__init__(num_classes, shape)
        self.c, self.max_iter = c, max_iter
        self.model = None

    def fit(self, x: Tensor, y: Tensor, seed: int) -> None:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        self.model = LogisticRegression(C=self.c, max_iter=self.max_iter, random_state=seed)
        with warnings.catch_warnings():  # the iteration cap is the stated budget
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.fit(x.flatten(1).numpy(), y.numpy())

    def predict_log_proba(self, x: Tensor) -> Tensor:
        out = np.full((len(x), self.num_classes), -np.inf)
        # columns follow model.classes_: a class absent from training keeps log p = -inf
        out[:, self.model.classes_] = self.model.predict_log_proba(x.flatten(1).numpy())
        return torch.from_numpy(out)

    def protocol(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": "sklearn LogisticRegression (lbfgs, L2)",
                "C": self.c, "max_iter": self.max_iter}


class CNNClassifier(Classifier):
    """The small CNN (:class:`SmallCNN`), ``epochs`` passes (at least its ``min_steps``)."""

    name, kind = "cnn", "discriminative"

    def __init__(self, num_classes: int, shape: tuple[int, int, int], epochs: float = 10):
        super().__init__(num_classes, shape)
        self.epochs = epochs
        self.model = SmallCNN.build(num_classes, self.shape)

    def fit(self, x: Tensor, y: Tensor, seed: int) -> None:
        self.model.fit(x, y, epochs=self.epochs, seed=seed)

    def predict_log_proba(self, x: Tensor) -> Tensor:
        return self.model.predict_log_proba(x)

    def protocol(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": "small CNN", "epochs": self.epochs,
                "min_steps": self.model.min_steps, "steps": self.model.steps_done,
                "num_parameters": self.model.num_parameters()}


def parse_classifiers(text: str) -> list[str]:
    """``"nb,vae,cnn"`` -> names (``nb`` is short for naive-bayes); unknown names raise."""
    names = [{"nb": "naive-bayes"}.get(s.strip(), s.strip()) for s in text.split(",")
             if s.strip()]
    unknown = [n for n in names if n not in ALL_CLASSIFIERS]
    if unknown or not names:
        raise UserError(f"unknown classifier(s) {unknown or text!r}",
                        f"choose from: {', '.join(ALL_CLASSIFIERS)} (comma-separated)")
    return list(dict.fromkeys(names))


def build_classifier(name: str, num_classes: int, shape: tuple[int, int, int], *,
                     budget: GenBudget, k: int = 16, cnn_epochs: float = 10,
                     logreg_iter: int = 200, nb_alpha: float = 1.0,
                     keep_dir: Path | None = None) -> Classifier:
    """A fresh classifier by name (see :data:`ALL_CLASSIFIERS`)."""
    if name == "naive-bayes":
        return NaiveBayesClassifier(num_classes, shape, nb_alpha)
    if name in GENERATIVE_MODELS:
        return DeepGenerativeClassifier(name, num_classes, shape, budget, k, keep_dir)
    if name == "logreg":
        return LogRegClassifier(num_classes, shape, max_iter=logreg_iter)
    if name == "cnn":
        return CNNClassifier(num_classes, shape, cnn_epochs)
    raise UserError(f"unknown classifier {name!r}", f"choose from: {', '.join(ALL_CLASSIFIERS)}")
