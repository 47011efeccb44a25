"""The programs: the ``spikebatch`` command line (parse options, call one use case,
format what it returns) and the runner inside a job's container."""
