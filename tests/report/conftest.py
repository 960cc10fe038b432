"""The local Chromium that static export and the browser test need.

Where Chromium is missing the tests that need it skip with the reason, except under
``MODLENS_REQUIRE_BROWSER=1`` (set by ``.ci/run``, which installs Chromium): there a missing browser fails.
"""

import os
from pathlib import Path

import pytest

from modlens.report import find_chromium


@pytest.fixture(scope="session")
def chromium() -> Path:
    found = find_chromium()
    if found is None:
        reason = "no Chrome/Chromium on this machine (apt-get install chromium)"
        if os.environ.get("MODLENS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason}, but MODLENS_REQUIRE_BROWSER=1")
        pytest.skip(reason)
    return found
