"""Generative versus discriminative classifiers (``genvision classify``).

A generative classifier turns any class-conditional likelihood model into p(y|x) by Bayes'
rule, in log space (:func:`posterior_log_proba`); the discriminative baselines model p(y|x)
directly. Ng & Jordan 2002 (NIPS) showed naive Bayes reaching its (higher) asymptotic error
with far fewer examples than logistic regression; the learning curves here measure that
trade-off for deep generative models too.

Example:
    >>> from genvision.tasks.classify import load_task_data, build_classifier  # doctest: +SKIP
    >>> data = load_task_data("0-vs-1", n_test=500)
    >>> clf = build_classifier("naive-bayes", data.num_classes, data.shape, budget=GenBudget())
    >>> clf.fit(data.x_train, data.y_train, seed=0)
    >>> log_p = clf.predict_log_proba(data.x_test)          # [500, 2] log p(y|x)
"""

from .bayes import BernoulliNaiveBayes, class_log_likelihoods, log_prior, posterior_log_proba
from .classifiers import ALL_CLASSIFIERS, Classifier, build_classifier
from .data import TaskData, load_task_data, parse_task
from .generative import GenBudget, train_conditional
from .metrics import accuracy, expected_calibration_error, log_loss

__all__ = ["ALL_CLASSIFIERS", "BernoulliNaiveBayes", "Classifier", "GenBudget", "TaskData",
           "accuracy", "build_classifier", "class_log_likelihoods", "expected_calibration_error",
           "load_task_data", "log_loss", "log_prior", "parse_task", "posterior_log_proba",
           "train_conditional"]
