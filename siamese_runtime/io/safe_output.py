"""What a job may write, and how: one owner for output safety.

Outputs are regular files written beside their target and renamed into place once, whole; streams
(stdout, a FIFO, a character device such as /dev/null) get the finished bytes in one go at the end. A job
refuses, before any work, a target that is its input or another of its outputs, a directory, or a
symbolic link; its own bookkeeping files (partial, checkpoint, lock) are never opened through a link.
An exclusive lock on each target for the job's lifetime keeps a second job away from it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import OutputChangedError, OutputLockedError, ResumeError, UnsafeOutputError, os_error_text

log = logging.getLogger(__name__)

STDIO = "-"
NAME_MAX = 255
SPOOL_BYTES = 32 << 20  # output for a stream is kept in memory up to this size, then in a temporary file
NEW_FILE_MODE = 0o666  # as open() creates files: the umask decides
BOOKKEEPING = ("partial", "lock", "checkpoint.json", "checkpoint.json.tmp")
LONGEST_SUFFIX = max((*BOOKKEEPING, "rejects.jsonl"), key=len)  # the longest name a target's sidecars add


def sidecar_path(target: str | Path, suffix: str, hidden: bool = True) -> Path:
    """A file beside `target` named after it (`.NAME.SUFFIX`); a name too long for the file system is
    shortened, with a hash of the whole name so that it stays unique and the same on every run."""
    path = Path(target)
    prefix = "." if hidden else ""
    name = f"{prefix}{path.name}.{suffix}"
    if len(os.fsencode(f".{path.name}.{LONGEST_SUFFIX}")) > NAME_MAX:  # names are bytes on disk, as they are
        # every sidecar of one target shortened alike, to one stem: a target named as that stem then shares its
        # lock, so two targets can never share a partial file
        digest = hashlib.sha256(os.fsencode(path.name)).hexdigest()[:16]
        room = NAME_MAX - len(f".~{digest}.{LONGEST_SUFFIX}")
        stem = os.fsdecode(os.fsencode(path.name)[:room].decode(errors="ignore").encode())
        name = f"{prefix}{stem}~{digest}.{suffix}"
    return path.with_name(name)


def bookkeeping_owner(path: Path) -> tuple[Path, str] | None:
    """(the target, the kind) where `path` is named as a target's bookkeeping file (`.NAME.KIND`), else None."""
    for kind in BOOKKEEPING:
        name = path.name.removesuffix(f".{kind}")
        if path.name.startswith(".") and name != path.name and len(name) > 1:
            return path.with_name(name[1:]), kind
    return None


def partial_path(target: str | Path) -> Path:
    """Where a file target is written until the job completes: a hidden file beside it."""
    return sidecar_path(target, "partial")


def is_stream(path: str) -> bool:
    """stdout, or a path that names a FIFO, socket or character device (followed through links)."""
    if path == STDIO:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


def is_regular_input(path: str) -> bool:
    """A file that can be read twice and sought in: what fingerprinting and resuming need."""
    return path != STDIO and stat.S_ISREG(os.stat(path).st_mode)


def file_identity(path: str) -> dict[str, int] | None:
    """What a rewrite, an append or a replacement of a regular file changes (its device, inode, size, and the
    times of its last write and last change, the second not settable by a user); None for stdin or a stream."""
    if not is_regular_input(path):
        return None
    info = os.stat(path)
    return {"device": info.st_dev, "inode": info.st_ino, "size": info.st_size, "written_ns": info.st_mtime_ns,
            "changed_ns": info.st_ctime_ns}


def check_target(label: str, path: str) -> None:
    """Refuse a file target that is a directory, a symbolic link or a block device, or has no folder, or is named
    as a job's bookkeeping file (`.NAME.partial`, ...: another job's, perhaps)."""
    if path == STDIO or is_stream(path):
        return
    if owner := bookkeeping_owner(Path(path)):
        raise UnsafeOutputError(f"{label} {path} is named as the {owner[1]} file of a job writing {owner[0]}; a job "
                                "never writes another's bookkeeping files: give another name")
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        folder = os.path.dirname(path) or "."
        if not os.path.isdir(folder):
            what = "is not a folder" if os.path.exists(folder) else "does not exist"
            raise UnsafeOutputError(f"{label} {path}: its folder {folder} {what}") from None
        return
    if stat.S_ISLNK(info.st_mode):
        if os.readlink(path).startswith(("/proc/self/fd/", "/dev/fd/")):
            raise UnsafeOutputError(f"{label} {path} is this process's descriptor, a link to where it points now; "
                                    "give - for stdout")
        raise UnsafeOutputError(f"{label} {path} is a symbolic link (to {os.readlink(path)}); give the file it "
                                "points to, or another path: a job never writes through a link")
    if stat.S_ISDIR(info.st_mode):
        raise UnsafeOutputError(f"{label} {path} is a directory; give a file path")
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeOutputError(f"{label} {path} is not a regular file, a FIFO or a character device")


def check_no_overlap(input_path: str, targets: Mapping[str, str]) -> None:
    """Refuse unsafe targets (label -> path): sockets; file targets that are directories, links, ...; targets that
    are the input or one another; and an input or target where a target's bookkeeping file goes."""
    for label, path in targets.items():
        with suppress(OSError):
            if path != STDIO and stat.S_ISSOCK(os.stat(path).st_mode):
                raise UnsafeOutputError(f"{label} {path} is a socket, which a job cannot open; give a file, a FIFO, "
                                        "a device or - for stdout")
    files = {label: path for label, path in targets.items() if not is_stream(path)}
    for label, path in files.items():
        check_target(label, path)
    check_distinct(input_path, list(targets.items()))
    for label, path in files.items():
        for kind in BOOKKEEPING:
            _check_not_bookkeeping(input_path, targets, label, kind, _unfollowed(sidecar_path(path, kind)))


def _check_not_bookkeeping(input_path: str, targets: Mapping[str, str], label: str, kind: str, own: str) -> None:
    """Refuse the input or a target at `own`, where the `label` target's `kind` file goes (replaced, never
    followed): named so, or, for stdin and stdout, opened there by the shell."""
    for other_label, other in [("input", input_path), *targets.items()]:
        descriptor = 0 if other_label == "input" else 1
        if other != STDIO and os.path.realpath(other) == own:
            raise UnsafeOutputError(f"the {other_label} {other} is where the {label}'s {kind} file goes; it would be "
                                    "destroyed: rename it or write somewhere else")
        if other == STDIO and _same_target(own, -1, other, descriptor):
            raise UnsafeOutputError(f"the {other_label} ({_named(other, descriptor)}) is {own}, where the {label}'s "
                                    f"{kind} file goes; it would be destroyed: redirect it elsewhere")


def _unfollowed(path: Path) -> str:
    """`path` with its folder resolved but not its last component, which the job replaces, never follows."""
    return os.path.join(os.path.realpath(path.parent), path.name)


def check_distinct(input_path: str, targets: list[tuple[str, str]]) -> None:
    """Refuse targets (label, path) that are the input, or the same file as the target before them: compared as
    the files they name (hard links and links included; `-` as the file or pipe stdin or stdout is, so that
    `>> input` and `> reject file` are caught) and, where they do not exist yet, as resolved paths. A terminal
    or /dev/null may take several."""
    for label, path in targets:
        if _same_target(input_path, 0, path, 1):
            raise UnsafeOutputError(f"the {label} {_named(path, 1)} is the input {_named(input_path, 0)}; it would "
                                    "be destroyed: write somewhere else")
    for i, (label, path) in enumerate(targets):
        for other_label, other in targets[:i]:
            if _same_target(path, 1, other, 1):
                where = path if path == other else f"{_named(other, 1)} and {_named(path, 1)}"
                raise UnsafeOutputError(f"the {other_label} and the {label} are the same file ({where}); "
                                        "give them different paths")


CHARACTER_DEVICE = (-1, -1)  # the identity of a terminal or /dev/null: never the same file as another target


def _same_target(a: str, a_descriptor: int, b: str, b_descriptor: int) -> bool:
    """Whether paths `a` and `b` (`-`: the descriptor given) are one file or stream; a character device is none."""
    first, second = _identity(a, a_descriptor), _identity(b, b_descriptor)
    if CHARACTER_DEVICE in (first, second):
        return False
    if first is not None and second is not None:
        return first == second
    return STDIO not in (a, b) and os.path.realpath(a) == os.path.realpath(b)


def _identity(path: str, descriptor: int) -> tuple[int, int] | None:
    """The device and inode of what `path` names (`-`: the descriptor), links followed; None where there is none."""
    try:
        info = os.fstat(descriptor) if path == STDIO else os.stat(path)
    except OSError:
        return None
    return CHARACTER_DEVICE if stat.S_ISCHR(info.st_mode) else (info.st_dev, info.st_ino)


def _named(path: str, descriptor: int) -> str:
    return ("stdin" if descriptor == 0 else "stdout") if path == STDIO else path


def _open_private(path: Path, flags: int) -> int:
    """A descriptor of `path` opened without following a link at its last component; a regular file with no other
    name only (a hard link would make a write here a write to another file, the input perhaps)."""
    try:
        descriptor = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, NEW_FILE_MODE)
    except OSError as error:
        if error.errno != errno.ELOOP:
            raise
        raise UnsafeOutputError(f"{path} is a symbolic link; a job never follows one for its own files: "
                                "remove it") from None
    opened = os.fstat(descriptor)
    if not stat.S_ISREG(opened.st_mode) or opened.st_nlink > 1:
        os.close(descriptor)
        what = "is not a regular file" if not stat.S_ISREG(opened.st_mode) else "has another name (a hard link)"
        raise UnsafeOutputError(f"{path} {what}; a job writes its own files only: remove it")
    return descriptor


def create_exclusively(path: Path) -> int:
    """A new, empty file at `path`, created by this call alone: a leftover file or link there is removed
    first, and a link planted in between makes the creation fail rather than be followed."""
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            raise UnsafeOutputError(f"{path} is a directory; remove it")
        os.unlink(path)
    except FileNotFoundError:
        pass
    try:
        return _open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        raise UnsafeOutputError(f"{path} appeared while this job created it; is another process using it?") from None


class OutputLock:
    """An exclusive lock on a target for a job's lifetime: `.NAME.lock` beside it, holding the owner's pid."""

    def __init__(self, target: str) -> None:
        self.path = sidecar_path(target, "lock")
        self.target = target
        self._descriptor: int | None = None

    def acquire(self) -> None:
        """The lock, or OutputLockedError naming the holder; an OSError names the target and its lock file."""
        try:
            with _naming(self.path):
                self._acquire()
        except OSError as error:
            why = f"{error.strerror or error} (the lock file of {self.target})"
            raise type(error)(error.errno, why, error.filename or str(self.path)) from error

    def _acquire(self) -> None:
        while True:
            descriptor = _open_private(self.path, os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                owner = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(descriptor)
                if error.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                    raise
                raise OutputLockedError(f"{self.target} is being written by another job (pid {owner}); "
                                        "wait for it to finish or write somewhere else") from None
            if self._still_linked(descriptor):  # not a file that the previous owner unlinked meanwhile
                break
            os.close(descriptor)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        self._descriptor = descriptor

    def _still_linked(self, descriptor: int) -> bool:
        try:
            current = os.lstat(self.path)
        except FileNotFoundError:
            return False
        opened = os.fstat(descriptor)
        return (current.st_dev, current.st_ino) == (opened.st_dev, opened.st_ino)

    def release(self) -> None:
        if self._descriptor is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._descriptor)
            self._descriptor = None


# The signals that stop a job (Ctrl-C, a scheduler's SIGTERM, a closed terminal's SIGHUP): held at commit points.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def signals_held(deliver: bool = False) -> Iterator[None]:
    """Stop signals received inside the block wait for its end. If the block fails, or with `deliver`, they are
    delivered then; if it succeeds they are logged and dropped: a block that commits a job's files leaves nothing
    to stop, and a signal must not turn a finished job into a failed one ("stopped; --resume goes on") with its
    files complete. Python runs handlers in the main thread only, so elsewhere this does nothing; SIGKILL cannot
    be held. Hold signals only around steps that end by themselves (renames, small writes, fsyncs), never around
    a write to a stream, which waits as long as its reader does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {number: signal.signal(number, lambda signum, _: received.append(signum)) for number in STOP_SIGNALS}

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)

    try:
        yield
    except BaseException:
        deliver = True
        raise
    finally:
        restore()
        for number in dict.fromkeys(received):
            if deliver:
                signal.raise_signal(number)
            else:
                log.warning("%s arrived after the job's files were committed: they are complete, and the job ends "
                            "as done", signal.Signals(number).name)


@contextmanager
def locked(targets: Iterable[str | None]) -> Iterator[None]:
    """Each file target locked for the block's lifetime (streams and None are skipped; the caller leaves out
    remote URIs); a second job on one of them fails at once with OutputLockedError naming the holder. After a block that
    succeeded, the locks are released with stop signals held (signals_held): the job is done."""
    locks: list[OutputLock] = []

    def release() -> None:
        for lock in reversed(locks):
            lock.release()

    try:
        for target in targets:
            if target is not None and not is_stream(target):
                locks.append(OutputLock(target))
                locks[-1].acquire()
        yield
    except BaseException:
        release()
        raise
    with signals_held():
        try:
            release()
        except OSError as error:  # the job is done; a lock file left behind is taken over by the next job
            log.warning("the job is done, but a lock could not be removed: %s", os_error_text(error))


@dataclass(frozen=True)
class Prefix:
    """The first `size` bytes of a file, by their sha256: what a checkpoint says a job had committed."""

    size: int
    sha256: str


class AtomicFile:
    """Bytes that appear at `target` whole, or not at all.

    A file target is written to its partial file, synced on demand, renamed into place by `commit`;
    `resume_at` reopens an existing partial file cut back to that prefix (what a checkpoint recorded), after
    checking that the partial file still begins with exactly those bytes.
    A stream target (stdout, a FIFO, a device) is spooled and copied to it by `commit`: nothing to resume.
    `live` gives that up: a stream target receives each write at once (a pipeline's `| head` sees rows as they
    come), and a failure cannot take back what it received. Every OSError raised while writing names the file
    it concerns.
    """

    def __init__(self, target: str, resume_at: Prefix | None = None, live: bool = False) -> None:
        self.target = target
        self.partial: Path | None = None
        self._written: tuple[int, int] | None = None  # the device and inode of the partial file this job writes
        self._published = False
        self._digest = hashlib.sha256()
        self._stream: IO[bytes]
        self._live: ExitStack | None = None
        if is_stream(target):
            if resume_at is not None:
                raise UnsafeOutputError(f"{target} is a stream; a job writing to it cannot resume")
            if live:
                self._live = ExitStack()
                with _naming(target):
                    self._stream = self._live.enter_context(_opened_stream(target))
                return
            self._stream = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (closed by commit/discard)
            return
        self.partial = partial_path(target)
        with _naming(self.partial):
            if resume_at is None:
                self._stream = os.fdopen(create_exclusively(self.partial), "wb")
            else:
                self._stream = os.fdopen(_open_private(self.partial, os.O_RDWR), "r+b")
                self._reopen_at(resume_at)
        written = os.fstat(self._stream.fileno())
        self._written = (written.st_dev, written.st_ino)

    def _reopen_at(self, prefix: Prefix) -> None:
        """Hash the partial file's first `prefix.size` bytes, refuse it unless they are the prefix, cut it there."""
        remaining = prefix.size
        while remaining:
            block = self._stream.read(min(remaining, 1 << 20))
            if not block:
                break
            self._digest.update(block)
            remaining -= len(block)
        if remaining or self._digest.hexdigest() != prefix.sha256:
            self._stream.close()
            raise ResumeError(f"cannot resume: {self.partial} does not begin with the {prefix.size} bytes the "
                              "checkpoint recorded (changed or cut since); rerun without --resume to start over")
        self._stream.truncate(prefix.size)
        self._stream.seek(prefix.size)

    @property
    def stream(self) -> IO[bytes]:
        """The open binary stream, for writers (such as Parquet's) that write themselves."""
        return self._stream

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        with _naming(self.partial or self.target):
            self._stream.write(data)
            if self._live is not None:
                self._stream.flush()
        self._digest.update(data)

    def sync(self) -> Prefix:
        """Flush to disk; the bytes written so far (size 0 for a stream target)."""
        with _naming(self.partial or self.target):
            self._stream.flush()
            if self.partial is None:
                return Prefix(0, hashlib.sha256().hexdigest())
            os.fsync(self._stream.fileno())
            return Prefix(self._stream.tell(), self._digest.hexdigest())

    def commit(self) -> None:
        """Make the complete file visible under its name, whole; or copy it to the stream (a live one has it)."""
        if self._live is not None:
            with _naming(self.target):
                self._stream.flush()
                self._live.close()
            return
        if self.partial is None:
            self._stream.seek(0)
            with _naming(self.target), _opened_stream(self.target) as out:
                shutil.copyfileobj(self._stream, out, 1 << 20)
                out.flush()
            self._stream.close()
            return
        self.sync()
        self._check_still_ours()
        self._stream.close()
        with _naming(self.target):
            os.replace(self.partial, self.target)
            self._published = True
            fsync_directory(self.partial.parent)

    def _check_still_ours(self) -> None:
        """The file at the partial path is the one this job wrote (not another program's, put there meanwhile)."""
        if (there := self._partial_identity()) != self._written:
            raise OutputChangedError(f"{self.partial} was {'removed' if there is None else 'replaced'} while this "
                                     f"job wrote it (by another program?); {self.target} is not published")

    def _partial_identity(self) -> tuple[int, int] | None:
        """The device and inode of what is at the partial path now (None: nothing)."""
        try:
            there = os.lstat(self.partial) if self.partial is not None else None
        except FileNotFoundError:
            return None
        return None if there is None else (there.st_dev, there.st_ino)

    def withdraw(self) -> None:
        """Undo a commit that renamed the file into place: back at its partial path, where a checkpoint that says
        'committing' finds it (a commit that failed after publishing one file must show none)."""
        if self._published and self.partial is not None:
            publish(Path(self.target), str(self.partial))  # the same rename, the other way
            self._published = False

    def discard(self) -> None:
        """Remove the partial file (a job that failed and cannot be resumed); a file another program put there is
        left alone."""
        self.close()
        if self.partial is not None and self._partial_identity() == self._written:
            self.partial.unlink(missing_ok=True)

    def close(self) -> None:
        """Close without removing anything: a resumable partial file stays for `--resume`."""
        if self._live is not None:
            with suppress(OSError):  # closing after a failure: what went wrong is being raised
                self._live.close()
            return
        self._stream.close()


def publish(partial: Path, target: str) -> None:
    """Rename a finished partial file into place, durably (the folder synced after)."""
    with _naming(target):
        os.replace(partial, target)
        fsync_directory(partial.parent)


def holds(path: Path | str, prefix: Prefix) -> bool:
    """Whether the file at `path` (never followed through a link) is exactly `prefix`'s bytes."""
    try:
        descriptor = _open_private(Path(path), os.O_RDONLY)
    except (FileNotFoundError, UnsafeOutputError):
        return False
    digest = hashlib.sha256()
    with os.fdopen(descriptor, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
            if stream.tell() > prefix.size:
                return False
        return stream.tell() == prefix.size and digest.hexdigest() == prefix.sha256


@contextmanager
def _naming(path: Path | str) -> Iterator[None]:
    """OSErrors raised inside name `path` when they name no file (a full disk, a failed fsync)."""
    try:
        yield
    except OSError as error:
        if error.filename is not None or isinstance(error, BrokenPipeError):
            raise
        raise type(error)(error.errno, error.strerror or str(error), str(path)) from error


@contextmanager
def _opened_stream(target: str) -> Iterator[IO[bytes]]:
    """stdout (left open), or a FIFO or device opened for writing and closed after."""
    if target == STDIO:
        yield sys.stdout.buffer
        return
    with open(target, "wb") as stream:
        yield stream


def write_json_atomically(path: Path, temporary: Path, data: dict[str, Any]) -> None:
    """Replace `path` by `data` as JSON, whole or not at all, and durably, through the file `temporary`
    beside it (created exclusively: a leftover of a killed process is replaced, so none accumulate)."""
    try:
        with _naming(temporary), os.fdopen(create_exclusively(temporary), "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=1)  # ASCII: a path that is not valid UTF-8 stays as an escape
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def read_private_text(path: Path) -> str:
    """The text of a bookkeeping file, never read through a link; FileNotFoundError when absent."""
    with os.fdopen(_open_private(path, os.O_RDONLY), encoding="utf-8") as stream:
        return stream.read()


def fsync_directory(path: Path) -> None:
    """The folder's entries (a rename, a new file) made durable; an error names the folder."""
    with _naming(path):
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
