"""Pure core of spikebatch: models, policy, manifest rendering, naming, redaction.

Nothing here imports kubernetes, boto3, minio or subprocess, reads the environment or
touches the filesystem; adapters and the application layer do that.
"""
