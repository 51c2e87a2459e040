"""Clusters on a group of runtimes: lazycluster's ``lazycluster.cluster`` package path."""

from __future__ import annotations

__all__: list[str] = []
