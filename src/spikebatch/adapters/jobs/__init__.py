"""What the three JobBackend adapters (kubernetes, kubectl, local) share, all working on
batch/v1 Job and Pod objects as the API server's JSON dicts: reading a manifest and the
namespace rule, helpers on Job and pod objects, following a stream of lines that may
never end by itself, the back-off between reconnects of a watch, and following the logs
of a Job's pods."""
