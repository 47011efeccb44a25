"""``--quiet`` / ``-q`` after the command name (``spikebatch wait RUN --quiet``), as
``--profile`` and ``--output`` are accepted there: people add it at the end of the
command they just ran.

Each registered command's function is wrapped in one that takes a ``quiet`` option too
and sets the same global switch the option before the command sets. The wrapping goes
through typer's own registration records and a function signature, so typer builds the
option (help line included) like any other; nothing depends on the click typer
vendors. Only the standard library and typer are imported (this runs for every
``spikebatch --help``).
"""

import functools
import inspect
from typing import Annotated, Any, Callable

import typer

from .cli_common import STATE

QUIET_HELP = "No progress, status or notes on stderr (errors still show); also accepted before the command."
QuietAfterCommandOpt = Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)]


def _with_quiet_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` taking a ``quiet`` flag as well (left as it is if it has one)."""
    signature = inspect.signature(command, eval_str=True)  # annotations resolved: typer reads them as given
    if "quiet" in signature.parameters:
        return command

    @functools.wraps(command)
    def with_quiet(*args: Any, quiet: bool = False, **kwargs: Any) -> Any:
        if quiet:
            STATE.quiet = True  # never cleared here: --quiet before the command may have set it
        return command(*args, **kwargs)

    quiet = inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=False,
                              annotation=QuietAfterCommandOpt)
    parameters = list(signature.parameters.values())
    # Keyword-only parameters go last; a **kwargs catch-all (none today) stays the very last.
    at = next((i for i, p in enumerate(parameters) if p.kind is inspect.Parameter.VAR_KEYWORD), len(parameters))
    parameters.insert(at, quiet)
    with_quiet.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    with_quiet.__annotations__ = {p.name: p.annotation for p in parameters
                                  if p.annotation is not inspect.Parameter.empty}
    return with_quiet


def accept_quiet_after_the_command(app: typer.Typer) -> None:
    """Give every command registered on ``app`` (and on its sub-apps, e.g.
    ``profiles``, ``image``) a ``--quiet`` / ``-q`` option of its own. Call it once,
    after every command is registered."""
    for info in app.registered_commands:
        if info.callback is not None:
            info.callback = _with_quiet_option(info.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            accept_quiet_after_the_command(group.typer_instance)
