"""Finding the C library: SWIFTRCU_LIBRARY, then the bundled library, then the system's, then the
build output of the source tree."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import swiftrcu
from conftest import PACKAGE_DIR, PACKAGE_ROOT, library_env, run_python

LIBRARY = Path(swiftrcu.library_path)
PRINT_PATH = "import swiftrcu; print(swiftrcu.library_path)"


def isolated_package(tmp_path: Path) -> Path:
    """A copy of the package under test without a bundled library, outside the source tree, so
    that no build output is near it."""
    root = tmp_path / "site"
    shutil.copytree(PACKAGE_DIR, root / "swiftrcu",
                    ignore=shutil.ignore_patterns("__pycache__", "libswiftrcu.so"))
    return root


def copy_library(libdir: Path) -> Path:
    """Copies the library under test into `libdir` as libswiftrcu.so. A bundled library finds
    its liburcu in ../swiftrcu.libs, which is copied along."""
    libdir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(LIBRARY, libdir / "libswiftrcu.so")
    libs = LIBRARY.parent.parent / "swiftrcu.libs"
    if LIBRARY.parent == PACKAGE_DIR and libs.is_dir():
        shutil.copytree(libs, libdir.parent / "swiftrcu.libs", dirs_exist_ok=True)
    return libdir / "libswiftrcu.so"


#: Records every attempt to start a process (audit events), then imports the package.
SPAWN_WATCH = (
    "import sys\n"
    "spawned = []\n"
    "def hook(event, args):\n"
    "    if event in ('subprocess.Popen', 'os.posix_spawn', 'os.fork', 'os.exec', 'os.system'):\n"
    "        spawned.append((event, args))\n"
    "sys.addaudithook(hook)\n"
    "import swiftrcu\n"
    "print(swiftrcu.library_path)\n"
    "print(spawned)\n"
)


def bare_env(package_root: Path, **extra: str) -> dict:
    env = library_env(SWIFTRCU_LIBRARY=None, LD_LIBRARY_PATH=None, PKG_CONFIG_PATH=None,
                      PKG_CONFIG_LIBDIR=str(package_root / "no-pkgconfig"))
    env["PYTHONPATH"] = str(package_root)
    env.update(extra)
    return env


def installed_elsewhere() -> bool:
    """Whether a libswiftrcu is installed where the dynamic loader finds it anyway (asked in a
    fresh process: this one has the library loaded already)."""
    env = library_env(SWIFTRCU_LIBRARY=None, LD_LIBRARY_PATH=None)
    done = run_python("import ctypes; ctypes.CDLL('libswiftrcu.so.0')", env)
    return done.returncode == 0


def test_env_variable_is_used(tmp_path: Path) -> None:
    done = run_python(PRINT_PATH, library_env(), cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(LIBRARY)


def test_env_variable_naming_a_missing_file_gives_one_clear_import_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "libswiftrcu.so"
    done = run_python("import swiftrcu", library_env(SWIFTRCU_LIBRARY=str(missing)))
    assert done.returncode != 0
    assert "ImportError" in done.stderr
    assert f"SWIFTRCU_LIBRARY={missing}" in done.stderr
    assert "make install" in done.stderr


def test_env_variable_naming_a_wrong_library(tmp_path: Path) -> None:
    import ctypes.util

    libc = ctypes.util.find_library("c") or "libc.so.6"
    done = run_python("import swiftrcu", library_env(SWIFTRCU_LIBRARY=libc))
    assert done.returncode != 0
    assert "ImportError" in done.stderr
    assert "missing swiftrcu_" in done.stderr


def test_loader_search_path(tmp_path: Path) -> None:
    root = isolated_package(tmp_path)
    env = bare_env(root, LD_LIBRARY_PATH=str(LIBRARY.parent))
    done = run_python(PRINT_PATH, env, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).parent == LIBRARY.resolve().parent


def test_loading_from_the_search_path_spawns_no_process(tmp_path: Path) -> None:
    root = isolated_package(tmp_path)
    env = bare_env(root, LD_LIBRARY_PATH=str(copy_library(tmp_path / "lib").parent))
    done = run_python(SPAWN_WATCH, env, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    path, spawned = done.stdout.splitlines()
    assert Path(path).parent == tmp_path / "lib"
    assert spawned == "[]", spawned


def test_pkg_config_libdir(tmp_path: Path) -> None:
    if shutil.which("pkg-config") is None:
        pytest.skip("pkg-config is not installed")
    if installed_elsewhere():
        pytest.skip("a libswiftrcu is installed on the loader's search path")
    prefix = tmp_path / "prefix"
    (prefix / "lib" / "pkgconfig").mkdir(parents=True)
    copy_library(prefix / "lib")
    (prefix / "lib" / "pkgconfig" / "swiftrcu.pc").write_text(
        f"prefix={prefix}\nlibdir=${{prefix}}/lib\nincludedir=${{prefix}}/include\n\n"
        "Name: swiftrcu\nDescription: test\nVersion: 0.1.0\nLibs: -L${libdir} -lswiftrcu\n")
    root = isolated_package(tmp_path)
    env = bare_env(root, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    env.pop("PKG_CONFIG_LIBDIR")
    done = run_python(PRINT_PATH, env, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(prefix / "lib" / "libswiftrcu.so")


def test_build_output_of_the_source_tree(tmp_path: Path) -> None:
    build_lib = PACKAGE_ROOT.parents[1] / "build" / "lib" / "libswiftrcu.so"
    if not build_lib.exists():
        pytest.skip("the source tree has no build output")
    if installed_elsewhere():
        pytest.skip("a libswiftrcu is installed on the loader's search path")
    # The build output links the system's liburcu; where that is missing (a machine that has
    # only the wheel's copy), the library cannot load whoever looks for it.
    loadable = run_python(f"import ctypes; ctypes.CDLL({str(build_lib)!r})",
                          library_env(SWIFTRCU_LIBRARY=None, LD_LIBRARY_PATH=None))
    if loadable.returncode != 0:
        pytest.skip("the build output does not load here: " + loadable.stderr.strip()[-200:])
    env = bare_env(PACKAGE_ROOT)
    done = run_python(PRINT_PATH, env, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(build_lib)


def test_nothing_found_names_every_place_looked(tmp_path: Path) -> None:
    if installed_elsewhere():
        pytest.skip("a libswiftrcu is installed on the loader's search path")
    root = isolated_package(tmp_path)
    done = run_python("import swiftrcu", bare_env(root), cwd=str(tmp_path))
    assert done.returncode != 0
    err = done.stderr
    assert err.count("ImportError:") == 1, err
    for place in ("SWIFTRCU_LIBRARY: not set", "the bundled library",
                  "the loader's search path (libswiftrcu.so.0)", "pkg-config", "build output"):
        assert place in err, (place, err)
    # The build output is looked for at ../../build/lib from the directory holding the package.
    assert os.fspath(root.parents[1] / "build" / "lib" / "libswiftrcu.so") in err, err
