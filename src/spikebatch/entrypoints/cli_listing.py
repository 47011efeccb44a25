"""Commands that list things: list-jobs and the profiles group (list, show, validate)."""

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, List, Optional, Sequence

import typer

from .cli_common import (
    OutputOpt,
    known_secrets,
    ProfileFileOpt,
    ProfileOpt,
    load_profile,
    open_session,
    print_json,
    report,
    run_guarded,
    run_records,
    say,
    wants_json,
    warn,
)


def format_age(created: Optional[datetime], now: Optional[datetime] = None) -> str:
    """'42s', '5m', '3h', '2d' (like kubectl); '-' when unknown."""
    if created is None:
        return "-"
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    seconds = max(0, int(((now or datetime.now(timezone.utc)) - created).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _age_seconds(created: Optional[datetime]) -> Optional[int]:
    if created is None:
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    return max(0, int((datetime.now(timezone.utc) - created).total_seconds()))


def print_table(headers: Sequence[str], rows: List[Sequence[Any]]) -> None:
    """A plain aligned table on stdout (no borders, never wrapped), so it reads well
    and still splits on whitespace in a script."""
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    for header in headers:
        table.add_column(header, no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*("-" if cell in (None, "") else str(cell) for cell in row))
    widths = [max([len(h), *(len(str(r[i])) for r in rows)]) for i, h in enumerate(headers)]
    console = Console(file=sys.stdout, highlight=False, width=max(80, sum(widths) + 2 * len(widths) + 2))
    with console.capture() as captured:
        console.print(table)
    text = "\n".join(line.rstrip() for line in captured.get().splitlines())
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


#: list-jobs' table: the job, its state and why, then what it is and where its outputs go.
LIST_HEADERS = ["NAME", "STATE", "AGE", "RUN ID", "KIND", "REASON", "WHAT", "RECORDINGS", "OVERRIDES", "OUTPUT"]


def list_jobs(
    offline: Annotated[bool, typer.Option("--offline", help="List the submissions recorded on this machine; contact nothing.")] = False,
    profile: ProfileOpt = None,
    profile_file: ProfileFileOpt = None,
    output: OutputOpt = None,
) -> None:
    """List your spikebatch jobs (managed-by label) with state and, for a failed one, why;
    what each runs (preset or script, recordings, overrides) and where its outputs go."""

    def action() -> None:
        rows = _offline_rows() if offline else _online_rows(profile, profile_file)
        if wants_json(output):
            print_json({"jobs": rows, "source": "local records" if offline else "backend"})
            return
        if not rows:
            say("no spikebatch jobs" + (" recorded on this machine" if offline else " in this namespace"))
            return
        headers = ["NAME", "LAST STATE" if offline else "STATE", *LIST_HEADERS[2:]]
        print_table(headers, [[r["name"], r["state"], r["age"], r["run_id"], r["job_type"], r["reason_code"],
                               r["what"], r["recordings_text"], r["overrides_text"], r["output_prefix"]]
                              for r in rows])

    run_guarded(action)


def _described(record: Any) -> dict:
    """The columns a run's record gives (what it is, where its outputs go); blanks for a
    job this machine has no record of."""
    if record is None:
        return {"what": None, "preset": None, "script": None, "recordings": [], "recordings_text": None,
                "overrides": {}, "overrides_text": None, "output_prefix": None}
    details = record.run_details
    return {"what": details.what, "preset": details.preset, "script": details.script,
            "recordings": list(details.recordings), "recordings_text": details.recordings_text(),
            "overrides": details.overrides, "overrides_text": details.overrides_text(),
            "output_prefix": record.result.output_prefix or None}


def _reason_code(reason: Optional[str]) -> Optional[str]:
    """The first word of a reason ("OOMKilled", "DeadlineExceeded", "Error"): a table
    cell without spaces; the whole line is in the JSON and in ``show``."""
    return reason.split()[0].rstrip(":") if reason else None


def _online_rows(profile: Optional[str], profile_file: Optional[Path]) -> List[dict]:
    from ..application.runs import spikebatch_jobs
    from ..domain.naming import JOB_TYPE_LABEL
    from .cli_runs import failure_reason

    session = open_session(load_profile(profile, profile_file))
    jobs = spikebatch_jobs(session)
    records = {r.result.run_id: r for r in run_records().all(on_error=warn)}
    rows = []
    for job in jobs:
        # One more request per failed job only: the reason is what one asks about it.
        reason = failure_reason(session, job.name) if str(job.state) == "Failed" else None
        record = records.get(job.run_id or "")
        rows.append({
            "name": job.name,
            "state": str(job.state),
            "reason": reason,
            "reason_code": _reason_code(reason),
            "age": format_age(job.created_at),
            "age_seconds": _age_seconds(job.created_at),
            "created_at": job.created_at.isoformat() if job.created_at else None,
            "run_id": job.run_id,
            "job_type": job.labels.get(JOB_TYPE_LABEL),
            "namespace": job.namespace,
            **_described(record),
        })
    return rows


def _offline_rows() -> List[dict]:
    rows = []
    for record in run_records().all(on_error=warn):
        result = record.result
        rows.append(
            {
                "name": result.job_name,
                "state": record.last_state or "unknown",
                "reason": record.last_reason,
                "reason_code": _reason_code(record.last_reason),
                "age": format_age(record.submitted),
                "age_seconds": _age_seconds(record.submitted),
                "created_at": record.submitted_at,
                "run_id": result.run_id,
                "job_type": result.job_type,
                "namespace": result.namespace,
                "profile": result.profile_name,
                **_described(record),
            }
        )
    return rows


# --- profiles ---------------------------------------------------------------------------
profiles_app = typer.Typer(help="List, show and validate cluster profiles.", no_args_is_help=True)


@profiles_app.command("list")
def profiles_list(output: OutputOpt = None) -> None:
    """Every profile that --profile can name, with where it comes from."""

    def action() -> None:
        from ..domain.errors import ConfigError
        from ..profiles import available_profiles, load_profile_from_name

        rows = []
        for name, source in available_profiles().items():
            try:
                prof = load_profile_from_name(name)
                rows.append({"name": name, "source": source, "backend": prof.backend, "storage": prof.storage_backend,
                             "namespace": prof.namespace, "description": prof.description, "error": None})
            except ConfigError as exc:
                rows.append({"name": name, "source": source, "backend": None, "storage": None, "namespace": None,
                             "description": None, "error": exc.message})
        if wants_json(output):
            print_json({"profiles": rows})
            return
        print_table(
            ["NAME", "BACKEND", "STORAGE", "NAMESPACE", "SOURCE"],
            [[r["name"], r["backend"] or "INVALID", r["storage"], r["namespace"], r["source"]] for r in rows],
        )
        for row in rows:
            if row["error"]:
                warn(f"profile {row['name']}: {row['error']}")

    run_guarded(action)


@profiles_app.command("show")
def profiles_show(
    name: Annotated[str, typer.Argument(help="Profile name, or a path to a profile YAML file.")],
    output: OutputOpt = None,
) -> None:
    """Print a profile as spikebatch sees it (after extends and defaults) as YAML, with
    secret values (a hook's plain DB_PASSWORD, your own AWS keys) masked."""

    def action() -> None:
        import yaml

        from ..container import load_profile
        from ..domain.redaction import redact_document

        prof = load_profile(name)
        data = redact_document(prof.model_dump(mode="json"), known_secrets())
        if wants_json(output):
            print_json(data)
        else:
            sys.stdout.write(yaml.safe_dump(data, sort_keys=False))

    run_guarded(action)


@profiles_app.command("validate")
def profiles_validate(
    path: Annotated[Path, typer.Argument(help="Profile YAML file to check.")],
    output: OutputOpt = None,
) -> None:
    """Check a profile file (YAML, fields, extends); exit 2 with the problem if invalid."""

    def action() -> None:
        from ..profiles import load_cluster_profile

        prof = load_cluster_profile(path)
        say(f"profile file {path} is valid")
        report(
            {"PROFILE_NAME": prof.name, "BACKEND": prof.backend, "STORAGE_BACKEND": prof.storage_backend,
             "NAMESPACE": prof.namespace},
            output,
            {"valid": True, "path": str(path.expanduser().resolve())},
        )

    run_guarded(action)


def register(app: typer.Typer) -> None:
    from .cli_show import show

    app.command("list-jobs")(list_jobs)
    app.command("show")(show)
    app.add_typer(profiles_app, name="profiles")
