"""The command line of ``spikelab.batch_jobs.cli`` under the spikebatch import root.

``build_parser()``, ``main(argv=None) -> int`` and ``DEFAULT_IMAGE_PROFILE`` as the
reference has them; the program is ``spikebatch-batch-jobs`` (also
``python -m spikebatch.cli``). spikebatch's own, richer command line is ``spikebatch``.
"""

from .entrypoints.compat_cli import DEFAULT_IMAGE_PROFILE, build_parser, main

__all__ = ["DEFAULT_IMAGE_PROFILE", "build_parser", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
