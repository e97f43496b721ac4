"""Pure classification: objects, pods and events in; states and reasons a maintainer understands out.

- :mod:`webservice.health.diagnose`: pods and events -> problems (image pull, crash loop,
  quota, probe failures, ...), each with what to do.
- :mod:`webservice.health.routes`: what an HTTPRoute's ``status.parents`` (or an Ingress's
  load-balancer status) says: attached, refused (and why), or unconfirmed.
- :mod:`webservice.health.policy`: policy refusals (Kyverno, any validating webhook) read out
  of an API message.
- :mod:`webservice.health.owners`: whether an object is ours, and who else owns it (a job,
  another manager, a hand-made object), from its labels.

Nothing here talks to a cluster or prints.
"""
