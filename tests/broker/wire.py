"""A minimal raw Kafka client for protocol-level tests (uses our own codec to encode)."""

from __future__ import annotations

import socket
import struct

from broker.codec.primitives import Reader, Writer


class Wire:
    def __init__(self, port: int, client_id: str = "wire-test") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.client_id = client_id
        self.corr = 0

    def close(self) -> None:
        self.sock.close()

    def send(self, api_key: int, version: int, body: bytes) -> int:
        self.corr += 1
        head = Writer().int16(api_key).int16(version).int32(self.corr)
        head.nullable_string(self.client_id)
        frame = head.getvalue() + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        return self.corr

    def recv(self) -> tuple[int, Reader]:
        size = struct.unpack(">i", self._exact(4))[0]
        data = self._exact(size)
        r = Reader(data)
        return r.int32(), r

    def call(self, api_key: int, version: int, body: bytes) -> Reader:
        corr = self.send(api_key, version, body)
        got, r = self.recv()
        assert got == corr
        return r

    def _exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed by broker")
            buf += chunk
        return buf

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False


def produce_body(topic: str, partition: int, batch: bytes, acks: int = -1) -> bytes:
    w = Writer().nullable_string(None).int16(acks).int32(5000)
    w.int32(1).string(topic).int32(1).int32(partition).nullable_bytes(batch)
    return w.getvalue()


def read_produce_response(r: Reader, version: int) -> tuple[int, int]:
    """(error_code, base_offset) of the single partition."""
    r.int32()
    r.string()
    r.int32()
    r.int32()
    err = r.int16()
    base = r.int64()
    return err, base
