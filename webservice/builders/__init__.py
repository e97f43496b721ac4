"""Pure builders of the objects a webservice is made of, and the host rule they must obey.

- :mod:`webservice.builders.objects`: Deployment, Service, HTTPRoute, Ingress (subdomain and
  legacy path), shell Pod, from a spec; no I/O.
- :mod:`webservice.builders.admission`: the routing host rule (``<tool>.<domain>``, legacy
  path, parents, backends, annotations), shared by the client-side check and the admission
  webhook server (:mod:`webservice.webhook`).

Nothing here reads files, talks to a cluster or prints.
"""
