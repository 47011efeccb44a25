"""The use cases, written against the ports only: checking and rendering a job,
submitting it (prepared, workspace, sorting), waiting, logs, retrieval, finding runs
again, and the runner's fetch-run-upload inside the job. Which adapters serve the
ports is decided by ``spikebatch.container``, never here."""
