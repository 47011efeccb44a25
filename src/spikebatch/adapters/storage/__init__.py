"""What every ArtifactStore adapter shares, whatever it stores on: the port methods
written once over a few primitives (path layout, content-addressed blobs, verified
atomic downloads, output listing, aborting uploads left unfinished), progress
accounting with cancellation, and the retry policy."""
