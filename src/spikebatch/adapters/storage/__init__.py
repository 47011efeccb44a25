"""What every ArtifactStore adapter shares, whatever it stores on: the port methods
written once over seven primitives (path layout, content-addressed blobs, verified
atomic downloads, output listing), progress accounting with cancellation, and the
retry policy."""
