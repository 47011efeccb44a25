"""What every CLI command shares: global state, options, error reporting, exit codes,
KEY=VALUE / JSON output, and loading the profile and the session.

Only the standard library and typer are imported at module level: this module is
loaded for ``spikebatch --help``, which must stay fast and import no cloud client.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any, Callable, Dict, List, Mapping, Optional, TypeVar

import typer

from ..domain.errors import ConfigError, SpikebatchError


T = TypeVar("T")

EXIT_JOB_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_TIMEOUT = 4
#: The job was deleted while it was waited on or its logs were followed.
EXIT_JOB_DELETED = 5
#: A bug in spikebatch itself (an exception it did not expect).
EXIT_INTERNAL = 70

OUTPUT_FORMATS = ("text", "json")


class CliState:
    """Global options given before the command."""

    def __init__(self) -> None:
        self.profile: Optional[str] = None
        self.profile_file: Optional[str] = None
        self.kubeconfig: Optional[str] = None
        self.debug: bool = False
        self.quiet: bool = False
        self.output: str = "text"
        #: Secret values met in this run (plain values of secret-named env variables of
        #: the job config and the profile); masked in every line the CLI prints.
        self.secret_values: List[str] = []
        self._user_secrets: Optional[List[str]] = None

    def user_secrets(self) -> List[str]:
        """The user's own credential values (read once, when first needed)."""
        if self._user_secrets is None:
            from ..container import user_secret_values

            self._user_secrets = user_secret_values()
        return self._user_secrets


STATE = CliState()


def remember_secrets(data: Any) -> None:
    """Note the plain values ``data`` (a job spec, a profile, as dicts) holds under
    secret names, so that no output line shows them."""
    from ..domain.redaction import secret_values_in

    for value in secret_values_in(data):
        if value not in STATE.secret_values:
            STATE.secret_values.append(value)


def known_secrets() -> List[str]:
    """Every value the CLI masks: the user's credentials and the secrets met so far."""
    return [*STATE.user_secrets(), *STATE.secret_values]


def masked(text: str) -> str:
    """``text`` with every known secret value replaced by the mask."""
    from ..domain.redaction import redact_text

    return redact_text(text, known_secrets())


# --- options shared by the commands ---------------------------------------------------
def _complete_profiles(incomplete: str) -> List[str]:
    from ..profiles import available_profiles

    return [name for name in available_profiles() if name.startswith(incomplete)]


def _complete_job_refs(incomplete: str) -> List[str]:
    from ..container import run_records

    refs: List[str] = []
    for record in run_records().all():
        refs += [record.result.job_name, record.result.run_id]
    return [ref for ref in refs if ref.startswith(incomplete)]


ProfileOpt = Annotated[
    Optional[str],
    typer.Option("--profile", help="Profile name (built-in or user); default: local.", autocompletion=_complete_profiles),
]
ProfileFileOpt = Annotated[Optional[Path], typer.Option("--profile-file", help="Path to a profile YAML file.")]
OutputOpt = Annotated[
    Optional[str],
    typer.Option("--output", "-o", help="text (KEY=VALUE lines) or json (one JSON document).", case_sensitive=False),
]
JobRefArg = Annotated[
    str, typer.Argument(help="Job name, or the run id of a submission made here.", autocompletion=_complete_job_refs)
]


# --- output -----------------------------------------------------------------------------
def emit(key: str, value: object) -> None:
    """A machine-parseable ``KEY=VALUE`` line on stdout."""
    print(f"{key}={value}", flush=True)


def say(message: str) -> None:
    """Human-oriented output goes to stderr, so stdout stays parseable."""
    if not STATE.quiet:
        print(masked(message), file=sys.stderr, flush=True)


def warn(message: str) -> None:
    """A warning a user should see even with --quiet (one line on stderr)."""
    print(f"warning: {' '.join(masked(message).split())}", file=sys.stderr, flush=True)


def output_format(option: Optional[str]) -> str:
    value = (option or STATE.output or "text").lower()
    if value not in OUTPUT_FORMATS:
        raise ConfigError(f"--output {value!r} is not supported; use text or json")
    return value


def wants_json(option: Optional[str]) -> bool:
    return output_format(option) == "json"


def report(pairs: Mapping[str, Any], option: Optional[str], extra: Optional[Mapping[str, Any]] = None) -> None:
    """The data a command prints: ``KEY=VALUE`` lines (keys in upper case, ``None``
    values left out), or with ``--output json`` one JSON document with the same keys
    in lower case plus ``extra`` (data too structured for KEY=VALUE lines)."""
    if wants_json(option):
        document: Dict[str, Any] = {key.lower(): value for key, value in pairs.items()}
        document.update(extra or {})
        print_json(document)
        return
    for key, value in pairs.items():
        if value is not None:
            emit(key.upper(), masked(value) if isinstance(value, str) else value)


def print_json(document: Any) -> None:
    """One JSON document on stdout, known secret values masked."""
    from ..domain.redaction import redact_document

    shown = redact_document(json.loads(json.dumps(document, default=str)), known_secrets())
    print(json.dumps(shown, indent=2, sort_keys=False), flush=True)


# --- errors -----------------------------------------------------------------------------
def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def fail(message: str, exit_code: int) -> "typer.Exit":
    """Print ``error: <message>`` (one line, known secrets masked) and return the Exit
    to raise."""
    print(f"error: {_one_line(masked(message))}", file=sys.stderr, flush=True)
    return typer.Exit(exit_code)


def run_guarded(action: Callable[[], T]) -> T:
    """Run a command body: every error becomes one ``error:`` line on stderr and its
    exit code; the traceback is shown only with --debug."""
    try:
        return action()
    except typer.Exit:
        raise
    except SpikebatchError as exc:
        _debug_traceback()
        raise fail(exc.message, exc.exit_code) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None
    except BrokenPipeError:
        raise
    except OSError as exc:
        # A local file or folder the user named (permissions, a full disk, ...).
        _debug_traceback()
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        raise fail(f"{exc.strerror or exc}{where}; check the path and its permissions", EXIT_USAGE) from None
    except Exception as exc:  # a bug: say so in one line, keep the traceback for --debug
        _debug_traceback()
        raise fail(
            f"internal error: {type(exc).__name__}: {exc} (a bug in spikebatch; rerun with --debug and report the traceback)",
            EXIT_INTERNAL,
        ) from None


def _debug_traceback() -> None:
    if STATE.debug:
        traceback.print_exc()


# --- profile, session -------------------------------------------------------------------
def chosen_profile_source(profile: Optional[str], profile_file: Optional[Path]) -> tuple[Optional[str], Optional[str]]:
    """(name, file) the user chose: on the command if given there, else globally."""
    if profile is None and profile_file is None:
        profile, profile_file = STATE.profile, (Path(STATE.profile_file) if STATE.profile_file else None)
    if profile and profile_file:
        raise ConfigError("give either --profile or --profile-file, not both")
    return profile, (str(profile_file) if profile_file else None)


def load_profile(profile: Optional[str], profile_file: Optional[Path], *, fallback: Optional[Mapping[str, Any]] = None):
    """The ClusterProfile the user chose; else the one ``fallback`` (a submission
    record's ``profile_name`` / ``profile_file``) names; else ``local``. Its secret
    values (a hook's plain ``DB_PASSWORD``) are masked in whatever the CLI prints."""
    chosen = _load_profile(profile, profile_file, fallback)
    remember_secrets(chosen.model_dump(mode="json"))
    return chosen


def _load_profile(profile: Optional[str], profile_file: Optional[Path], fallback: Optional[Mapping[str, Any]]):
    from ..container import USER_FILES

    load_cluster_profile, load_profile_from_name = USER_FILES.profile_file(), USER_FILES.profile_named()

    name, file = chosen_profile_source(profile, profile_file)
    if file:
        return load_cluster_profile(file)
    if name:
        return load_profile_from_name(name)
    if fallback:
        recorded_file = fallback.get("profile_file")
        if recorded_file and Path(recorded_file).is_file():
            return load_cluster_profile(recorded_file)
        if fallback.get("profile_name"):
            try:
                return load_profile_from_name(fallback["profile_name"])
            except ConfigError:
                raise ConfigError(
                    f"the submission was made with profile {fallback['profile_name']!r}, which is not found here; "
                    "pass --profile or --profile-file"
                ) from None
    return load_profile_from_name("local")


def profile_file_path(profile: Optional[str], profile_file: Optional[Path]) -> Optional[str]:
    """The absolute profile file in use, if a file (not a name) was chosen."""
    _, file = chosen_profile_source(profile, profile_file)
    return str(Path(file).expanduser().resolve()) if file else None


def kubeconfig_path(recorded: Optional[str] = None) -> Optional[str]:
    return STATE.kubeconfig or recorded


def open_session(profile: Any, *, kubeconfig: Optional[str] = None) -> Any:
    """A RunSession for ``profile`` (adapters chosen by the container)."""
    from ..container import open_session as session_for

    return session_for(profile, kubeconfig=kubeconfig or STATE.kubeconfig)


def run_records() -> Any:
    """This machine's submission records (the RunRecords port)."""
    from ..container import run_records as records

    return records()


def parse_key_values(items: Optional[List[str]], option: str, *, yaml_values: bool,
                     dotted: bool = False) -> Dict[str, Any]:
    """``KEY=VALUE`` options as a dict; with ``yaml_values`` each value is parsed as
    YAML (``5`` -> 5, ``true`` -> True, ``a`` -> "a"); with ``dotted`` a dotted key
    sets a nested entry (``detection.method=x`` -> {"detection": {"method": "x"}}),
    and entries of the same dict given apart are merged. A later value of the same
    key wins."""
    parsed: Dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{option} {item!r} must look like key=value")
        if yaml_values:
            from ..domain.documents import parse_yaml_text

            # Within the size, nesting and alias limits of every YAML spikebatch reads:
            # a small value must not expand to millions of nodes.
            shown = key if len(key) <= 60 else key[:60] + "..."
            parsed_value = parse_yaml_text(value, f"{option} {shown}",
                                           syntax_fix="the value is not valid YAML; quote it") if value.strip() else None
        else:
            parsed_value = value
        if dotted:
            _set_dotted(parsed, key, parsed_value, option)
        else:
            parsed[key] = parsed_value
    return parsed


def _set_dotted(target: Dict[str, Any], key: str, value: Any, option: str) -> None:
    parts = key.split(".")
    if any(not part.strip() for part in parts):
        raise ConfigError(f"{option} {key!r} has an empty part; write names joined by single dots, "
                          "e.g. detection.method_kwargs.detect_threshold=6")
    node = target
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            parent = ".".join(parts[: depth + 1])
            raise ConfigError(f"{option} {key!r}: {parent} is also given a single value ({parent}={child!r}); "
                              f"drop one of the two")
        node = child
    last = parts[-1]
    if isinstance(node.get(last), dict) and isinstance(value, dict):
        node[last] = _merged(node[last], value)
    else:
        node[last] = value


def _merged(base: Dict[str, Any], extra: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merged(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out


def job_spec_from_options(job_config: Optional[Path], image: Optional[str], image_profile: Optional[str], *,
                          gpus: Optional[str] = None, cpus: Optional[str] = None, memory: Optional[str] = None,
                          profile: Any = None) -> Any:
    """The JobSpec of --job-config (an empty one when not given) with --image /
    --image-profile and --gpus / --cpus / --memory applied (``profile``: the one the
    job runs on, whose gpu / cpu image --gpus may pick). Every option is checked
    before the job config is read, so a typo costs nothing."""
    from ..application.job_config import apply_image_choice, apply_resource_choice
    from ..container import load_job_config
    from ..domain.validation import validate_job_spec
    from .cli_resources import resource_options

    resources = resource_options(gpus, cpus, memory)
    spec = load_job_config(job_config) if job_config else validate_job_spec({})
    remember_secrets(spec.model_dump(mode="json"))
    spec = apply_image_choice(spec, image=image, image_profile=image_profile)
    if resources:
        if profile is None:
            raise ValueError("job_spec_from_options needs the profile to apply --gpus / --cpus / --memory")
        before = spec.image_profile
        spec = apply_resource_choice(spec, profile, **resources)
        if spec.image_profile != before:
            say(f"note: --gpus {resources['gpus']}: using the profile's {spec.image_profile} image "
                f"{profile.default_images[spec.image_profile]}")
    return spec
