"""Hypothesis profiles: ``ci`` runs every property at its full example count, a
local run (the default, ``quick``) a tenth of it.

Choose with ``HYPOTHESIS_PROFILE=ci`` (``scripts/test`` and ``.ci/run`` do)
or pytest's ``--hypothesis-profile``.  A property that needs more examples
than Hypothesis' default of 100 says so with :func:`examples`, which scales
its count with the profile.
"""

from __future__ import annotations

import os

from hypothesis import settings

CI_EXAMPLES = 100  # Hypothesis' default: the ci profile changes nothing
settings.register_profile("ci", max_examples=CI_EXAMPLES)
settings.register_profile("quick", max_examples=CI_EXAMPLES // 10)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))


def examples(ci: int) -> int:
    """*ci* examples under the ``ci`` profile, proportionally fewer under ``quick``."""
    return max(1, ci * settings().max_examples // CI_EXAMPLES)
