"""The process around the command: the console script and `python -m siamese_runtime` start here.

From its first line, before numpy and onnxruntime import, SIGINT, SIGTERM and SIGHUP end the process with
128 + the signal's number, never a traceback; the standard streams name themselves in errors, a closed one
fails when used, and stderr never fails a command. Only then is the command line (cli) imported.
"""

from __future__ import annotations

import io
import os
import signal
import sys
from collections.abc import Callable
from errno import EBADF
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, NoReturn, TextIO

from ..errors import OutputLockedError, SiameseRuntimeError, UsageError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

EXIT_OK = 0
EXIT_ERROR = 1  # the input, the model, a provider, a resume check or a stream said no; see the message
EXIT_USAGE = 2  # options that cannot work, or an output the job refuses to write; nothing was done
EXIT_SOFTWARE = 70  # a defect in siamese-runtime itself: the message asks for a report
EXIT_LOCKED = 75  # another job is writing the same output: try again later
EXIT_HANGUP = 129  # SIGHUP (128 + SIGHUP): the terminal went away; like SIGTERM
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT); a file job keeps its checkpoint for --resume
EXIT_BROKEN_PIPE = 141  # whoever read stdout stopped reading (128 + SIGPIPE)
EXIT_TERMINATED = 143  # SIGTERM (128 + SIGTERM), as from a scheduler; likewise resumable
# Each signal that stops the command: its exit code and its one-word message.
STOP_SIGNALS: dict[int, tuple[int, str]] = {
    signal.SIGINT: (EXIT_INTERRUPTED, "interrupted"),
    signal.SIGTERM: (EXIT_TERMINATED, "terminated"),
    signal.SIGHUP: (EXIT_HANGUP, "hangup"),
}
Handler = Callable[[int, FrameType | None], None]
_received: list[int] = []  # the stop signals this process received, first first


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised where the process is so that a job cleans up as after Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def main() -> int:
    """The command's exit code; on the way no signal, error or stream failure gives a traceback."""
    _install(_defer)
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
    _install(_exit_at_once)
    if stdout is not None:
        stdout.quiet = True  # what it could not take is dropped at exit, not raised again as "Exception ignored"
    return code


def raise_on_stop_signals() -> None:
    """From now on SIGINT raises KeyboardInterrupt and SIGTERM or SIGHUP Terminated where the process is, so that
    a job cleans up; one received while the command was importing is raised now. A signal the parent had
    ignored (nohup) stays ignored."""
    _install(_raise)
    if _received:
        raise _stop_error(_received[0])


def exit_status(error: BaseException) -> tuple[int, str]:
    """The exit code and message (empty: none) for an error that ended the command. After a stop signal, that
    signal's, whatever the error: an import under way turns KeyboardInterrupt into ImportError."""
    if _received:
        return STOP_SIGNALS[_received[0]]
    if isinstance(error, (KeyboardInterrupt, Terminated)):
        return STOP_SIGNALS[error.signum if isinstance(error, Terminated) else signal.SIGINT]
    if isinstance(error, UsageError):
        return EXIT_USAGE, f"error: {error}"
    if isinstance(error, OutputLockedError):
        return EXIT_LOCKED, f"error: {error}"
    if isinstance(error, SiameseRuntimeError):
        return EXIT_ERROR, f"error: {error}"
    if isinstance(error, BrokenPipeError):
        return EXIT_BROKEN_PIPE, ""
    if isinstance(error, OSError):
        return EXIT_ERROR, f"error: {os_error_text(error)}"
    if isinstance(error, MemoryError):
        return EXIT_ERROR, "error: out of memory; try a smaller --chunk-rows, --batch-size or --cache-size"
    if isinstance(error, SystemExit):  # argparse: 0 after --help, 2 after a usage message
        return _code_of(error), ""
    return EXIT_SOFTWARE, (f"internal error: {type(error).__name__}: {error} (a defect in siamese-runtime: please "
                           "report it with the command; -v prints the traceback)")


def os_error_text(error: OSError) -> str:
    """'FILE: reason' ('FILE -> OTHER: reason' for a rename); the reason alone where the error names no file."""
    reason = error.strerror or str(error)
    names = " -> ".join(os.fsdecode(name) if isinstance(name, bytes) else str(name)
                        for name in (error.filename, error.filename2) if name is not None)
    return f"{names}: {reason}" if names else reason


def say(message: str) -> None:
    """`siamese-runtime: MESSAGE` on stderr; nothing for an empty message, or where there is no stderr (print would
    write to stdout)."""
    if message and sys.stderr is not None:
        print(f"siamese-runtime: {message}", file=sys.stderr)


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


def _code_of(done: SystemExit) -> int:
    if done.code is None or isinstance(done.code, int):
        return done.code or EXIT_OK
    return EXIT_ERROR


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


def _install(handler: Handler) -> None:
    """`handler` for each stop signal, but for one ignored when the process started."""
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, handler)


def _defer(signum: int, frame: FrameType | None) -> None:
    """While the command imports: noted, and raised once it can run (an exception raised inside an import may
    come out as another or be swallowed); a second signal ends the process at once."""
    if _received:
        _exit_at_once(signum, frame)
    _received.append(signum)


def _raise(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise _stop_error(signum)


def _exit_at_once(signum: int, frame: FrameType | None) -> NoReturn:
    """After the command, or on a second signal at start-up: nothing is left to clean up."""
    os._exit(STOP_SIGNALS[signum][0])


def _stop_error(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def _escaped(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
    """sys.excepthook: a signal raised where no handler was left (between the command's end and `_exit_at_once`)
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
