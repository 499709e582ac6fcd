"""The process around the command: the console script and `python -m siamese_runtime` start here.

From its first line, before numpy and onnxruntime import, SIGINT, SIGTERM and SIGHUP end the process with
128 + the signal's number, never a traceback; the standard streams name themselves in errors, a closed one
fails when used, and stderr never fails a command. Only then is the command line (command) imported.
"""

from __future__ import annotations

import io
import os
import sys
import threading
from collections.abc import Callable
from contextlib import suppress
from errno import EBADF
from types import TracebackType
from typing import TYPE_CHECKING, NoReturn, TextIO

from .exits import EXIT_OK, exit_status, say
from .signals import Terminated, after_the_command, defer_stop_signals

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer


def main() -> int:
    """The command's exit code; on the way no signal, error or stream failure gives a traceback."""
    defer_stop_signals()
    sys.excepthook = _escaped
    sys.unraisablehook = _unraisable
    stdout: StandardStream | None = None
    try:
        stdout = _guard_standard_streams()
        from .command import main as command

        code = command()
    except BaseException as error:
        code = _report(error)
    code = _flushed(code)
    after_the_command(code)
    if stdout is not None:
        stdout.quiet = True  # what it could not take is dropped at exit, not raised again as "Exception ignored"
    if any(thread.daemon and thread.is_alive() for thread in threading.enumerate()):
        _leave(code)
    return code


def _leave(code: int) -> NoReturn:
    """Exit now, skipping the interpreter's finalization: a thread still reading ahead (blocked in a read of a
    quiet stdin) holds stdin's lock, and finalization would abort the process (SIGABRT) waiting for it."""
    with suppress(BaseException):
        sys.stderr.flush()
    os._exit(code)


class StandardStream(io.RawIOBase):
    """Descriptor 0, 1 or 2, raw, for the buffered text streams that replace sys.stdin, stdout and stderr. Its
    errors name it ("<stdout>: No space left on device"); one closed when the process started (its descriptor
    now holds /dev/null) fails with EBADF when used; once `quiet` its failures are dropped."""

    def __init__(self, descriptor: int, name: str, *, closed: bool, quiet: bool) -> None:
        super().__init__()
        self.descriptor, self.name, self.was_closed, self.quiet = descriptor, name, closed, quiet

    def fileno(self) -> int:
        return self.descriptor

    def readable(self) -> bool:
        return self.descriptor == 0

    def writable(self) -> bool:
        return self.descriptor != 0

    def isatty(self) -> bool:
        return not self.was_closed and os.isatty(self.descriptor)

    def readinto(self, buffer: WriteableBuffer) -> int:
        return self._named(lambda: os.readv(self.descriptor, [buffer]), 0)

    def write(self, data: ReadableBuffer) -> int:
        return self._named(lambda: os.write(self.descriptor, data), memoryview(data).nbytes)

    def _named(self, call: Callable[[], int], dropped: int) -> int:
        """call(), its OSError naming this stream, or `dropped` (as if done) where failures are quiet."""
        try:
            if self.was_closed:
                raise OSError(EBADF, os.strerror(EBADF))
            return call()
        except OSError as error:
            if self.quiet:
                return dropped
            raise OSError(error.errno, error.strerror, self.name) from None


def _guard_standard_streams() -> StandardStream:
    """Stdout and stderr, and stdin where it was closed, replaced by text streams over StandardStream; stdout's raw
    stream is returned. A stream is closed where Python found its descriptor closed at start-up (its sys stream is
    None: the descriptor may since hold a file an import opened); one still closed gets /dev/null, so that no file
    the job opens becomes it."""
    for descriptor in (0, 1, 2):
        if _is_closed(descriptor):
            _hold_with_devnull(descriptor)
    if sys.stdin is None:
        sys.stdin = _text(StandardStream(0, "<stdin>", closed=True, quiet=False), None)
    stdout = StandardStream(1, "<stdout>", closed=sys.stdout is None, quiet=False)
    sys.stdout = _text(stdout, sys.stdout)
    stderr = StandardStream(2, "<stderr>", closed=sys.stderr is None, quiet=True)
    sys.stderr = _text(stderr, sys.stderr, buffered=False)
    return stdout


def _is_closed(descriptor: int) -> bool:
    try:
        os.fstat(descriptor)
    except OSError:
        return True
    return False


def _hold_with_devnull(descriptor: int) -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    if devnull != descriptor:
        os.dup2(devnull, descriptor)
        os.close(devnull)


def _text(raw: StandardStream, original: TextIO | None, *, buffered: bool = True) -> TextIO:
    """A text stream over `raw` with the encoding, error handler and line buffering of the stream it replaces;
    unbuffered (stderr, as Python's own): each write goes straight to the descriptor."""
    binary = raw if not buffered else io.BufferedReader(raw) if raw.readable() else io.BufferedWriter(raw)
    return io.TextIOWrapper(binary, encoding=getattr(original, "encoding", None) or "utf-8",
                            errors=getattr(original, "errors", None) or "backslashreplace",
                            line_buffering=getattr(original, "line_buffering", False), write_through=not buffered)


def _report(error: BaseException) -> int:
    code, message = exit_status(error)
    say(message)
    return code


def _flushed(code: int) -> int:
    """The command's exit code, or, where it succeeded, that of writing out what stdout still holds."""
    try:
        sys.stdout.flush()
    except BaseException as error:
        return _report(error) if code == EXIT_OK else code
    return code


def _escaped(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
    """sys.excepthook: a signal raised where no handler was left (between the command's end and after_the_command)
    ends the process with its code and message, at once."""
    _end_at_once(error)


def _unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """sys.unraisablehook: a stop signal raised inside a __del__ or a callback would be printed and lost; it
    ends the process instead. Other unraisable errors are printed as Python does."""
    if isinstance(unraisable.exc_value, (KeyboardInterrupt, Terminated)):
        _end_at_once(unraisable.exc_value)
    sys.__unraisablehook__(unraisable)


def _end_at_once(error: BaseException) -> NoReturn:
    code, message = exit_status(error)
    say(message)
    os._exit(code)
