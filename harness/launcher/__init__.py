"""Launcher (zygote): one process loads MicroPython once and forks charger instances on request."""

from __future__ import annotations

from typing import Any

__all__ = ["Zygote", "ZygoteError"]


def __getattr__(name: str) -> Any:
    # Lazy, so `python -m harness.launcher.zygote` does not pull asyncio into the zygote.
    if name in __all__:
        from harness.launcher import client

        return getattr(client, name)
    raise AttributeError(name)
