"""Workers started with a low glibc trim threshold (Dask's nanny default) get it raised once per process."""

import os
import platform
import subprocess
import sys

import pytest

SNIPPET = "from modlens.allocator import relax_low_trim_threshold as r; print(r(), r())"


def run_with(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    if env_value is not None:
        env["MALLOC_TRIM_THRESHOLD_"] = env_value
    done = subprocess.run([sys.executable, "-c", SNIPPET], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt thresholds are glibc's")
def test_low_threshold_is_raised_once():
    assert run_with("65536") == "True False"


@pytest.mark.parametrize("value", [None, "", "not-a-number", str(1 << 30)])
def test_left_alone_unless_set_low(value):
    assert run_with(value) == "False False"
