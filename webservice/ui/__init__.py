"""What people and scripts see: the command line, the results, the one renderer.

- :mod:`webservice.ui.cli`: the click commands (both argument orders; thin: parse, call one
  action, hand the result to the renderer).
- :mod:`webservice.ui.results`: the result dataclasses commands return.
- :mod:`webservice.ui.output`: the only importer of ``rich``: human text or ``--json``.
- :mod:`webservice.ui.yamlout`: block-style YAML for ``--dry-run``, without PyYAML.

Nothing here talks to a cluster.
"""
