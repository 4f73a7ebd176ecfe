"""The output keys the comment reads are the ones the producing steps declare: renaming a
step's output without renaming it in mlops_ci/report/outputs.py fails here."""

from __future__ import annotations

import pytest

from mlops_ci.report import outputs
from mlops_ci.steps import all_steps


@pytest.mark.parametrize("producer", outputs.PRODUCERS, ids=lambda producer: producer.STEP)
def test_every_key_the_comment_reads_is_declared_by_its_step(producer):
    declared = {output.name for output in all_steps()[producer.STEP].outputs}
    read = outputs.keys(producer)
    assert read, producer.STEP
    assert {name: key for name, key in read.items() if key not in declared} == {}


def test_keys_lists_the_constants_but_not_the_step():
    class Made:
        STEP = "made"
        ONE = "one"
        lower = "not a key"

    assert outputs.keys(Made) == {"ONE": "one"}
