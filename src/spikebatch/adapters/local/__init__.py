"""The JobBackend of the laptop profile: a Job's first container runs as a local
process under a detached supervisor, one attempt after another, or for an Indexed Job
several completion indexes at once with the job controller's per-index semantics; the
backend, the supervisors and the attempts they run, the on-disk state files both
sides read and write, the process helpers they share, and the launch plan (with the
completion fields and pod failure policy) taken from the manifest before anything
starts."""
