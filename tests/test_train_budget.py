"""The learning-rate schedule follows the budget of the call that set it, across resumes."""

from __future__ import annotations

import pytest

from genvision.train import TrainConfig
from genvision.train.budget import Budget


def test_a_minutes_budget_resumed_with_the_rest_of_its_time_continues_the_decay():
    first = Budget(TrainConfig(minutes=10, lr_schedule="cosine"), 0, 50)
    first.elapsed = 240.0  # killed after 4 of 10 minutes
    saved = first.state()
    rest = Budget(TrainConfig(minutes=6, lr_schedule="cosine"), 300, 50, saved)
    assert rest.continued and rest.progress(300) == pytest.approx(0.4)
    rest.elapsed = 60.0
    assert rest.progress(400) == pytest.approx(0.5)
    assert rest.lr_factor(400) == pytest.approx(0.5)  # cos at the half-way point
    other = Budget(TrainConfig(minutes=10, lr_schedule="cosine"), 300, 50, saved)
    assert not other.continued and other.progress(300) == 0.0
    assert "a new cosine decay" in other.describe()


def test_a_finished_call_is_not_continued_and_steps_must_end_where_they_would_have():
    done = Budget(TrainConfig(steps=10), 0, 50)
    state = done.state()
    assert not Budget(TrainConfig(steps=10), 10, 50, state).continued  # extends a finished run
    assert Budget(TrainConfig(steps=4), 6, 50, state).continued       # the rest: ends at 10
    assert not Budget(TrainConfig(steps=5), 6, 50, state).continued   # ends at 11
    assert Budget(TrainConfig(steps=4), 6, 50, state).progress(6) == pytest.approx(0.6)
