"""What every CLI command shares: error reporting, exit codes, KEY=VALUE output."""

from __future__ import annotations

import sys
import traceback
from typing import Callable, Optional, TypeVar

import typer

from ..domain.errors import SpikebatchError

T = TypeVar("T")

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_TIMEOUT = 4


class CliState:
    """Global options given before the command."""

    def __init__(self) -> None:
        self.profile: Optional[str] = None
        self.profile_file: Optional[str] = None
        self.kubeconfig: Optional[str] = None
        self.debug: bool = False
        self.quiet: bool = False


STATE = CliState()


def emit(key: str, value: object) -> None:
    """A machine-parseable ``KEY=VALUE`` line on stdout."""
    print(f"{key}={value}", flush=True)


def say(message: str) -> None:
    """Human-oriented output goes to stderr, so stdout stays parseable."""
    if not STATE.quiet:
        print(message, file=sys.stderr, flush=True)


def run_guarded(action: Callable[[], T]) -> T:
    """Run a command body; a SpikebatchError becomes one line and its exit code."""
    try:
        return action()
    except SpikebatchError as exc:
        if STATE.debug:
            traceback.print_exc()
        print(f"error: {exc.message}", file=sys.stderr, flush=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr, flush=True)
        raise typer.Exit(130) from None
