"""The version is written once, in include/swiftrcu_types.h (SWIFTRCU_VERSION_*): the library
reports it (swiftrcu_version() is built from those macros), pkg-config gets it from the Makefile,
which reads the header, and the Python package's two copies must equal it."""

from __future__ import annotations

import re

import swiftrcu
from conftest import PACKAGE_ROOT

HEADER = PACKAGE_ROOT.parents[1] / "include" / "swiftrcu_types.h"


def header_version() -> str:
    text = HEADER.read_text()
    parts = [re.search(r"#define SWIFTRCU_VERSION_%s (\d+)" % name, text) for name in ("MAJOR", "MINOR", "PATCH")]
    assert all(parts), "SWIFTRCU_VERSION_* macros not found in %s" % HEADER
    return ".".join(m.group(1) for m in parts)


def test_package_version_is_the_headers() -> None:
    assert swiftrcu.__version__ == header_version()


def test_pyproject_version_is_the_headers() -> None:
    pyproject = (PACKAGE_ROOT / "pyproject.toml").read_text()
    m = re.search(r'^version = "([^"]+)"', pyproject, re.MULTILINE)
    assert m and m.group(1) == header_version()


def test_library_reports_the_headers_version() -> None:
    assert swiftrcu.library_version == header_version()
