"""The package builds and installs as packaging/README.md says (issue 12 item 13): a
wheel and an sdist from a copy of the checkout, the wheel installed into a fresh venv,
and the command it puts on that venv's PATH runs. No network: the build uses the
backend already installed (the locks pin setuptools and wheel), and the fresh venv
borrows the installed dependencies through a .pth line (a plain path line, so the
checkout's editable install is not seen there: the wheel's copy is what runs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from unipush_bridge import __version__

ROOT = Path(__file__).resolve().parents[2]


def run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # A PYTHONPATH (a worktree's checkout, say) would put another copy before the wheel's.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run(
        [str(a) for a in argv],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert res.returncode == 0, (argv, res.stdout[-2000:], res.stderr[-2000:])
    return res


def backend_or_skip() -> None:
    try:
        import setuptools
    except ImportError:
        pytest.skip("no setuptools in this venv: install requirements/dev.txt (scripts/dev.sh)")
    major = int(setuptools.__version__.split(".")[0])
    if major < 70:
        try:
            import wheel  # noqa: F401  (setuptools before 70.1 builds wheels with it)
        except ImportError:
            pytest.skip(
                f"setuptools {setuptools.__version__} without the wheel package: install "
                "requirements/dev.txt (scripts/dev.sh), which pins both"
            )


def checkout_copy(dest: Path) -> Path:
    """The files git knows (committed or not), as a fresh clone has them."""
    files = run("git", "ls-files", "-z", "--cached", cwd=ROOT).stdout.split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def test_wheel_and_sdist_build_install_and_run(tmp_path: Path) -> None:
    """issue 12 item 13: build both, install the wheel in a fresh venv, run the command."""
    backend_or_skip()
    src = checkout_copy(tmp_path / "src")
    dist = tmp_path / "dist"
    py = sys.executable
    run(py, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, src)
    run(py, "-c", f"from setuptools import build_meta as b; b.build_sdist({str(dist)!r})", cwd=src)
    (wheel,) = dist.glob("unipush_bridge-*.whl")
    (sdist,) = dist.glob("unipush_bridge-*.tar.gz")

    names = set(zipfile.ZipFile(wheel).namelist())
    for part in ("cli.py", "py.typed", "wire/local.py", "runtime/daemon.py", "gateway/server.py"):
        assert f"unipush_bridge/{part}" in names, part
    metadata = (
        zipfile.ZipFile(wheel).read(f"unipush_bridge-{__version__}.dist-info/METADATA").decode()
    )
    assert "Requires-Dist: aiohttp" in metadata
    with tarfile.open(sdist) as tar:
        members = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    assert {"pyproject.toml", "README.md", "daemon/unipush_bridge/cli.py"} <= members

    # The sdist alone builds a wheel too (nothing it needs is left out).
    unpacked = tmp_path / "unpacked"
    with tarfile.open(sdist) as tar:
        tar.extractall(unpacked, filter="data")
    (sdist_root,) = unpacked.iterdir()
    run(py, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
        tmp_path / "from-sdist", sdist_root)  # fmt: skip
    assert list((tmp_path / "from-sdist").glob("unipush_bridge-*.whl"))

    venv = tmp_path / "fresh"
    run(py, "-m", "venv", "--without-pip", venv)
    fresh_py = venv / "bin" / "python"
    fresh_site = Path(
        run(fresh_py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip()
    )
    run(py, "-m", "pip", "--python", fresh_py, "install", "-q", "--no-deps", "--no-index", wheel)
    command = venv / "bin" / "unipush-bridge"
    res = run(command, "--version")
    assert res.stdout.strip() == f"unipush-bridge {__version__}"
    # The wheel's own copy runs, not the checkout's.
    where = run(fresh_py, "-c", "import unipush_bridge; print(unipush_bridge.__file__)")
    assert where.stdout.strip().startswith(str(fresh_site)), where.stdout

    # With the dependencies reachable, the heavy commands start from the wheel too.
    (fresh_site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    res = run(command, "run", "--print-config", "--state-dir", tmp_path / "state")
    assert '"appid": "__UNI__DESKTOP"' in res.stdout or "__UNI__DESKTOP" in res.stdout
    run(fresh_py, "-c", "import unipush_bridge.runtime.daemon, unipush_bridge.gateway.server")
    where = run(fresh_py, "-c", "import unipush_bridge; print(unipush_bridge.__file__)")
    assert where.stdout.strip().startswith(str(fresh_site)), where.stdout
