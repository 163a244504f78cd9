"""The installed wheel: it loads the library it carries, and that library uses the liburcu copy
in the package's swiftrcu.libs, never the system's.

These tests run with `--wheel` (as `make test` runs the suite from a venv holding the wheel);
without it they are skipped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import List

import pytest

import swiftrcu
from conftest import PACKAGE_DIR, library_env, run_python
from swiftrcu._library import bundled_library
from test_loader import SPAWN_WATCH


@pytest.fixture(autouse=True)
def _wheel_only(request: pytest.FixtureRequest) -> None:
    if not request.config.getoption("--wheel"):
        pytest.skip("not testing an installed wheel (pass --wheel)")


def site_packages() -> Path:
    return Path(sysconfig.get_paths()["platlib"]).resolve()


def package_libs() -> Path:
    """auditwheel puts the libraries it copies in <distribution>.libs beside the package."""
    return site_packages() / "swiftrcu.libs"


def clean_env() -> dict:
    """No variable that could steer the loader or the import."""
    return library_env(SWIFTRCU_LIBRARY=None, LD_LIBRARY_PATH=None, LD_PRELOAD=None,
                       PYTHONPATH=None)


def test_the_package_is_the_installed_one() -> None:
    assert PACKAGE_DIR == site_packages() / "swiftrcu"


def test_this_process_loaded_the_bundled_library() -> None:
    assert bundled_library() == PACKAGE_DIR / "libswiftrcu.so"
    assert bundled_library().is_file()
    assert Path(swiftrcu.library_path) == bundled_library()


def test_a_fresh_import_loads_the_bundled_library_and_spawns_nothing(tmp_path: Path) -> None:
    done = run_python(SPAWN_WATCH, clean_env(), cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    path, spawned = done.stdout.splitlines()
    assert Path(path) == bundled_library()
    assert spawned == "[]", spawned


def liburcu_lines(text: str) -> List[str]:
    return [line.strip() for line in text.splitlines() if "liburcu" in line]


def test_ldd_resolves_liburcu_inside_the_package() -> None:
    ldd = shutil.which("ldd")
    assert ldd is not None, "ldd is not installed"
    done = subprocess.run([ldd, str(bundled_library())], capture_output=True, text=True,
                          env=clean_env(), timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = liburcu_lines(done.stdout)
    # liburcu-memb (the flavour) and liburcu-common, under auditwheel's hashed names.
    assert any(re.match(r"liburcu-memb-[0-9a-f]+\.so", line) for line in lines), done.stdout
    assert any(re.match(r"liburcu-common-[0-9a-f]+\.so", line) for line in lines), done.stdout
    for line in lines:
        name, _, target = line.partition(" => ")
        resolved = Path(target.split(" (")[0]).resolve()
        assert resolved.parent == package_libs(), line


def test_the_process_maps_only_the_bundled_liburcu(tmp_path: Path) -> None:
    code = (
        "import swiftrcu\n"
        "r = swiftrcu.Rcu({'a': 1}); assert r.read() == {'a': 1}; r.close()\n"
        "paths = set()\n"
        "for line in open('/proc/self/maps'):\n"
        "    fields = line.split(None, 5)\n"
        "    if len(fields) == 6 and 'liburcu' in fields[5]:\n"
        "        paths.add(fields[5].strip())\n"
        "print('\\n'.join(sorted(paths)))\n"
    )
    done = run_python(code, clean_env(), cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    mapped = [Path(p) for p in done.stdout.split()]
    assert len({p.name for p in mapped}) == 2, mapped  # liburcu-memb and liburcu-common
    for path in mapped:
        assert path.resolve().parent == package_libs(), path
