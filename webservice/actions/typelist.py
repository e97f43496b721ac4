"""``webservice types``: the webservice types this site offers, from the image catalogue.

The catalogue is the cluster's (``tf-public/image-config``) when the tool's credentials can
read it, through the same cache as ``start`` (so most calls send no request), else the
cached copy or the built-in list; the result says which. This module only gathers; the
table and ``--json`` are drawn by ``webservice.ui.output``.
"""

from __future__ import annotations

from webservice.ui.results import TypesResult


def list_types(request) -> TypesResult:
    from webservice.model.context import Context
    from webservice.errors import ClusterError, NotAToolError

    fetch = None
    cluster = None
    try:
        ctx = Context.load(request)
    except NotAToolError:  # anyone may ask which types exist: the offline list then
        from webservice.model.catalogue import load_catalogue
        from webservice.model.dirs import cache_dir

        catalogue = load_catalogue(cache_dir())
    else:
        try:
            from webservice.kube.cluster import Cluster
            from webservice.actions.connect import catalogue_fetch

            cluster = Cluster.connect(ctx.tool, debug=request.debug)
            fetch = catalogue_fetch(cluster)
        except ClusterError as error:  # no credentials: say so, list what is known offline
            request.warnings.append(f"listing the types known offline: {error.message}")
        try:
            catalogue = ctx.catalogue(fetch=fetch)
        finally:
            if cluster is not None:
                cluster.close()
    from webservice.model.catalogue import list_types as catalogue_types

    return TypesResult(types=catalogue_types(catalogue), source=catalogue.source, fetched_at=catalogue.fetched_at)
