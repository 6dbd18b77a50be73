"""A small, standard-library reader for R serialization (XDR format) and R lazy-load databases.

R packages store their data sets as a *lazy-load database*: ``Rdata.rdx`` is a compressed serialization of an index
``list(variables = list(<name> = c(offset, length), ...), references = ..., compressed = TRUE)`` and ``Rdata.rdb``
holds, at each ``(offset, length)``, a 4-byte big-endian uncompressed size followed by a compressed serialization of
the value (zlib when ``compressed`` is ``TRUE`` or 1; for 2 / 3 a type byte ``Z``/``2``/``X``/``0`` precedes the
zlib / bzip2 / xz / raw stream).

Only what plain data needs is supported: ``NULL``, atomic vectors (logical, integer, double, complex, character,
raw), generic vectors, pair lists, symbols, references and the compact ALTREP sequences. R values map to Python as:

- ``NULL`` -> ``None``; an ``NA`` element -> ``None``;
- atomic and generic vectors -> ``list`` (a vector with a ``names`` attribute -> ``dict`` from name to element);
- pair lists -> ``dict`` from tag to value; symbols -> ``str``.

Environments, closures and byte code raise ``NotImplementedError``: they never occur in the corpora we read.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import struct
import zlib
from typing import Any


__all__ = ["read_lazy_load_db", "read_lazy_load_index", "unserialize"]

# SEXP type codes (R's Rinternals.h) and the pseudo types used only in serialization (R's serialize.c).
_SYMSXP, _LISTSXP, _CHARSXP, _LGLSXP, _INTSXP, _REALSXP, _CPLXSXP = 1, 2, 9, 10, 13, 14, 15
_STRSXP, _VECSXP, _EXPRSXP, _RAWSXP = 16, 19, 20, 24
_REFSXP, _NILVALUE_SXP, _ALTREP_SXP, _ATTRLISTSXP = 255, 254, 238, 239
_EMPTYENV_SXP, _BASEENV_SXP, _GLOBALENV_SXP = 242, 241, 253

_NA_INTEGER = -(2**31)
_HAS_ATTR, _HAS_TAG = 1 << 9, 1 << 10


class _Reader:
    """Reads one XDR (big-endian) R serialization stream, version 2 or 3."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0
        self.refs: list[Any] = []

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("Truncated R serialization stream.")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        return struct.unpack(">i", self._take(4))[0]

    def length(self) -> int:
        n = self.int()
        if n == -1:  # long vector: two 32-bit halves
            upper, lower = self.int(), self.int()
            n = (upper << 32) + lower
        return n

    def header(self) -> None:
        magic = self._take(2)
        if magic != b"X\n":
            raise ValueError(f"Only the XDR R serialization format is supported, got magic {magic!r}.")
        version = self.int()
        self.int(), self.int()  # writer's R version, minimal reader version
        if version == 3:
            self._take(self.int())  # native encoding name, e.g. b"UTF-8"
        elif version != 2:
            raise ValueError(f"Unsupported R serialization version {version}.")

    def item(self) -> Any:
        flags = self.int()
        sexptype = flags & 0xFF
        if sexptype == _NILVALUE_SXP:
            return None
        if sexptype in (_EMPTYENV_SXP, _BASEENV_SXP, _GLOBALENV_SXP):
            return None  # environments carry no data we need
        if sexptype == _REFSXP:
            index = flags >> 8 or self.int()
            return self.refs[index - 1]
        if sexptype == _SYMSXP:
            name = self.item()
            self.refs.append(name)
            return name
        if sexptype in (_LISTSXP, _ATTRLISTSXP):
            return self._pairlist(flags)
        if sexptype == _ALTREP_SXP:
            return self._altrep()
        if sexptype == _CHARSXP:
            return self._charsxp()
        value = self._vector(sexptype)
        if flags & _HAS_ATTR:
            value = _apply_attributes(value, self.item())
        return value

    def _pairlist(self, flags: int) -> dict:
        """A pair list read iteratively (attributes, tag, car, then the rest of the list)."""
        out: dict = {}
        while True:
            if flags & _HAS_ATTR:
                self.item()  # a pair list's own attributes are never needed for data
            tag = self.item() if flags & _HAS_TAG else len(out)
            out[tag] = self.item()
            flags = self.int()
            if flags & 0xFF == _NILVALUE_SXP:
                return out
            if flags & 0xFF not in (_LISTSXP, _ATTRLISTSXP):
                raise NotImplementedError(f"Unexpected R type {flags & 0xFF} at the end of a pair list.")

    def _charsxp(self) -> str | None:
        n = self.int()
        if n == -1:
            return None
        return self._take(n).decode("utf-8", errors="replace")

    def _vector(self, sexptype: int) -> list:
        n = self.length()
        if sexptype in (_LGLSXP, _INTSXP):
            values = struct.unpack(f">{n}i", self._take(4 * n))
            return [None if v == _NA_INTEGER else v for v in values]
        if sexptype == _REALSXP:
            return list(struct.unpack(f">{n}d", self._take(8 * n)))
        if sexptype == _CPLXSXP:
            values = struct.unpack(f">{2 * n}d", self._take(16 * n))
            return [complex(values[2 * i], values[2 * i + 1]) for i in range(n)]
        if sexptype == _STRSXP:
            return [self.item() for _ in range(n)]
        if sexptype in (_VECSXP, _EXPRSXP):
            return [self.item() for _ in range(n)]
        if sexptype == _RAWSXP:
            return list(self._take(n))
        raise NotImplementedError(f"R type {sexptype} is not supported by this reader (only plain data is).")

    def _altrep(self) -> list:
        info, state, attributes = self.item(), self.item(), self.item()
        class_name = info[0] if isinstance(info, dict) else None
        if class_name in ("compact_intseq", "compact_realseq"):
            n, start, step = state
            cast = int if class_name == "compact_intseq" else float
            value = [cast(start + i * step) for i in range(int(n))]
        elif isinstance(class_name, str) and class_name.startswith("wrap_"):
            value = state[0]
        else:
            raise NotImplementedError(f"ALTREP class {class_name!r} is not supported by this reader.")
        return _apply_attributes(value, attributes) if attributes else value


def _apply_attributes(value: Any, attributes: dict | None) -> Any:
    names = (attributes or {}).get("names")
    if names is not None and isinstance(value, list) and len(names) == len(value):
        return dict(zip(names, value))
    return value


def _decompress(data: bytes) -> bytes:
    """Undo the whole-file compression that ``saveRDS`` / lazy-load indices use (gzip, bzip2, xz or none)."""
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:3] == b"BZh":
        return bz2.decompress(data)
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.decompress(data)
    return data


def unserialize(data: bytes) -> Any:
    """Unserialize one R object from ``data`` (optionally gzip / bzip2 / xz compressed as a whole)."""
    reader = _Reader(_decompress(data))
    reader.header()
    return reader.item()


def read_lazy_load_index(rdx_path: str | os.PathLike) -> tuple[dict[str, tuple[int, int]], int]:
    """Parse a lazy-load index file (``*.rdx``).

    Returns:
        ``({variable name: (offset, length)}, compression)`` where ``compression`` is 0 (none), 1 (zlib) or 2 / 3
        (the method is named by a byte at the start of each chunk).
    """
    with open(rdx_path, "rb") as f:
        index = unserialize(f.read())
    if not isinstance(index, dict) or not isinstance(index.get("variables"), dict):
        raise ValueError(f"{rdx_path} is not an R lazy-load index (no named 'variables' list).")
    variables = {name: (int(pos[0]), int(pos[1])) for name, pos in index["variables"].items()}
    compressed = index.get("compressed", [1])
    compression = int(compressed[0] if isinstance(compressed, list) else compressed)
    return variables, compression


def _decompress_chunk(chunk: bytes, compression: int) -> bytes:
    expected = struct.unpack(">I", chunk[:4])[0]
    body = chunk[4:]
    if compression == 0:
        data = body
    elif compression == 1:
        data = zlib.decompress(body)
    else:  # 2 or 3: the first byte names the method actually used
        method, body = body[:1], body[1:]
        decoders = {b"Z": zlib.decompress, b"2": bz2.decompress, b"X": lzma.decompress, b"0": bytes}
        if method not in decoders:
            raise ValueError(f"Unknown lazy-load chunk compression {method!r}.")
        data = decoders[method](body)
    if len(data) != expected:
        raise ValueError(f"Lazy-load chunk decompressed to {len(data)} bytes, the header says {expected}.")
    return data


def read_lazy_load_db(path: str | os.PathLike, names: list[str] | None = None) -> dict[str, Any]:
    """Read variables of an R lazy-load database.

    Args:
        path: the database path without extension (e.g. ``.../janeaustenr/data/Rdata``) or with ``.rdx`` / ``.rdb``.
        names: the variables to read; all of them when ``None``.

    Returns:
        ``{name: value}`` with values converted as described in the module docstring.
    """
    stem = os.fspath(path)
    if stem.endswith((".rdx", ".rdb")):
        stem = stem[:-4]
    rdx, rdb = stem + ".rdx", stem + ".rdb"
    index, compression = read_lazy_load_index(rdx)
    missing = sorted(set(names or ()) - set(index))
    if missing:
        raise KeyError(f"Variables {missing} are not in {rdx}; available: {sorted(index)}.")
    out = {}
    with open(rdb, "rb") as f:
        for name in names or sorted(index):
            offset, length = index[name]
            f.seek(offset)
            out[name] = unserialize(_decompress_chunk(f.read(length), compression))
    return out
