"""The ``spikebatch`` command line (the reference-compatible one is ``spikebatch.cli``).

stdout carries the data (manifests, KEY=VALUE lines, tables, or one JSON document with
``--output json``); stderr carries everything meant for a person (progress, status,
policy findings, ``error:`` lines), so scripts can parse stdout safely.

Exit codes: 0 ok, 1 job failed, 2 usage / config / policy error, 3 backend or storage
unavailable, 4 timeout, 5 job deleted while waited on, 130 interrupted (70: a bug in
spikebatch). Every error is one line; ``--debug``
adds the traceback.

Start-up matters (``spikebatch --help`` is typed a lot): this module and the command
modules import only typer and the standard library at load time; everything else
(pydantic models, rich, the adapters and their cloud clients) is imported inside the
command that needs it. Help is click's plain formatting for the same reason (typer's
rich help would import rich and markdown-it on every ``--help``).
"""

import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from . import cli_batches, cli_image, cli_jobs, cli_listing, cli_sorters, cli_storage, cli_workflows, cli_workspace
from .cli_common import OUTPUT_FORMATS, STATE, ProfileFileOpt, ProfileOpt
from .cli_quiet import accept_quiet_after_the_command

app = typer.Typer(
    name="spikebatch",
    help="Run SpikeLab analysis and spike-sorting workloads as Kubernetes batch jobs (or locally).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    epilog=("Exit codes: 0 ok, 1 job failed, 2 usage/config/policy error, 3 backend or storage unavailable, "
            "4 timeout, 5 job deleted while waited on, 130 interrupted."),
)


def _print_version(asked: bool) -> None:
    """--version: the package's own version string (already imported with the package,
    so nothing else is loaded), then exit 0 before any command runs."""
    if asked:
        from .. import __version__

        print(f"spikebatch {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    profile: ProfileOpt = None,
    profile_file: ProfileFileOpt = None,
    kubeconfig: Annotated[Optional[Path], typer.Option("--kubeconfig", help="Kubeconfig for cluster profiles.")] = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="text or json, for every command.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, status or notes on stderr (errors still show).")] = False,
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit.")
    ] = False,
) -> None:
    STATE.profile = profile
    STATE.profile_file = str(profile_file) if profile_file else None
    STATE.kubeconfig = str(Path(kubeconfig).expanduser().resolve()) if kubeconfig else None
    STATE.debug = debug
    STATE.quiet = quiet
    if output is not None:
        if output.lower() not in OUTPUT_FORMATS:
            raise typer.BadParameter(f"{output!r} is not one of: {', '.join(OUTPUT_FORMATS)}", param_hint="--output")
        STATE.output = output.lower()


cli_jobs.register(app)
cli_workflows.register(app)
cli_batches.register(app)
cli_listing.register(app)
cli_sorters.register(app)
cli_image.register(app)
cli_storage.register(app)
cli_workspace.register(app)
accept_quiet_after_the_command(app)  # last: every command registered above gets --quiet


def _click_exception_type() -> type:
    """click's ClickException (typer may vendor click, so find it through typer)."""
    return next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException")


def run(argv: Optional[List[str]] = None) -> int:
    """Run the command line on ``argv``; returns the exit code. Usage errors are one
    ``error:`` line (exit 2) like every other error."""
    from typer.main import get_command

    command = get_command(app)
    click_exception = _click_exception_type()
    try:
        code = command.main(args=argv, standalone_mode=False)
    except click_exception as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `spikebatch` / `spikebatch profiles`
            print(exc.ctx.get_help())
            return 0
        ctx = getattr(exc, "ctx", None)
        hint = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
        message = " ".join(exc.format_message().split()).rstrip(".")
        print(f"error: {message}{hint}", file=sys.stderr, flush=True)
        return exc.exit_code
    except typer.Abort:
        print("error: aborted", file=sys.stderr, flush=True)
        return 1
    except BrokenPipeError:
        # The reader went away (`spikebatch job-logs X | head`): stop quietly.
        _silence_stdout()
        return 1
    return code if isinstance(code, int) else 0


def _silence_stdout() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
