"""``spikebatch clean``: abort the uploads that never finished under the profile's
storage prefix (multipart uploads left on S3 by a killed or cut-off upload; partial
files of the local store)."""

from typing import Annotated, Any, Dict

import typer

from .cli_common import OutputOpt, ProfileFileOpt, ProfileOpt, load_profile, report, run_guarded, say

OlderThanOpt = Annotated[
    str,
    typer.Option(
        "--older-than",
        help="Only uploads started at least this long ago: 90s, 30m, 24h, 7d, 2w; 0 for all. "
             "The default leaves uploads that may still be running alone.",
    ),
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Only list what would be removed.")]


def clean(
    older_than: OlderThanOpt = "24h",
    dry_run: DryRunOpt = False,
    profile: ProfileOpt = None,
    profile_file: ProfileFileOpt = None,
    output: OutputOpt = None,
) -> None:
    """Abort the uploads that never finished (a killed submit, storage lost mid-upload)
    under the profile's storage prefix, and free the space their parts hold."""

    def action() -> None:
        from ..application.cleaning import clean_incomplete_uploads, parse_age
        from ..container import artifact_store
        from .cli_output import human_bytes

        age = parse_age(older_than)
        store = artifact_store(load_profile(profile, profile_file))
        outcome = clean_incomplete_uploads(store, older_than=age, dry_run=dry_run)
        removed = {(upload.uri, upload.upload_id) for upload in outcome.removed}
        for upload in outcome.stale:
            done = (upload.uri, upload.upload_id) in removed
            what = "would remove" if dry_run else ("removed" if done else "already gone")
            size = "" if upload.size is None else f", {human_bytes(upload.size)}"
            say(f"{what}: unfinished upload of {upload.uri} (started {_when(upload.initiated)}{size})")
        if outcome.kept:
            say(f"left {len(outcome.kept)} unfinished upload(s) started less than {older_than} ago "
                "(they may still be running; --older-than 0 takes them too)")
        if not outcome.stale and not outcome.kept:
            say(f"no unfinished uploads under {outcome.prefix}")

        def entry(upload: Any, stale: bool) -> Dict[str, Any]:
            return {"uri": upload.uri, "upload_id": upload.upload_id, "initiated": _when(upload.initiated),
                    "size": upload.size, "stale": stale,
                    "removed": (upload.uri, upload.upload_id) in removed}

        report(
            {"PREFIX": outcome.prefix, "DRY_RUN": str(dry_run).lower(),
             "STALE_UPLOADS": len(outcome.stale), "STALE_BYTES": outcome.stale_bytes,
             "REMOVED": len(outcome.removed), "REMOVED_BYTES": outcome.removed_bytes,
             "KEPT": len(outcome.kept)},
            output,
            {"dry_run": dry_run, "older_than_seconds": int(age.total_seconds()),
             "uploads": [entry(u, True) for u in outcome.stale] + [entry(u, False) for u in outcome.kept]},
        )

    run_guarded(action)


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def register(app: typer.Typer) -> None:
    app.command(
        "clean",
        epilog="Example: spikebatch --profile mylab clean --older-than 7d --dry-run",
    )(clean)
