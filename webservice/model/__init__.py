"""Pure inputs to a resolved spec: what the user asked, who the tool is, what the site says.

- :mod:`webservice.model.request`: the parsed command line, one dataclass.
- :mod:`webservice.model.tool`: the tool account (``tools.<tool>``, uid/gid, home).
- :mod:`webservice.model.config`: config layering (defaults < site < user < env < command
  line), with site-only keys for hosts, domains and uids.
- :mod:`webservice.model.dirs`: the user's config and cache directories (XDG).
- :mod:`webservice.model.catalogue`: webservice types: built-in list, the cluster's image
  ConfigMap, the disk cache.
- :mod:`webservice.model.quantity`: Kubernetes quantities (``0.5``, ``500m``, ``1.5Gi``).
- :mod:`webservice.model.spec`: the one validated spec of what to run, with its precedence.
- :mod:`webservice.model.context`: gathers tool, config, catalogue, template, manifest ->
  spec, for every command (``--dry-run`` included).

Nothing here talks to a cluster or prints.
"""
