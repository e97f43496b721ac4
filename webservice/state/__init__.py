"""The tool's state files: ``service.template``, ``service.manifest`` and their lock.

- :mod:`webservice.state.yamlio`: the one safe YAML reader (size, depth, alias and
  duplicate-key bounds, one-line reasons) and the one atomic writer (temporary file in
  the same directory, fsync, rename, fsync of the directory). The catalogue cache and the
  config files use them too.
- :mod:`webservice.state.template`: find, read and check ``service.template``.
- :mod:`webservice.state.manifest`: read, normalise and update ``service.manifest``.
- :mod:`webservice.state.lock`: the tool's one lock (a POSIX record lock, which NFS
  supports), taken once per command and passed down.

Nothing here talks to a cluster, prints, or imports yaml before a file has to be parsed
(``--help``, completion and ``--dry-run`` stay fast).
"""
