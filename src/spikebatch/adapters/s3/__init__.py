"""S3 and S3-compatible object storage: the ArtifactStore through boto3 and through the
MinIO SDK, and what both share (the object metadata key of the sha256, and the mapping
of S3 error codes to the project's exceptions)."""
