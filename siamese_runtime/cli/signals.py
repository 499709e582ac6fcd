"""The signals that stop a command: SIGINT, SIGTERM and SIGHUP end it with 128 + the signal's number. While the
command imports they are noted and raised once it can run; then they raise where the process is, so that a job
cleans up."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

from ..io.safe_output import STOP_SIGNALS as HELD_SIGNALS

EXIT_HANGUP = 128 + signal.SIGHUP  # 129: the terminal went away; like SIGTERM
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130: Ctrl-C; a file job keeps its checkpoint for --resume
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143: as from a scheduler; likewise resumable
_WORDS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated", signal.SIGHUP: "hangup"}
# Each signal that stops the command (the library's set, which its commit points hold): exit code, one-word message.
STOP_SIGNALS: dict[int, tuple[int, str]] = {signum: (128 + signum, _WORDS[signum]) for signum in HELD_SIGNALS}
Handler = Callable[[int, FrameType | None], None]
_received: list[int] = []  # the stop signals this process received, first first


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised where the process is so that a job cleans up as after Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def raise_on_stop_signals() -> None:
    """From now on SIGINT raises KeyboardInterrupt and SIGTERM or SIGHUP Terminated where the process is, so that
    a job cleans up; one received while the command was importing is raised now. A signal the parent had
    ignored (nohup) stays ignored."""
    _install(_raise)
    if _received:
        raise _stop_error(_received[0])


def defer_stop_signals() -> None:
    """While the command imports: a stop signal is noted and raised by raise_on_stop_signals; a second one ends
    the process at once."""
    _install(_defer)


def after_the_command(code: int) -> None:
    """After the command: nothing is left to clean up. Where it succeeded, a stop signal no longer changes its
    outcome (the process is only exiting: ignored, which Python's finalization keeps, where it would restore the
    default action over a handler); where it failed, one ends the process at once with its code."""
    _install(_exit_at_once if code else signal.SIG_IGN)


def first_received() -> int | None:
    """The first stop signal this process received, or None."""
    return _received[0] if _received else None


def _install(handler: Handler | signal.Handlers) -> None:
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
