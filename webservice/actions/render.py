"""``--dry-run``: resolve the spec and build the objects, touching no cluster.

Reads only local files (config, catalogue cache or built-in copy, service.template,
service.manifest) and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from webservice.builders import objects
from webservice.model.context import Context
from webservice.model.request import Request


@dataclass
class RenderResult:
    """``--dry-run``'s result: the objects start/restart would apply, in order. (The other
    results are in ``webservice.ui.results``; this one is here so that ``--dry-run`` does not
    import them.)"""

    objects: list[dict]
    spec_summary: dict = field(default_factory=dict)
    exit_code: int = 0


def dry_run(request: Request) -> RenderResult:
    ctx = Context.load(request)
    spec = ctx.spec(ctx.catalogue())
    built = objects.build_all(spec)
    ctx.check_admission(built[-1])
    return RenderResult(objects=built, spec_summary={"type": spec.type_name, "url": spec.url})
