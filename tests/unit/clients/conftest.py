"""Fixtures: a fake daemon on a short socket path, in the test's loop or in a thread."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.unit.clients.fakedaemon import FakeDaemon, ThreadedDaemon, short_socket_path


@pytest.fixture
async def daemon() -> AsyncIterator[FakeDaemon]:
    fake = await FakeDaemon(short_socket_path()).start()
    yield fake
    await fake.stop()


@pytest.fixture
def threaded() -> Iterator[ThreadedDaemon]:
    fake = ThreadedDaemon(short_socket_path())
    yield fake
    fake.close()
