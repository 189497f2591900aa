"""The shared small CNN classifier (genvision.apps.common.small_cnn)."""

import pytest
import torch

from genvision.apps.classify.data import load_task_data
from genvision.apps.common.small_cnn import SmallCNN
from genvision.errors import UserError


@pytest.fixture(scope="module")
def digits01():
    return load_task_data("0-vs-1", data="digits")


def test_learns_digits_and_outputs_probabilities(digits01):
    d = digits01
    clf = SmallCNN.build(2, d.shape, min_steps=60).fit(d.x_train, d.y_train, epochs=1, seed=0)
    assert clf.steps_done == 60  # 1 epoch of ~290 images is 5 steps: min_steps rules
    proba = clf.predict_proba(d.x_test)
    assert proba.shape == (len(d.x_test), 2)
    assert torch.allclose(proba.sum(1), torch.ones(len(proba)), atol=1e-5)
    assert (clf.predict(d.x_test) == d.y_test).double().mean() > 0.9


def test_seeded_and_exact_steps(digits01):
    d = digits01
    a = SmallCNN.build(2, d.shape).fit(d.x_train, d.y_train, seed=1, steps=7)
    b = SmallCNN.build(2, d.shape).fit(d.x_train, d.y_train, seed=1, steps=7)
    c = SmallCNN.build(2, d.shape).fit(d.x_train, d.y_train, seed=2, steps=7)
    assert a.steps_done == 7
    pa, pb, pc = (m.predict_log_proba(d.x_test) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_augment_hook_sees_every_batch(digits01):
    d = digits01
    seen = []

    def hook(x, gen):
        seen.append(x.shape[0])
        return x

    SmallCNN.build(2, d.shape, batch_size=16).fit(d.x_train, d.y_train, seed=0, steps=5,
                                                 augment=hook)
    assert seen == [16] * 5


def test_bad_input_is_a_user_error(digits01):
    d = digits01
    clf = SmallCNN.build(2, d.shape)
    with pytest.raises(UserError, match="expects images"):
        clf.fit(torch.zeros(4, 1, 9, 9), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(UserError, match="labels must lie"):
        clf.fit(d.x_train[:4], torch.tensor([0, 1, 2, 0]))
    with pytest.raises(UserError, match="not been trained"):
        clf.predict_proba(d.x_test)
    with pytest.raises(UserError, match="at least 2 classes"):
        SmallCNN.build(1, d.shape)
