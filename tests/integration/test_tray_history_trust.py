"""The tray's "Open history" page and another local user.

Without XDG_RUNTIME_DIR the page goes to a predictable place under the temp dir, as
the socket does. Another user (a real process of uid 12345, started with ``setpriv``)
who makes that directory first must neither get the page (the user's notifications)
nor, with a symlink planted in it, make the tray overwrite a file of the user's.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_local_socket_trust import OTHER_UID, as_other_user, as_root
from unipush_bridge.paths import UnsafePath
from unipush_bridge.tray import app, model

APPID = "__UNI__TRAYTRUST"


@pytest.fixture
def base(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temp dir as /tmp is (1777), the fallback (no XDG_RUNTIME_DIR), no xdg-open."""
    path = Path(tempfile.mkdtemp(prefix="uph-"))
    os.chmod(path, 0o1777)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    tools = path / "bin"  # setpriv, and no xdg-open: the page is written, not opened
    tools.mkdir()
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        (tools / "setpriv").symlink_to(setpriv)
    monkeypatch.setenv("PATH", str(tools))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def state() -> model.TrayState:
    entry = {"shown_at": "12:00", "title": "Bank", "content": "code 481516"}
    return model.TrayState(appid=APPID, entries=(entry,))


@as_root
@pytest.mark.parametrize("planted", ["symlink to the user's file", "file the other user reads"])
def test_a_history_dir_made_by_another_user_is_refused(base: Path, planted: str) -> None:
    page = app.history_file(APPID)
    victim = base / "victim-bashrc"
    victim.write_text("export PATH=...\n")
    os.chmod(victim, 0o600)
    how = (
        f"os.symlink({str(victim)!r}, {str(page)!r})"
        if planted.startswith("symlink")
        else f"open({str(page)!r}, 'w').close(); os.chmod({str(page)!r}, 0o666)"
    )
    squat = f"""
        import os
        os.makedirs({str(page.parent)!r}, exist_ok=True)
        os.chmod({str(page.parent)!r}, 0o777)
        {how}
    """
    subprocess.run(as_other_user(squat), check=True, timeout=10)
    try:
        assert os.lstat(page.parent).st_uid == OTHER_UID
        with pytest.raises(UnsafePath, match=f"owned by uid {OTHER_UID}"):
            asyncio.run(app.open_history(state()))
        assert victim.read_text() == "export PATH=...\n"
        assert stat.S_IMODE(victim.stat().st_mode) == 0o600
        if not planted.startswith("symlink"):
            assert "481516" not in page.read_text()
    finally:
        shutil.rmtree(page.parent, ignore_errors=True)


def test_the_history_page_is_private_in_the_fallback_dir(base: Path) -> None:
    path = asyncio.run(app.open_history(state()))
    assert path.parent == base / f"unipush-bridge-{os.getuid()}"
    assert stat.S_IMODE(os.lstat(path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    assert "481516" in path.read_text()
