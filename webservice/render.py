"""``--dry-run``: resolve the spec and build the objects, touching no cluster.

Reads only local files (config, catalogue cache or built-in copy, service.template,
service.manifest) and writes nothing.
"""

from __future__ import annotations

from webservice import objects
from webservice.context import Context
from webservice.request import Request
from webservice.results import RenderResult


def dry_run(request: Request) -> RenderResult:
    ctx = Context.load(request)
    spec = ctx.spec(ctx.catalogue())
    built = objects.build_all(spec)
    ctx.check_admission(built[-1])
    return RenderResult(objects=built, spec_summary={"type": spec.type_name, "url": spec.url})
