"""``syncfs(2)``: flush every file of one filesystem in a single call (Linux).

Python's :mod:`os` has ``fsync`` and ``sync`` but not ``syncfs``, so it is looked up in
the C library once. Each fsync of a file that grew makes ext4 (and most journalling
filesystems) commit its journal and flush the disk's cache; syncfs does that once for
every dirty file of the filesystem, which is what a group-commit round over a dozen
partition files needs.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from collections.abc import Callable
from functools import cache


@cache
def _libc_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):  # a C library without it (very old glibc, static)
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def available() -> bool:
    """Whether this system has ``syncfs``."""
    return _libc_syncfs() is not None


def syncfs(fd: int) -> None:
    """Flush the filesystem holding open file ``fd``; raises :class:`OSError` like fsync
    (``EBADF`` for a closed fd, ``EIO`` when writeback failed)."""
    fn = _libc_syncfs()
    if fn is None:
        raise OSError(errno.ENOSYS, "syncfs is not available on this system")
    if fn(fd) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
