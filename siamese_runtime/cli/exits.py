"""Exit codes and the one error boundary of the project's commands: whatever ended a command, its exit code and
the one line that says why."""

from __future__ import annotations

import logging
import signal
import sys
import traceback
from collections.abc import Callable

from ..errors import OutputLockedError, SiameseRuntimeError, UsageError, os_error_text
from .signals import EXIT_HANGUP, EXIT_INTERRUPTED, EXIT_TERMINATED, STOP_SIGNALS, Terminated, first_received

PROGRAM = "siamese-runtime"
EXIT_OK = 0
EXIT_ERROR = 1  # the input, the model, a provider, a resume check or a stream said no; see the message
EXIT_USAGE = 2  # options that cannot work, or an output the job refuses to write; nothing was done
EXIT_SOFTWARE = 70  # a defect in siamese-runtime itself: the message asks for a report
EXIT_LOCKED = 75  # another job is writing the same output: try again later
EXIT_BROKEN_PIPE = 141  # whoever read stdout stopped reading (128 + SIGPIPE)
__all__ = ["EXIT_BROKEN_PIPE", "EXIT_ERROR", "EXIT_HANGUP", "EXIT_INTERRUPTED", "EXIT_LOCKED", "EXIT_OK",
           "EXIT_SOFTWARE", "EXIT_TERMINATED", "EXIT_USAGE", "PROGRAM", "OneLineFormatter", "exit_status", "one_line",
           "run_command", "say"]


def run_command(program: str, command: Callable[[], int], *, verbose: bool = False) -> int:
    """The one error boundary of the project's three commands (siamese-runtime, python -m train, python -m
    export): the command's exit code or, whatever it raised, one line `PROGRAM: error: ...` on stderr and the
    code exit_status gives (with the traceback too, where it is a defect and `verbose`)."""
    try:
        return command()
    except BaseException as error:
        code, message = exit_status(error)
        if code == EXIT_SOFTWARE and verbose:
            traceback.print_exc()
        say(message, program)
        return code


def exit_status(error: BaseException) -> tuple[int, str]:
    """The exit code and message (empty: none) for an error that ended the command. After a stop signal, that
    signal's, whatever the error: an import under way turns KeyboardInterrupt into ImportError."""
    if (signum := first_received()) is not None:
        return STOP_SIGNALS[signum]
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


# Every character that ends a line somewhere (str.splitlines' set), as the escape that shows it on one line.
LINE_BREAKS = {ord(c): repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


def one_line(text: str) -> str:
    """`text` on one line: a file name, a column name or a value a message quotes may hold line breaks."""
    return text.translate(LINE_BREAKS)


def say(message: str, program: str = PROGRAM) -> None:
    """`PROGRAM: MESSAGE` on stderr, on one line; nothing for an empty message, or where there is no stderr (print
    would write to stdout)."""
    if message and sys.stderr is not None:
        print(f"{program}: {one_line(message)}", file=sys.stderr)


class OneLineFormatter(logging.Formatter):
    """Log records as the command's own one-line messages."""

    def format(self, record: logging.LogRecord) -> str:
        return one_line(super().format(record))


def _code_of(done: SystemExit) -> int:
    if done.code is None or isinstance(done.code, int):
        return done.code or EXIT_OK
    return EXIT_ERROR
