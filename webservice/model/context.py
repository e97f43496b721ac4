"""Gather the inputs of a command: tool, config, catalogue, template, manifest -> Spec.

This is the only place that reads those sources for a command, so that ``--dry-run``,
``start``, ``restart`` and ``shell`` resolve the spec exactly the same way. It never
talks to a cluster itself: the catalogue is read from the on-disk cache or the built-in
copy unless the caller passes a ``fetch`` function (the lifecycle does, through
``webservice.kube.cluster``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from webservice.model.config import Config, load_config
from webservice.model.dirs import cache_dir
from webservice.model.request import Request
from webservice.model.tool import Tool, identify


@dataclass
class Context:
    """A command's inputs: the request, the tool and the layered config (plus warnings)."""

    request: Request
    tool: Tool
    config: Config
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, request: Request) -> "Context":
        tool = identify(request.tool or os.environ.get("WEBSERVICE_TOOL"))
        overrides = {"routing": request.routing}
        config = load_config(overrides)
        if request.action in ("start", "restart"):
            _check_legacy_path(config, tool)
        return cls(request=request, tool=tool, config=config, warnings=request.warnings)

    def catalogue(self, fetch: Callable[[], str] | None = None):
        from webservice.model.catalogue import load_catalogue

        catalogue = load_catalogue(cache_dir(), ttl=self.config.catalogue_ttl, fetch=fetch)
        if getattr(catalogue, "warning", None):
            self.warnings.append(catalogue.warning)
        return catalogue

    def template(self):
        """service.template values (snake_case keys) and where they came from, or ({}, None)."""
        from webservice.state.template import find_template, load_template

        path = find_template(self.tool.home, self.request.template)
        if path is None:
            return {}, None
        template = load_template(path)
        self.warnings.extend(template.warnings)
        return dict(template.values), f"service.template ({path})"

    def manifest(self):
        from webservice.state.manifest import read_manifest

        return read_manifest(self.tool.home)

    def spec(self, catalogue, manifest_data: dict | None = None, now=None):
        from webservice.model.spec import resolve_spec

        if now is None and os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
            from datetime import datetime, timezone

            now = datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), timezone.utc)
        values, origin = self.template()
        if manifest_data is None:
            manifest_data = self.manifest().data
        spec = resolve_spec(
            tool=self.tool,
            config=self.config,
            catalogue=catalogue,
            cli=self.request.spec_values(),
            template=values,
            template_origin=origin or "service.template",
            manifest=manifest_data,
            now=now,
        )
        self.warnings.extend(spec.notes)
        if spec.deprecated:
            newer = catalogue.suggest_replacement(spec.type_name)
            move = f"move to {newer}" if newer else "move to a newer one"
            self.warnings.append(
                f"type {spec.type_name} is deprecated and will be removed; {move} "
                "(see 'webservice types')"
            )
        return spec

    def check_admission(self, obj: dict) -> None:
        """The cluster's ingress admission rule, before anything is sent (REFERENCE 6).

        Hosts are checked against the domains of the site (defaults and site file), not
        against a ``public_domain`` from the user's config or the environment."""
        from webservice.builders.admission import check_routing
        from webservice.errors import AdmissionError

        domains = list(self.config.site_domains or (self.config.public_domain,))
        try:
            check_routing(
                obj,
                self.tool.name,
                domains,
                # the site's legacy host: a legacy_host or project from the user's config or
                # the environment must not aim routing at another host (issue 16)
                legacy_host=(self.config.site_legacy_host_for(self.tool.project)
                             if self.config.legacy_path_served() else None),
            )
        except AdmissionError as error:
            for key in ("legacy_host", "project"):
                where = self.config.sources.get(key, "default")
                if where != "default" and getattr(self.config, key) != getattr(self.config, f"site_{key}"):
                    error.hint = (f"{key} {getattr(self.config, key)!r} comes from {where}; only the site config "
                                  "sets routing hosts: remove that setting")
                    raise
            origin = self.config.sources.get("public_domain", "default")
            if self.config.public_domain not in domains:
                error.hint = (
                    f"public_domain {self.config.public_domain!r} comes from {origin}, but this "
                    f"site routes only {', '.join(domains)}; remove that setting"
                )
            raise


def _check_legacy_path(config: Config, tool: Tool) -> None:
    """Refuse ``legacy-path`` routing up front (before any cluster request) where the site
    does not serve it: under the Gateway without a ``legacy_host`` in the site config, the
    cluster admits only ``<tool>.<domain>``, so the object would be refused or serve nothing."""
    if config.routing != "legacy-path" or config.legacy_path_served():
        return
    from webservice.model.config import site_config_path
    from webservice.errors import UsageError

    where = config.sources.get("routing", "default")
    given = "--routing legacy-path" if where == "command line" else f"routing legacy-path (from {where})"
    raise UsageError(
        f"{given}: this site does not serve legacy path routing (/{tool.name}/ on a shared host): its Gateway "
        f"routes only <tool>.<domain> (no legacy_host in the site config {site_config_path(os.environ)})",
        hint=f"use the default routing (--routing httproute), which serves https://{tool.name}."
             f"{config.site_domains[0] if config.site_domains else config.public_domain}/",
    )
