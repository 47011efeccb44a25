"""How spikebatch marks what it stores on S3: the user metadata key of an object's
sha256, written by both S3 adapters and read back to verify downloads."""

#: Object metadata key holding the sha256 hex digest of the object's bytes
#: (``x-amz-meta-sha256`` on the wire).
SHA256_META = "sha256"
