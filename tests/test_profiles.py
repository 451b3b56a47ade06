"""The hypothesis profiles: ci keeps every property's full count, quick a tenth."""

from __future__ import annotations

from hypothesis import settings

from tests.profiles import CI_EXAMPLES, examples


def test_ci_runs_full_counts_and_quick_a_tenth() -> None:
    assert settings.get_profile("ci").max_examples == CI_EXAMPLES
    assert settings.get_profile("quick").max_examples == CI_EXAMPLES // 10
    share = settings().max_examples / CI_EXAMPLES
    assert examples(10_000) == int(10_000 * share)
    assert examples(1) == 1  # never none
