"""Folders built once per key on first use and kept on disk: the ONNX export, the distilled static student.

A folder's name carries a digest of everything its contents depend on (model, recipe, library versions, ...), so a
changed input gets a fresh folder instead of a stale one. A folder is built beside its final place and renamed in
one step: a crash or a concurrent build leaves no half folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable
from importlib import metadata
from pathlib import Path


def library_versions(names: tuple[str, ...]) -> dict[str, str]:
    return {name: metadata.version(name) for name in names}


def keyed_folder(root: Path, name: str, key: dict) -> Path:
    """`root/<name>-<digest of key>`: where the folder for `key` lives, whether or not it exists yet."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")
    return root / f"{readable}-{digest}"


def build_once(folder: Path, completion_file: str, build: Callable[[Path], None]) -> Path:
    """`folder`, first filled by `build(staging folder)` unless it already holds `completion_file`."""
    if (folder / completion_file).exists():
        return folder
    staging = folder.with_name(f".{folder.name}.tmp-{uuid.uuid4().hex}")
    staging.mkdir(parents=True)
    try:
        build(staging)
        try:
            os.replace(staging, folder)
        except OSError:
            if not (folder / completion_file).exists():
                raise  # not a concurrent build that finished first: a real failure
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
