"""One module per command, and the steps commands share.

- :mod:`webservice.actions.lifecycle`: ``start`` and ``restart`` (apply, wait, roll back).
- :mod:`webservice.actions.stop`: ``stop``.
- :mod:`webservice.actions.status`: ``status`` (read the objects, classify, explain).
- :mod:`webservice.actions.logs`: ``logs`` (merged, followed).
- :mod:`webservice.actions.shell`: ``shell`` (through kubectl).
- :mod:`webservice.actions.render`: ``--dry-run``.
- :mod:`webservice.actions.typelist`: ``types``.
- :mod:`webservice.actions.preflight`: checks before applying (files, limits, quota).
- :mod:`webservice.actions.wait`: watch until ready, within a time budget.
- :mod:`webservice.actions.signals`: the one place signals are shielded and the tool's lock
  is held.
- :mod:`webservice.actions.connect`: the cluster connection and the catalogue read.

Each returns a result dataclass (:mod:`webservice.ui.results`); nothing here prints except
through :mod:`webservice.ui.output`'s progress.
"""
