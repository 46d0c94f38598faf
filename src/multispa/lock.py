"""One writer per output folder: an exclusive lock held by a writer command while it runs.

The lock is ``<folder>/.multispa.lock``, locked with ``fcntl.flock`` and holding the holder's
pid, host, command and start time (one JSON line). A second process finds it locked and stops
with a :class:`~multispa.errors.LockError` naming the holder. The kernel drops the lock when
its holder dies, however it dies (SIGKILL included): a lock file left by a killed run is stale,
and the next run takes it over and says so. A finished run deletes the file, so a folder
written in several interrupted sessions ends up with the same files as one written in one go.

Where the file system has no ``flock`` (some network mounts), the recorded holder decides: a
live pid on this host, or any holder on another host, keeps the folder; a dead local pid is
stale. That fallback is not atomic; the ``flock`` path is.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from multispa.errors import LockError
from multispa.fs import output_error

__all__ = ["LOCK_NAME", "FolderLock", "LockHolder"]

logger = logging.getLogger(__name__)

LOCK_NAME = ".multispa.lock"
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or held) a lock: pid, host name, command and start time (UTC, ISO 8601)."""

    pid: int
    host: str
    command: str
    started: str

    def describe(self) -> str:
        """E.g. ``"multispa generate (pid 4242 on node1, since 2025-01-01T10:00:00Z)"``."""
        return f"{self.command} (pid {self.pid} on {self.host}, since {self.started})"


def _read_holder(fd: int) -> LockHolder | None:
    try:
        data = os.pread(fd, 4096, 0)
        obj = json.loads(data.decode("utf-8"))
        return LockHolder(int(obj["pid"]), str(obj["host"]), str(obj["command"]),
                          str(obj["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class FolderLock:
    """The exclusive lock of one output folder (also a context manager).

    Args:
        folder: an existing folder.
        command: what holds it, shown to a second writer (e.g. ``"multispa prepare"``).

    Attributes:
        stale: the holder recorded by a run that died holding the lock, when one was taken over.
    """

    def __init__(self, folder: str | Path, command: str) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.command = command
        self.stale: LockHolder | None = None
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise.

        Raises:
            LockError: another live process holds it (the message names that process).
            OutputError: the lock file cannot be created (permission denied, disk full...).
        """
        for _ in range(100):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as error:
                raise output_error(self.path, error) from None
            try:
                locked = self._lock(fd)
            except BaseException:
                os.close(fd)
                raise
            if not locked:
                os.close(fd)
                continue  # the file was deleted by its previous holder meanwhile: retry
            self._fd = fd
            return
        raise LockError(self.folder, f"could not lock {self.path} (it keeps changing)")

    def _lock(self, fd: int) -> bool:
        """Lock ``fd``; False when ``fd`` no longer is the file at ``self.path``."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            flocked = True
        except BlockingIOError:
            raise self._busy(_read_holder(fd)) from None
        except OSError as error:
            if error.errno not in _NO_FLOCK:
                raise output_error(self.path, error) from None
            flocked = False
        try:
            same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            return False
        previous = _read_holder(fd)
        if not flocked and previous is not None and (
            previous.host != socket.gethostname() or _alive(previous.pid)
        ) and previous.pid != os.getpid():
            raise self._busy(previous)
        if previous is not None:
            self.stale = previous
            logger.warning("%s: taking over the lock of %s, which ended without releasing it",
                           self.folder, previous.describe())
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        me = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
              "started": started}
        data = (json.dumps(me) + "\n").encode("utf-8")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        except OSError as error:
            raise output_error(self.path, error) from None
        return True

    def _busy(self, holder: LockHolder | None) -> LockError:
        who = holder.describe() if holder is not None else "another process"
        return LockError(self.folder, f"in use by {who}; wait for it to finish or choose "
                                      f"another folder (lock file {LOCK_NAME})")

    def release(self) -> None:
        """Delete the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()
