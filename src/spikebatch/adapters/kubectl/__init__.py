"""The JobBackend on the ``kubectl`` binary (argument lists only, never a shell): the
backend, kubectl's stderr read as spikebatch's BackendErrors, and the Job watch built
on ``kubectl get jobs --watch``; objects are read as ``-o json``, so the state
derivation is the same as the kubernetes client adapter's."""
