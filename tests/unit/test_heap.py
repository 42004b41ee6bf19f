"""The malloc tuning for the query path: glibc accepts both settings (mallopt answers 0 for a value it
refuses, such as an mmap threshold past its maximum)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's; elsewhere nothing is changed")
def test_glibc_accepts_the_settings() -> None:
    # In a child process: the settings are process-wide, and this one runs other tests.
    code = "from collector.heap import keep_freed_memory; print(keep_freed_memory())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "True"
