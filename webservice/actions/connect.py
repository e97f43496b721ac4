"""The cluster connection of a command, and the catalogue read through it.

``connect`` opens the API client for the tool (``webservice.kube.cluster`` is imported only
here and in ``status``/``logs``, when a command really needs the cluster); ``catalogue_fetch``
is the ``fetch`` that ``Context.catalogue`` calls to read the cluster's image catalogue.
"""

from __future__ import annotations

from webservice.errors import ClusterError

CATALOGUE_NAMESPACE = "tf-public"
CATALOGUE_CONFIGMAP = "image-config"
CATALOGUE_KEY = "images-v1.yaml"


def connect(ctx, request):
    from webservice.kube.cluster import Cluster

    return Cluster.connect(ctx.tool, debug=request.debug)


def catalogue_fetch(cluster):
    """The ``fetch`` for ``Context.catalogue``: images-v1.yaml from tf-public/image-config."""

    def fetch() -> str:
        config_map = cluster.read_config_map(CATALOGUE_NAMESPACE, CATALOGUE_CONFIGMAP)
        text = ((config_map or {}).get("data") or {}).get(CATALOGUE_KEY)
        if not isinstance(text, str) or not text.strip():
            raise ClusterError(f"ConfigMap {CATALOGUE_NAMESPACE}/{CATALOGUE_CONFIGMAP} has no {CATALOGUE_KEY}")
        return text

    return fetch
