"""On-disk cache of compiled table sets, keyed by content hashes.

Files are written atomically (temporary file + rename), so a reader never sees half a file. A file
that cannot be read back completely (truncated, corrupt: the zip CRC catches flipped bytes) is
deleted and rebuilt. A directory that cannot be written only disables caching, with one warning.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np

FORMAT = "grammask-tables-1"
_warned: set[str] = set()


def default_cache_dir() -> Optional[Path]:
    """$GRAMMASK_CACHE_DIR (empty string disables caching), else $XDG_CACHE_HOME/grammask or ~/.cache/grammask."""
    env = os.environ.get("GRAMMASK_CACHE_DIR")
    if env is not None:
        return Path(env) if env else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "grammask"


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def load(directory: Optional[Path], key: str) -> Optional[tuple[dict, dict[str, np.ndarray]]]:
    """(metadata, arrays) for `key`, or None if absent or unreadable (an unreadable file is removed)."""
    if directory is None:
        return None
    path = directory / f"{key}.npz"
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        meta = json.loads(bytes(arrays.pop("__meta__")).decode("utf-8"))
        if meta.get("format") != FORMAT or meta.get("key") != key:
            raise ValueError("format or key mismatch")
        return meta, arrays
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        _warn_once(str(path), f"grammask: ignoring unreadable cache file {path} ({exc}); rebuilding it")
        try:
            path.unlink()
        except OSError:
            pass
        return None


def store(directory: Optional[Path], key: str, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    if directory is None:
        return
    meta = dict(meta, format=FORMAT, key=key)
    payload = dict(arrays, __meta__=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8))
    tmp = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}-", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
        os.replace(tmp, directory / f"{key}.npz")
        tmp = None
    except OSError as exc:
        _warn_once(str(directory), f"grammask: cannot write the table cache in {directory} ({exc}); "
                   "compiling without it (set GRAMMASK_CACHE_DIR to a writable directory)")
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
