from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

import tests.profiles  # noqa: F401  (loads the hypothesis profile)

os.environ.pop("NO_COLOR", None)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """No silent skips: a skipped test (a missing peer, say) fails the run."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = (
            f"skipped tests are not allowed (install what it needs): {report.longrepr}"
        )
