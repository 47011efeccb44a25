"""Implementations of the ports, grouped by technology: job backends (kubernetes,
kubectl, local, and what they share in jobs), artifact stores (s3, files, and what
they share in storage), workspaces, sorting, submission records, and the user's
configuration files (config). Only ``spikebatch.container``, the entrypoints and the
public re-export modules import from here."""
