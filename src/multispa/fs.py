"""File-system faults under one policy, for every command.

- :func:`failure_text`: the one line a command prints (or a unit report holds) for an error:
  project errors as they are, OS errors as ``PATH: reason`` (permission denied, no space left
  on device, is a folder...), encoding and nesting errors in words.
- :func:`input_error`: an ``OSError`` met while reading an input, as a ``DatasetError``;
  :func:`naming`: an ``OSError`` raised by a write on an open file (which carries no file name)
  with the file named, so that the policy can name it.
- :func:`present_file`: whether an input file is there; a folder (or anything but a regular
  file) where a file is expected is an error, never "absent".
- :func:`check_output_dir`, :func:`check_output_file`: refuse an output path that is, or lies
  under, a file before anything is read or written.
- :func:`output_folder`: check, create and lock an output folder (:mod:`multispa.lock`); when
  the command fails, the folders it created are removed again if they are still empty;
  :func:`writes_folder` does the same for a whole function, as a decorator.
- :func:`write_output_file`: write one output file atomically (a temporary name, then a
  rename), creating its folder; a failed write leaves neither the temporary nor the folder.
- :func:`printable`, :func:`is_utf8_name`: file names that are not valid UTF-8 (Python holds
  their undecodable bytes as surrogate escapes) are shown with those bytes written ``\\xNN``.
"""

from __future__ import annotations

import errno
import functools
import inspect
import os
import re
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from multispa.errors import DatasetError, FormatError, MultispaError, OutputError

__all__ = [
    "check_output_dir",
    "check_output_file",
    "create_folder",
    "failure_text",
    "input_error",
    "is_utf8_name",
    "naming",
    "os_reason",
    "output_error",
    "output_folder",
    "present_file",
    "printable",
    "remove_created",
    "write_output_file",
    "writes_folder",
]

_REASONS = {
    errno.ENOENT: "not found",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EISDIR: "is a folder, expected a file",
    errno.ENOTDIR: "not a folder (or a part of the path is a file)",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EEXIST: "already exists",
    errno.EFBIG: "file too large",
    errno.ENAMETOOLONG: "file name too long",
}
_NEWLINES = re.compile(r"\s*[\r\n]+\s*")
_Function = TypeVar("_Function", bound=Callable[..., Any])


def printable(text: str) -> str:
    """``text`` with the undecodable bytes of file names (surrogate escapes) as ``\\xNN``.

    >>> printable("scene\\udcff_00")
    'scene\\\\xff_00'
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        raw = text.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


def is_utf8_name(name: str) -> bool:
    """Whether a file name (as Python decoded it) was valid UTF-8 on disk."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def os_reason(error: OSError) -> str:
    """The reason of an OS error in words: ``"permission denied"``, ``"no space left on
    device"``..."""
    if error.errno in _REASONS:
        return _REASONS[error.errno]
    text = error.strerror or str(error) or type(error).__name__
    return text[:1].lower() + text[1:]


def _os_error_text(error: OSError) -> str:
    reason = os_reason(error)
    if error.filename is None:
        return reason
    where = printable(os.fsdecode(error.filename))
    if error.filename2 is not None:
        where += f" -> {printable(os.fsdecode(error.filename2))}"
    return f"{where}: {reason}"


def failure_text(error: BaseException) -> str | None:
    """The one-line message for an error a command reports, or None for anything else (a bug).

    Project errors keep their text; OS errors read ``PATH: reason``; text that is not UTF-8,
    input nested too deeply and memory exhaustion are said in words. Newlines become spaces and
    undecodable name bytes ``\\xNN``.
    """
    if isinstance(error, MultispaError):
        text = str(error)
    elif isinstance(error, OSError):
        text = _os_error_text(error)
    elif isinstance(error, UnicodeDecodeError):
        text = f"text is not valid UTF-8 ({error.reason} at byte {error.start})"
    elif isinstance(error, UnicodeEncodeError):
        text = (f"cannot write {error.object[error.start:error.end]!r} as UTF-8 (a name that is "
                "not valid UTF-8?)")
    elif isinstance(error, RecursionError):
        text = "input nested too deeply to be read"
    elif isinstance(error, MemoryError):
        text = "out of memory"
    else:
        return None
    return _NEWLINES.sub(" ", printable(text)).strip()


def input_error(path: str | Path, error: OSError) -> DatasetError:
    """An OS error met while reading the input ``path`` as a project error naming the file."""
    where = error.filename if error.filename is not None else path
    return DatasetError(os.fsdecode(where), os_reason(error))


def naming(error: OSError, path: str | Path) -> OSError:
    """``error`` itself when it names a file, else the same error (class and errno) naming
    ``path`` (a failed ``write`` on an open file, e.g. a full disk, names none)."""
    if error.filename is not None:
        return error
    if error.errno is None:  # e.g. numpy's "N requested and M written": a short write
        return OSError(errno.EIO, f"short write ({error})", os.fspath(path))
    return type(error)(error.errno, error.strerror or str(error), os.fspath(path))


def present_file(path: str | Path) -> bool:
    """Whether the input file ``path`` is there.

    Returns:
        True for a regular file, False when nothing is at ``path``.

    Raises:
        FormatError: something else is there (a folder, a socket...).
        DatasetError: the path cannot be examined (e.g. permission denied on a parent).
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as error:
        raise input_error(path, error) from None
    if stat.S_ISREG(mode):
        return True
    what = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
    raise FormatError(path, f"is {what}, expected a file")


def output_error(path: str | Path, error: OSError, option: str = "--out") -> OutputError:
    """An OS error met while writing the output ``path`` (given as ``option``)."""
    where = error.filename if error.filename is not None else path
    return OutputError(os.fsdecode(where), f"{os_reason(error)} ({option})")


def _nearest_existing(path: Path, option: str) -> tuple[Path, int] | None:
    """``path`` or its closest existing parent, with its ``st_mode``; None when none exists."""
    for candidate in (path, *path.parents):
        try:
            return candidate, os.stat(candidate).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as error:
            raise output_error(candidate, error, option) from None
    return None


def check_output_dir(path: str | Path, option: str = "--out") -> None:
    """Refuse an output folder that exists as something else, or lies under a file.

    Raises:
        OutputError: naming the path and, when the folder lies under a file, that file.
    """
    path = Path(path)
    found = _nearest_existing(path, option)
    if found is None or stat.S_ISDIR(found[1]):
        return
    if found[0] == path:
        raise OutputError(path, f"exists and is not a folder ({option})")
    raise OutputError(path, f"{found[0]} is a file, not a folder ({option})")


def check_output_file(path: str | Path, option: str = "--out") -> None:
    """Refuse an output file path that is a folder, or lies under a file.

    Raises:
        OutputError: naming the path.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(path, f"is a folder, expected a file ({option})")
    found = _nearest_existing(path.parent, option)
    if found is not None and not stat.S_ISDIR(found[1]):
        raise OutputError(path, f"{found[0]} is a file, not a folder ({option})")


def create_folder(path: str | Path, option: str = "--out") -> Path | None:
    """Check and create the output folder ``path`` (and its parents).

    Returns:
        The topmost folder this call created (remove it with :func:`remove_created` when the
        command fails), or None when ``path`` existed.

    Raises:
        OutputError: a file in the way, or the folder cannot be created (permission, disk).
    """
    path = Path(path)
    check_output_dir(path, option)
    created: Path | None = None
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        created = candidate
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise output_error(path, error, option) from None
    return created


def remove_created(path: str | Path, created: Path | None) -> None:
    """Remove ``path`` and its parents up to ``created`` while they are empty (no-op if None)."""
    if created is None:
        return
    path = Path(path)
    for folder in (path, *path.parents):
        try:
            folder.rmdir()
        except OSError:  # not empty (something was written), or gone
            return
        if folder == created:
            return


@contextmanager
def output_folder(path: str | Path, command: str, *, option: str = "--out",
                  lock: bool = True) -> Iterator[Path]:
    """Create (if needed) and lock the output folder of a writer command for its duration.

    Args:
        path: the folder.
        command: what writes it, e.g. ``"multispa generate"`` (shown to a second writer).
        option: the option that named the folder, for messages.
        lock: take the folder's lock (:class:`multispa.lock.FolderLock`).

    Raises:
        OutputError: a file in the way, or the folder cannot be created or locked.
        LockError: another running process holds the folder.

    On an exception inside the block, the folders this call created are removed again when
    they are empty (a failed command leaves no empty output folder behind); an ``OSError``
    that names no file (a failed write on an open file) is re-raised naming ``path``.
    """
    from multispa.lock import FolderLock

    path = Path(path)
    created = create_folder(path, option)
    holder = FolderLock(path, command) if lock else None
    try:
        if holder is not None:
            holder.acquire()
    except BaseException:
        remove_created(path, created)
        raise
    finished = False
    try:
        yield path
        finished = True
    except OSError as error:  # a failed write on an open file names no file: name the folder
        if error.filename is None:
            raise naming(error, path) from None
        raise
    finally:
        if holder is not None:
            holder.release()
        if not finished:
            with suppress(OSError):
                remove_created(path, created)


def write_output_file(path: str | Path, data: str | bytes, option: str = "--out") -> Path:
    """Write ``data`` (text as UTF-8) to the output file ``path`` and return the path.

    The bytes go to a temporary name beside ``path`` and are renamed into place, so ``path``
    is either the old file or the complete new one; the folders created for it are removed
    again when the write fails (a full disk...).

    Raises:
        OutputError: ``path`` is a folder, lies under a file, or cannot be written.
    """
    path = Path(path)
    check_output_file(path, option)
    created = create_folder(path.parent, option)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(temporary, path)
    except OSError as error:
        with suppress(OSError):
            temporary.unlink(missing_ok=True)
        remove_created(path.parent, created)
        raise output_error(path, error, option) from None
    return path


def writes_folder(command: str, *, argument: str = "out",
                  option: str = "--out") -> Callable[[_Function], _Function]:
    """Decorator: each call runs inside :func:`output_folder` of its ``argument`` (the output
    folder parameter, by name), checked before anything else is done.

    >>> @writes_folder("multispa synth", argument="out", option="OUT")
    ... def write(out, config): ...
    """

    def decorate(function: _Function) -> _Function:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def locked(*args: Any, **kwargs: Any) -> Any:
            folder = signature.bind(*args, **kwargs).arguments[argument]
            check_output_dir(folder, option)
            with output_folder(folder, command, option=option):
                return function(*args, **kwargs)

        return locked  # type: ignore[return-value]

    return decorate
