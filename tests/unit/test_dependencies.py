"""The locks the README commands install from stay in step with pyproject (issue 10 item 23)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

#: Floors past published security advisories: a range that still admits an affected
#: release fails here.
ADVISORY_FLOORS = {"aiohttp": Version("3.13.3")}


def _lock(kind: str) -> dict[str, tuple[Version, list[str]]]:
    """name -> (pinned version, hashes), from a `uv pip compile --generate-hashes` file."""
    text = (ROOT / "requirements" / f"{kind}.txt").read_text()
    entries: dict[str, tuple[Version, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = re.match(r"([A-Za-z0-9._-]+)==([^\s;\\]+)", block)
        if head:
            hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
            entries[canonicalize_name(head[1])] = (Version(head[2]), hashes)
    return entries


def _requirements(kind: str) -> list[Requirement]:
    deps = list(PYPROJECT["project"]["dependencies"])
    if kind == "dev":
        deps += PYPROJECT["project"]["optional-dependencies"]["dev"]
    return [Requirement(d) for d in deps]


@pytest.mark.parametrize("kind", ["run", "dev"])
def test_every_dependency_is_locked_inside_its_range_with_hashes(kind: str) -> None:
    lock = _lock(kind)
    assert lock, f"requirements/{kind}.txt holds no pinned package"
    for req in _requirements(kind):
        name = canonicalize_name(req.name)
        assert name in lock, f"{req.name} is in pyproject but not in requirements/{kind}.txt"
        version, _ = lock[name]
        assert req.specifier.contains(version, prereleases=True), (
            f"requirements/{kind}.txt pins {req.name}=={version}, outside {req.specifier}"
        )
    unhashed = [name for name, (_, hashes) in lock.items() if not hashes]
    assert not unhashed, f"requirements/{kind}.txt has packages without hashes: {unhashed}"


def test_build_backend_is_locked() -> None:
    lock = _lock("dev")
    for name in ("setuptools", "wheel"):
        assert name in lock, f"{name} (the build backend) is missing from the lock"


@pytest.mark.parametrize("name,floor", sorted(ADVISORY_FLOORS.items()))
def test_ranges_exclude_releases_with_published_advisories(name: str, floor: Version) -> None:
    req = next(r for r in _requirements("run") if canonicalize_name(r.name) == name)
    below = Version(f"{floor.major}.{floor.minor}.{max(floor.micro - 1, 0)}")
    assert not req.specifier.contains(below), f"pyproject admits {name} {below} (< {floor})"
    assert req.specifier.contains(floor)


def test_dev_sh_installs_with_require_hashes() -> None:
    script = (ROOT / "scripts" / "dev.sh").read_text()
    assert "--require-hashes" in script
    assert "--no-build-isolation" in script
