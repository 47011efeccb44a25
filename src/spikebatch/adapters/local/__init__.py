"""The JobBackend of the laptop profile: a Job's first container runs as a local
process, one attempt after another, under a detached supervisor; the backend, the
supervisor, the on-disk state files both read and write, the process helpers they
share, and the launch plan taken from the manifest before anything starts."""
