"""``spikebatch workspace``: make a built-in directory workspace and fill it from files,
so data kept as loose ``.npy`` / ``.json`` files can be given to ``submit-workspace``
without writing Python."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from .cli_common import OutputOpt, print_json, report, run_guarded, say, wants_json

workspace_app = typer.Typer(help="Make a directory workspace (init) and add files to it (add, show).",
                            no_args_is_help=True)

WorkspaceDirArg = Annotated[Path, typer.Argument(help="The workspace folder.", metavar="DIR")]


@workspace_app.command("init")
def workspace_init(
    folder: WorkspaceDirArg,
    name: Annotated[Optional[str], typer.Option("--name", help="A name kept in the workspace's index.")] = None,
    output: OutputOpt = None,
) -> None:
    """Make DIR a directory workspace (created if missing); a workspace already there is kept."""

    def action() -> None:
        from ..container import directory_workspace
        from ..domain.errors import ConfigError

        path = folder.expanduser()
        if path.exists() and not path.is_dir():
            raise ConfigError(f"DIR {str(path)!r} is a file; give a folder for the workspace")
        existed = _holds_workspace(path)
        workspace = directory_workspace(path, name=name, create=True)
        items = sum(len(keys) for keys in workspace.list_keys().values())
        say(f"{'kept the workspace already' if existed else 'made a workspace'} in {workspace.path}"
            + (f" ({items} items)" if existed else "; add files with: spikebatch workspace add "
               f"{path} NAMESPACE KEY FILE"))
        report({"WORKSPACE": str(workspace.path), "ITEMS": items}, output)

    run_guarded(action)


@workspace_app.command("add")
def workspace_add(
    folder: WorkspaceDirArg,
    namespace: Annotated[str, typer.Argument(help="Namespace (e.g. a recording's name).")],
    key: Annotated[str, typer.Argument(help="Key within the namespace.")],
    file: Annotated[Path, typer.Argument(help=".npy (an array), .json (its value) or any file (its bytes).",
                                         metavar="FILE")],
    note: Annotated[Optional[str], typer.Option("--note", help="A note kept with the item.")] = None,
    output: OutputOpt = None,
) -> None:
    """Store FILE in workspace DIR under NAMESPACE / KEY (replacing what was there); a script
    reads it back with workspace.get(NAMESPACE, KEY)."""

    def action() -> None:
        from ..container import directory_workspace, workspace_value_from_file
        from ..domain.errors import ConfigError

        path = folder.expanduser()
        if not _holds_workspace(path):
            raise ConfigError(f"DIR {str(path)!r} is not a workspace; make it one first: spikebatch workspace init {path}")
        value = workspace_value_from_file(file)  # read (and refused) before the workspace is touched
        workspace = directory_workspace(path, create=False)
        try:
            workspace.store(namespace, key, value, note=note)
        except TypeError as exc:  # a JSON value the workspace cannot keep as it is
            raise ConfigError(f"FILE {str(file)!r}: {exc}") from None
        info = workspace.get_info(namespace, key) or {}
        say(f"stored {file} as {namespace}/{key} ({_described(info)}) in {workspace.path}")
        report({"WORKSPACE": str(workspace.path), "NAMESPACE": namespace, "KEY": key, "TYPE": info.get("type")},
               output)

    run_guarded(action)


@workspace_app.command("show")
def workspace_show(folder: WorkspaceDirArg, output: OutputOpt = None) -> None:
    """List what workspace DIR holds: namespace, key, type, shape or size."""

    def action() -> None:
        from ..container import directory_workspace
        from .cli_listing import print_table

        workspace = directory_workspace(folder.expanduser(), create=False)
        described = workspace.describe()
        if wants_json(output):
            print_json({"workspace": str(workspace.path), "items": described})
            return
        rows = [[ns, key, info.get("type"), _described(info)] for ns, keys in described.items()
                for key, info in keys.items()]
        if not rows:
            say(f"workspace {workspace.path} is empty")
            return
        print_table(["NAMESPACE", "KEY", "TYPE", "DETAILS"], rows)

    run_guarded(action)


def _holds_workspace(path: Path) -> bool:
    from ..container import directory_workspace
    from ..domain.errors import ConfigError

    if not path.is_dir():
        return False
    try:
        directory_workspace(path, create=False)
    except ConfigError:
        return False
    return True


def _described(info: dict) -> str:
    """'shape=[3, 4] dtype=float64', 'size=12', or the JSON type."""
    if "shape" in info:
        return f"shape={info['shape']} dtype={info.get('dtype')}"
    if "size" in info:
        return f"size={info['size']}"
    return str(info.get("type", ""))


def register(app: typer.Typer) -> None:
    app.add_typer(workspace_app, name="workspace")
