"""``syncfs(2)``: flush every file of one filesystem in a single call (Linux).

Python's :mod:`os` has ``fsync`` and ``sync`` but not ``syncfs``, so it is looked up in
the C library once. Each fsync of a file that grew makes ext4 (and most journalling
filesystems) commit its journal and flush the disk's cache; syncfs does that once for
every dirty file of the filesystem, which is what a group-commit round over a dozen
partition files needs.

A filesystem must implement it for it to mean anything: FUSE, for one, has long taken
syncfs as writing dirty pages to its daemon without asking the daemon to flush them. So
``auto`` (:func:`trusted`) uses it only on the local filesystems listed here, looked up
by device in ``/proc/self/mountinfo``; elsewhere each file is fsynced.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Final

TRUSTED_FILESYSTEMS: Final = frozenset({"ext4", "ext3", "xfs", "btrfs", "f2fs", "tmpfs"})
"""Filesystems whose syncfs makes every dirty file of theirs durable."""

MOUNTINFO: Final = Path("/proc/self/mountinfo")


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


def filesystem_type(device: int, mountinfo: str) -> str | None:
    """The type of the filesystem mounted from ``device`` (``st_dev``) according to the
    text of ``/proc/<pid>/mountinfo``; None when no line names that device."""
    want = f"{os.major(device)}:{os.minor(device)}"
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if len(fields) > 2 and fields[2] == want and " - " in line:
            return line.split(" - ", 1)[1].split(" ", 1)[0] or None
    return None


@cache
def trusted(device: int) -> bool:
    """Whether syncfs on the filesystem of ``device`` makes its files durable (its type
    is one of :data:`TRUSTED_FILESYSTEMS`); False when that cannot be told."""
    if not available():
        return False
    try:
        text = MOUNTINFO.read_text(errors="replace")
    except OSError:
        return False
    return filesystem_type(device, text) in TRUSTED_FILESYSTEMS
