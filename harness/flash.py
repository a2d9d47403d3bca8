"""An instance's flash directory: the files the firmware reads at boot (config.json, certificates),
written atomically so a charger never boots from half a file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def prepare(flash: Path, config: dict[str, Any], files: dict[str, bytes] | None = None) -> None:
    """Create or update a flash directory; existing state (transactions, keys) is kept."""
    flash.mkdir(parents=True, exist_ok=True)
    write_atomic(flash / "config.json", json.dumps(config, indent=1).encode())
    for name, data in (files or {}).items():
        write_atomic(flash / name.lstrip("/"), data)


def wipe(flash: Path) -> None:
    """Factory reset: everything the firmware persisted goes, the directory stays."""
    if flash.exists():
        shutil.rmtree(flash)
    flash.mkdir(parents=True)
