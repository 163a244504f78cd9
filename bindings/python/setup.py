"""Build hook: the wheel is a platform wheel exactly when it carries the C library.

The metadata lives in pyproject.toml. From the source tree (``pip install bindings/python``) the
package is pure Python and uses an installed libswiftrcu.so. ``make wheel`` builds from a copy of
this directory with ``swiftrcu/libswiftrcu.so`` added: that wheel goes to platlib and is tagged
``py3-none-<platform>`` (the library is called through ctypes, so any Python 3 and any ABI will
do; only the platform matters), which is what ``auditwheel repair`` expects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.dist import Distribution

BUNDLES_LIBRARY = (Path(__file__).resolve().parent / "swiftrcu" / "libswiftrcu.so").is_file()


class _Distribution(Distribution):
    def has_ext_modules(self) -> bool:
        # A wheel without extension modules would be marked Root-Is-Purelib.
        return BUNDLES_LIBRARY or super().has_ext_modules()


class _BdistWheel(bdist_wheel):
    def get_tag(self) -> Tuple[str, str, str]:
        python, abi, platform = super().get_tag()
        if BUNDLES_LIBRARY:
            return "py3", "none", platform
        return python, abi, platform


setup(distclass=_Distribution, cmdclass={"bdist_wheel": _BdistWheel})
