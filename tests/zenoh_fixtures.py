"""Fixtures for the Zenoh tests: one router per test module (conftest.py's zenoh_router,
here as ``router``), and a fresh dataspace handle per test in a namespace of its own."""

from __future__ import annotations

import itertools

import pytest

from dataspace_agency.zenoh import connect

_namespaces = itertools.count()


def fresh_namespace() -> str:
    return f"t{next(_namespaces)}"


@pytest.fixture(scope="module")
def router(zenoh_router):
    return zenoh_router


@pytest.fixture
async def ds(router):
    """A Zenoh dataspace handle: the same API as ``open_dataspace()``'s."""
    async with connect(router.endpoints, namespace=fresh_namespace()) as handle:
        yield handle
