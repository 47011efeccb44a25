"""S3-compatible storage for batch job artifacts (the reference's module
``spikelab.batch_jobs.storage_s3``): a thin public re-export.

``S3StorageClient(*, prefix=None, path_templates=None, endpoint_url=None,
region_name=None, aws_access_key_id=None, aws_secret_access_key=None,
aws_session_token=None)``; ``prefix=""`` means no prefix, as ``None``. The
reference's calls keep their signatures and return strings: ``build_uri``,
``upload_file``, ``upload_bundle``, ``output_prefix_for_run`` / ``logs_prefix_for_run``
("" without a prefix), ``download_file``, ``download_output(*, run_id, filename,
local_dir)``, ``list_output_files(run_id, *, max_keys=None)`` (object keys, at most
``DEFAULT_LIST_OUTPUT_LIMIT``). spikebatch's prefix-addressed calls are
``list_outputs(output_prefix)`` and ``download_outputs(*, output_prefix, local_dir)``.
"""

from __future__ import annotations

from .adapters.s3.boto3_store import S3StorageClient
from .domain.storage_paths import StoragePathTemplates

__all__ = ["S3StorageClient", "StoragePathTemplates"]
