"""Shared fixtures. Tests run under trio (pytest-trio, trio_mode in pyproject.toml)."""

from __future__ import annotations

import pytest

from dataspace_agency import open_dataspace


@pytest.fixture
async def ds():
    """A fresh in-process dataspace on its own runtime, shut down after the test."""
    async with open_dataspace() as handle:
        yield handle
