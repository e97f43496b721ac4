"""A local stand-in for the Toolforge Kubernetes API, served over real HTTPS, for
end-to-end tests of the real ``webservice`` CLI (and of the official client and kubectl).

Start one with ``StandIn().start()`` or use the pytest fixtures in
``tests.standin.fixtures`` (``standin``, ``ws_env``, ``kubeconfig``, ``kube_client``,
``kubectl``).  Modules: ``certs`` (PKI), ``server`` (HTTPS, recording, faults), ``api``
(routing, authorisation) and ``verbs`` (REST semantics), ``store`` (objects, resource
versions), ``selectors``, ``patch`` (JSON/merge/strategic/apply), ``validation`` and
``admission`` (what the real server refuses), ``defaults``, ``controller`` and
``kubelet`` (the simulation), ``scenarios``, ``events``, ``logs``, ``pods`` and
``websocket`` (log, attach, exec), ``discovery`` and ``openapi``, ``cluster`` (the
``StandIn`` facade), ``fixtures`` (pytest).
"""

from .cluster import StandIn
from .scenarios import SCENARIOS, Scenario

__all__ = ["StandIn", "SCENARIOS", "Scenario"]
