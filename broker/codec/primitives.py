"""Kafka protocol primitives (non-flexible encodings only; we never advertise KIP-482).

:class:`Reader` raises :class:`~broker.errors.DecodeError` on any malformed input, so a
handler decoding a bad frame fails cleanly and only its connection is closed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import TypeVar

from broker.errors import DecodeError

T = TypeVar("T")

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")


class Reader:
    """Sequential decoder over one request body."""

    __slots__ = ("_buf", "_pos")

    def __init__(self, buf: bytes | memoryview, pos: int = 0) -> None:
        self._buf = memoryview(buf)
        self._pos = pos

    @property
    def pos(self) -> int:
        return self._pos

    def remaining(self) -> int:
        return len(self._buf) - self._pos

    def _take(self, n: int) -> memoryview:
        if n < 0 or self._pos + n > len(self._buf):
            raise DecodeError(f"need {n} bytes at {self._pos}, have {self.remaining()}")
        view = self._buf[self._pos : self._pos + n]
        self._pos += n
        return view

    def _unpack(self, s: struct.Struct) -> int:
        if self._pos + s.size > len(self._buf):
            raise DecodeError(f"truncated at {self._pos}")
        (v,) = s.unpack_from(self._buf, self._pos)
        self._pos += s.size
        return int(v)

    def int8(self) -> int:
        return self._unpack(_I8)

    def int16(self) -> int:
        return self._unpack(_I16)

    def int32(self) -> int:
        return self._unpack(_I32)

    def uint32(self) -> int:
        return self._unpack(_U32)

    def int64(self) -> int:
        return self._unpack(_I64)

    def boolean(self) -> bool:
        return self.int8() != 0

    def varint(self) -> int:
        return zigzag_decode(self.uvarint())

    def uvarint(self) -> int:
        shift = 0
        result = 0
        while True:
            if shift > 63:
                raise DecodeError("varint too long")
            b = self._take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def varlong(self) -> int:
        return self.varint()

    def nullable_string(self) -> str | None:
        n = self.int16()
        if n == -1:
            return None
        if n < -1:
            raise DecodeError(f"bad string length {n}")
        try:
            return bytes(self._take(n)).decode()
        except UnicodeDecodeError as exc:
            raise DecodeError("string is not utf-8") from exc

    def string(self) -> str:
        s = self.nullable_string()
        if s is None:
            raise DecodeError("null where a string is required")
        return s

    def nullable_bytes(self) -> memoryview | None:
        n = self.int32()
        if n == -1:
            return None
        if n < -1:
            raise DecodeError(f"bad bytes length {n}")
        return self._take(n)

    def bytes_(self) -> bytes:
        b = self.nullable_bytes()
        return b"" if b is None else bytes(b)

    def nullable_array(self, item: Callable[[Reader], T]) -> list[T] | None:
        n = self.int32()
        if n == -1:
            return None
        if n < -1 or n > self.remaining():
            raise DecodeError(f"bad array length {n}")
        return [item(self) for _ in range(n)]

    def array(self, item: Callable[[Reader], T]) -> list[T]:
        items = self.nullable_array(item)
        return [] if items is None else items


def zigzag_decode(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def zigzag_encode(n: int) -> int:
    return (n << 1) ^ (n >> 63)


class Writer:
    """Append-only encoder for one response body."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts = bytearray()

    def getvalue(self) -> bytes:
        return bytes(self._parts)

    def raw(self, b: bytes | bytearray | memoryview) -> Writer:
        self._parts += b
        return self

    def int8(self, v: int) -> Writer:
        self._parts += _I8.pack(v)
        return self

    def int16(self, v: int) -> Writer:
        self._parts += _I16.pack(v)
        return self

    def int32(self, v: int) -> Writer:
        self._parts += _I32.pack(v)
        return self

    def uint32(self, v: int) -> Writer:
        self._parts += _U32.pack(v)
        return self

    def int64(self, v: int) -> Writer:
        self._parts += _I64.pack(v)
        return self

    def boolean(self, v: bool) -> Writer:
        return self.int8(1 if v else 0)

    def uvarint(self, v: int) -> Writer:
        while True:
            b = v & 0x7F
            v >>= 7
            if v:
                self._parts.append(b | 0x80)
            else:
                self._parts.append(b)
                return self

    def varint(self, v: int) -> Writer:
        return self.uvarint(zigzag_encode(v) & 0xFFFFFFFFFFFFFFFF)

    def nullable_string(self, s: str | None) -> Writer:
        if s is None:
            return self.int16(-1)
        b = s.encode()
        self.int16(len(b))
        self._parts += b
        return self

    def string(self, s: str) -> Writer:
        return self.nullable_string(s)

    def nullable_bytes(self, b: bytes | bytearray | memoryview | None) -> Writer:
        if b is None:
            return self.int32(-1)
        self.int32(len(b))
        self._parts += b
        return self

    def array(self, items: Iterable[T], item: Callable[[Writer, T], object]) -> Writer:
        seq = list(items)
        self.int32(len(seq))
        for x in seq:
            item(self, x)
        return self

    def nullable_array(
        self, items: Iterable[T] | None, item: Callable[[Writer, T], object]
    ) -> Writer:
        if items is None:
            return self.int32(-1)
        return self.array(items, item)
