"""Spaces: where classic agents live. ``DataspaceSpace`` (in-process dataspace, two adapter
modes); queue and remote spaces follow with the same API."""

from .dataspace_space import DataspaceSpace

__all__ = ["DataspaceSpace"]
