"""The route admission webhook: the cluster-side half of the routing host rule.

``webservice-admission serve`` is an HTTPS server for ``admission.k8s.io/v1``
AdmissionReviews, a drop-in replacement for Toolforge's Go ingress-admission webhook
(same path ``/``, same environment variables ``LISTENON``, ``TLSCERT``, ``TLSKEY``,
``DOMAINS``, ``DEBUG``). It checks Ingresses and HTTPRoutes in ``tool-<tool>``
namespaces with the same rule the client applies before sending
(``webservice.builders.admission.Policy``).

Modules: ``config`` (flags and environment -> ``WebhookConfig``), ``review`` (pure:
AdmissionReview in, response out), ``metrics`` (Prometheus text), ``server`` (HTTPS,
certificate reload, graceful shutdown), ``cli`` (the console command). Standard library
only, plus click for the command line; nothing here imports kubernetes, urllib3 or rich.
"""
