from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

os.environ.pop("NO_COLOR", None)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
