"""The local filesystem: the file:// artifact store, the sha256 digest cache, atomic
writes and the one guard that keeps untrusted relative paths inside their folder."""
