"""On-disk cache of compiled table sets, keyed by content hashes and signed.

A table set is `<directory>/<key>.npz`: a standard .npz (members stored uncompressed, each array's data
64-byte aligned in the file) whose archive comment is an HMAC-SHA256 of the key and of every byte before
the digest, keyed by `<directory>/.hmac-key` (32 random bytes). The directory must be the user's and
private (0700; wider permissions are narrowed and the key replaced) and the key file the user's with mode
0600 (else it is replaced); a directory owned by someone else is not used. A file is read into memory in
one piece and parsed only once its digest matches; its arrays are views of that buffer (no second copy).

Files are written atomically (temporary file + rename), so a reader never sees half a file. A file that
fails its digest or cannot be read back is deleted and rebuilt, with one warning. A directory that cannot
be used only disables caching, with one warning.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import secrets
import stat
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np

FORMAT = "grammask-tables-2"
KEY_FILE = ".hmac-key"
_KEY_BYTES = 32
_MAC_PREFIX = b"grammask-hmac-sha256:"
_MAC_HEX = 64
_COMMENT = len(_MAC_PREFIX) + _MAC_HEX
_ALIGN = 64
_PAD_EXTRA_ID = 0xD935  # zip extra field that only pads (the id Android's zipalign uses)
_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_POSIX = hasattr(os, "geteuid") and os.open in os.supports_dir_fd
_warned: set[str] = set()


def default_cache_dir() -> Optional[Path]:
    """$GRAMMASK_CACHE_DIR (empty string disables caching), else $XDG_CACHE_HOME/grammask or ~/.cache/grammask."""
    env = os.environ.get("GRAMMASK_CACHE_DIR")
    if env is not None:
        return Path(env) if env else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "grammask"


def cache_file(directory: Path, key: str) -> Path:
    """Where the table set for `key` lives (for messages)."""
    return Path(directory) / f"{key}.npz"


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


class _Dir:
    """The cache directory, opened once and checked: names inside it resolve against that directory
    (openat and friends), so it cannot be swapped for another between the check and the use."""

    def __init__(self, path: Path, fd: Optional[int]):
        self.path, self.fd = path, fd

    def name(self, name: str):
        return name if self.fd is not None else str(self.path / name)

    def open(self, name: str, flags: int, mode: int = 0o600) -> int:
        if self.fd is not None:
            return os.open(name, flags | _NOFOLLOW, mode, dir_fd=self.fd)
        return os.open(self.name(name), flags | _NOFOLLOW, mode)

    def unlink(self, name: str) -> None:
        try:
            if self.fd is not None:
                os.unlink(name, dir_fd=self.fd)
            else:
                os.unlink(self.name(name))
        except OSError:
            pass

    def replace(self, src: str, dst: str) -> None:
        if self.fd is not None:
            os.replace(src, dst, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        else:
            os.replace(self.name(src), self.name(dst))

    def link(self, src: str, dst: str) -> None:
        if self.fd is not None:
            os.link(src, dst, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        else:
            os.link(self.name(src), self.name(dst))

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)


def _open_dir(directory: Path, create: bool) -> Optional[_Dir]:
    """The cache directory, checked: ours and private (narrowed to 0700 if it was not, its key then
    dropped). None if absent (and not `create`) or unusable, with a warning for the latter."""
    if create:
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            _warn_once(str(directory), f"grammask: cannot write the table cache in {directory} ({exc}); "
                       "compiling without it (set GRAMMASK_CACHE_DIR to a writable directory)")
            return None
    if not _POSIX:  # no owners or dir_fd here: the key's secrecy rests on the user's profile directory
        return _Dir(directory, None) if directory.is_dir() else None
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        if create:  # (reading, an unusable directory is only a miss: storing says why)
            _warn_once(str(directory), f"grammask: cannot write the table cache in {directory} ({exc}); "
                       "compiling without it (set GRAMMASK_CACHE_DIR to a writable directory)")
        return None
    st = os.fstat(fd)
    problem = None
    if not stat.S_ISDIR(st.st_mode):
        problem = "not a directory"
    elif st.st_uid != os.geteuid():
        problem = f"owned by user {st.st_uid}, not by this user ({os.geteuid()})"
    if problem is None and st.st_mode & 0o077:
        try:  # someone else may have read or replaced its key: narrowed, and the key dropped (a new one
            os.fchmod(fd, 0o700)  # signs what is stored from now on; what was signed before is rebuilt)
            os.unlink(KEY_FILE, dir_fd=fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            problem = f"permissions {stat.S_IMODE(st.st_mode):o} cannot be narrowed to 700 ({exc})"
    if problem is not None:
        os.close(fd)
        _warn_once(str(directory), f"grammask: not using the table cache {directory}: {problem}; "
                   "compiling without it (set GRAMMASK_CACHE_DIR to a private directory)")
        return None
    return _Dir(directory, fd)


def _read_key(d: _Dir) -> Optional[bytes]:
    """The directory's key, if there is one we can trust: a regular file of ours, 0600, of the right size."""
    try:
        fd = d.open(KEY_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != _KEY_BYTES:
            return None
        if _POSIX and (st.st_uid != os.geteuid() or st.st_mode & 0o077):
            return None
        data = os.read(fd, _KEY_BYTES + 1)
        return data if len(data) == _KEY_BYTES else None
    finally:
        os.close(fd)


def _new_key(d: _Dir) -> bytes:
    """A key for the directory: a new one unless another process made one first."""
    key = secrets.token_bytes(_KEY_BYTES)
    tmp = f"{KEY_FILE}-{secrets.token_hex(8)}.tmp"
    fd = d.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        try:
            d.link(tmp, KEY_FILE)  # only if there is none: two processes agree on one key
        except FileExistsError:
            existing = _read_key(d)
            if existing is not None:
                return existing
            d.replace(tmp, KEY_FILE)  # the one there is not trustworthy
        return key
    finally:
        d.unlink(tmp)


def _mac(secret: bytes, key: str, chunks) -> bytes:
    h = hmac.new(secret, key.encode("ascii") + b"\0", hashlib.sha256)
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest().encode("ascii")


class _BufferFile(io.RawIOBase):
    """Read-only file over a memoryview, without copying it (for zipfile and numpy's header reader)."""

    def __init__(self, view: memoryview):
        self.view, self.pos = view, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else (self.pos + offset if whence == 1 else len(self.view) + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = len(self.view) if n is None or n < 0 else min(len(self.view), self.pos + n)
        data = bytes(self.view[self.pos:end])
        self.pos = max(self.pos, end)
        return data


def _read_file(d: _Dir, name: str) -> Optional[np.ndarray]:
    """The whole file in one 64-byte aligned buffer, or None if there is none."""
    try:
        fd = d.open(name, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        raw = np.empty(st.st_size + _ALIGN, dtype=np.uint8)
        start = (-raw.ctypes.data) % _ALIGN
        buf = raw[start:start + st.st_size]
        view, got = memoryview(buf), 0
        with os.fdopen(os.dup(fd), "rb", buffering=0) as f:
            while got < st.st_size:
                n = f.readinto(view[got:])
                if not n:
                    raise ValueError("file shorter than its size")
                got += n
        return buf
    finally:
        os.close(fd)


def _parse(buf: np.ndarray) -> tuple[dict, dict[str, np.ndarray]]:
    """Arrays of a signed file, as views of buf (aligned, or copied if a file is not)."""
    arrays = {}
    view = memoryview(buf)
    with zipfile.ZipFile(_BufferFile(view)) as zf:
        for info in zf.infolist():
            if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy"):
                raise ValueError(f"member {info.filename!r} is not a stored .npy")
            fields = _LOCAL_HEADER.unpack_from(view, info.header_offset)
            if fields[0] != 0x04034B50:
                raise ValueError("bad local header")
            start = info.header_offset + _LOCAL_HEADER.size + fields[9] + fields[10]
            member = _BufferFile(view[start:start + info.file_size])
            version = np.lib.format.read_magic(member)
            shape, fortran, dtype = (np.lib.format.read_array_header_1_0(member) if version == (1, 0)
                                     else np.lib.format.read_array_header_2_0(member))
            if fortran or dtype.hasobject:
                raise ValueError(f"member {info.filename!r}: {dtype} (fortran={fortran})")
            count = int(np.prod(shape, dtype=np.int64))
            if member.tell() + count * dtype.itemsize > info.file_size:
                raise ValueError(f"member {info.filename!r} shorter than its shape")
            arr = np.frombuffer(buf, dtype=dtype, count=count, offset=start + member.tell()).reshape(shape)
            arrays[info.filename[:-4]] = arr if arr.flags.aligned else arr.copy()
    meta = json.loads(bytes(arrays.pop("__meta__")).decode("utf-8"))
    return meta, arrays


def load(directory: Optional[Path], key: str) -> Optional[tuple[dict, dict[str, np.ndarray]]]:
    """(metadata, arrays) for `key`, or None if absent, unsigned or unreadable (such a file is removed)."""
    if directory is None:
        return None
    d = _open_dir(Path(directory), create=False)
    if d is None:
        return None
    name = f"{key}.npz"
    try:
        buf = _read_file(d, name)
        if buf is None:
            return None
        secret = _read_key(d)
        if secret is None:
            raise ValueError("the cache has no trustworthy key yet")
        size = buf.shape[0]
        view = memoryview(buf)
        if size < _COMMENT + 22 or bytes(view[size - _COMMENT:size - _MAC_HEX]) != _MAC_PREFIX:
            raise ValueError("no signature")
        if not hmac.compare_digest(_mac(secret, key, [view[:size - _MAC_HEX]]), bytes(view[size - _MAC_HEX:])):
            raise ValueError("its signature does not match this cache's key")
        meta, arrays = _parse(buf)
        if meta.get("format") != FORMAT or meta.get("key") != key:
            raise ValueError("format or key mismatch")
        return meta, arrays
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, struct.error) as exc:
        path = cache_file(directory, key)
        _warn_once(str(path), f"grammask: ignoring unreadable cache file {path} ({exc}); rebuilding it")
        d.unlink(name)
        return None
    finally:
        d.close()


def _member_extra(offset: int, name: bytes) -> bytes:
    """A padding extra field that puts the member's data (right after its local header) at a multiple of
    64 bytes: numpy pads .npy headers to 64, so the array data is aligned too."""
    need = -(offset + _LOCAL_HEADER.size + len(name)) % _ALIGN
    if need == 0:
        return b""
    if need < 4:
        need += _ALIGN
    return struct.pack("<HH", _PAD_EXTRA_ID, need - 4) + bytes(need - 4)


def _write_npz(f, arrays: dict[str, np.ndarray]) -> None:
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.extra = _member_extra(f.tell(), info.filename.encode("utf-8"))
            zf.writestr(info, member.getbuffer())
        zf.comment = _MAC_PREFIX + b"0" * _MAC_HEX


def store(directory: Optional[Path], key: str, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    if directory is None:
        return
    directory = Path(directory)
    d = _open_dir(directory, create=True)
    if d is None:
        return
    meta = dict(meta, format=FORMAT, key=key)
    payload = dict(arrays, __meta__=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8))
    tmp = f".{key[:16]}-{secrets.token_hex(8)}.tmp"
    created = False
    try:
        secret = _read_key(d) or _new_key(d)
        fd = d.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        created = True
        with os.fdopen(fd, "w+b") as f:
            _write_npz(f, payload)
            size = f.tell()
            f.seek(0)
            chunks = iter(lambda: f.read(min(1 << 22, size - _MAC_HEX - f.tell())), b"")
            digest = _mac(secret, key, chunks)
            f.seek(size - _MAC_HEX)
            f.write(digest)
        d.replace(tmp, f"{key}.npz")
        created = False
    except OSError as exc:
        _warn_once(str(directory), f"grammask: cannot write the table cache in {directory} ({exc}); "
                   "compiling without it (set GRAMMASK_CACHE_DIR to a writable directory)")
    finally:
        if created:
            d.unlink(tmp)
        d.close()
