"""``spikebatch sorters``: the sorter presets submit-sorting takes, what each needs, and
``sorters show PRESET``: a preset's parameters and defaults, as ``--set`` names them.

The preset names are also written here as text (``PRESET_HELP``, ``GPU_PRESETS``)
because ``submit-sorting --help`` must not import SpikeInterface to list them; a test
keeps them equal to what the sorter adapter reports.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from .cli_common import STATE, OutputOpt, print_json, run_guarded, say, wants_json

#: The presets of the SpikeInterface sorter and its default, for --preset's help.
PRESET_NAMES = ("kilosort4", "mountainsort5", "spykingcircus2", "tridesclous2")
DEFAULT_PRESET = "spykingcircus2"
#: Presets that want a GPU to be practical (SpikeInterface: "nvidia-optional" or more).
GPU_PRESETS = ("kilosort4",)
PRESET_HELP = (
    f"Sorter preset: {', '.join(p + (' (GPU)' if p in GPU_PRESETS else '') for p in PRESET_NAMES)}; "
    f"default {DEFAULT_PRESET}. 'spikebatch sorters' says what each needs, "
    "'spikebatch sorters show PRESET' lists its parameters."
)
#: Longest description shown in the text table (--output json has them whole).
_DESCRIPTION_CHARS = 70

sorters_app = typer.Typer(
    help="The sorter presets of submit-sorting: what each needs (`sorters`), its parameters (`sorters show PRESET`).",
    invoke_without_command=True,
)


def _sorter() -> Any:
    """The SpikeInterface sorter adapter (the one a preset name selects)."""
    from ..container import default_named_adapters

    _, sorter_by_name = default_named_adapters()
    return sorter_by_name("spikeinterface")


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _list_presets(output: Optional[str]) -> None:
    from .cli_listing import print_table

    catalog = _sorter().preset_catalog()
    if wants_json(output):
        print_json({"default": next(p["preset"] for p in catalog if p["default"]), "presets": catalog})
        return
    print_table(["PRESET", "DEFAULT", "GPU", "INSTALLED", "NEEDS"],
                [[p["preset"], "yes" if p["default"] else None, p["gpu"], _yes_no(p["installed"]), p["needs"]]
                 for p in catalog])
    say("INSTALLED is this machine; a job needs the sorter in its image. "
        "'spikebatch sorters show PRESET' lists a preset's parameters.")


@sorters_app.callback()
def sorters(
    ctx: typer.Context,
    output: OutputOpt = None,
    # `spikebatch sorters` is this group's callback, not a registered command, so the
    # --quiet every command takes after its name is declared here.
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No notes on stderr (errors still show).")] = False,
) -> None:
    """List the sorter presets: GPU use, installed here or not, what each needs, which is the default."""
    if quiet:
        STATE.quiet = True
    if ctx.invoked_subcommand is None:
        run_guarded(lambda: _list_presets(output))


@sorters_app.command("list")
def sorters_list(output: OutputOpt = None) -> None:
    """List the sorter presets (the same as `spikebatch sorters`)."""
    run_guarded(lambda: _list_presets(output))


def _shown(value: Any) -> str:
    """A default as JSON (text quoted, so "2" and 2 differ as they do for the sorter)."""
    import json

    return json.dumps(value)


def _short(text: Optional[str]) -> Optional[str]:
    if not text or len(text) <= _DESCRIPTION_CHARS:
        return text
    return text[: _DESCRIPTION_CHARS - 3] + "..."


@sorters_app.command("show")
def sorters_show(
    preset: Annotated[str, typer.Argument(help=f"A preset: {', '.join(PRESET_NAMES)}.")],
    output: OutputOpt = None,
) -> None:
    """Show a preset's parameters and their defaults; nested ones by their dotted name, as --set takes them."""

    def action() -> None:
        from .cli_listing import print_table

        found = _sorter().preset_parameters(preset)
        if wants_json(output):
            print_json(found)
            return
        install = f"; {found['install']}" if found["install"] and not found["installed"] else ""
        say(f"{preset}: GPU {found['gpu']}, {'installed' if found['installed'] else 'not installed'} here{install}"
            + (" (the default preset)" if found["default"] else ""))
        if found["note"]:
            say(f"note: {found['note']}")
        print_table(["PARAMETER", "DEFAULT", "DESCRIPTION"],
                    [[row["name"], _shown(row["default"]), _short(row["description"])] for row in found["parameters"]])
        say(f"change one with: spikebatch submit-sorting --preset {preset} --set NAME=VALUE "
            "(values read as YAML; nested ones by their dotted name)")

    run_guarded(action)


def gpu_preset_note(preset: Optional[str], spec: Any, profile: Any) -> Optional[str]:
    """A hint when a preset that wants a GPU is submitted without one to a profile that
    has a GPU image: the job would run on the CPU image, slowly if at all."""
    from ..domain.effective import effective_resources

    chose_gpus = "limits_gpu" in spec.resources.model_fields_set  # --gpus 0 is a choice too
    if preset not in GPU_PRESETS or chose_gpus or effective_resources(spec, profile).gpus:
        return None
    gpu_image = profile.default_images.get("gpu") if profile.runs_containers else None
    if not gpu_image:
        return None
    return f"{preset} runs on an NVIDIA GPU; add --gpus 1 to run it on this profile's gpu image {gpu_image}"


def register(app: typer.Typer) -> None:
    app.add_typer(sorters_app, name="sorters")

