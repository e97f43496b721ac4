"""The validated spec: exactly what to run, resolved once from every source.

Precedence, per key, without exceptions: command line > service.template >
service.manifest > built-in defaults (REFERENCE section 4). Unlike the old command,
``--replicas 1`` overrides a stored 2, ``extra_args`` follows the same precedence as every
other key, and a string ``extra_args`` is an error rather than a list of characters.

``resolve_spec`` is pure: the caller hands it the tool, the config, the catalogue, the
template values and the manifest data. It raises ``InputError`` subclasses for anything
that cannot run. Objects are built from a ``Spec`` by ``webservice.objects``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Mapping

from webservice import quantity
from webservice.errors import InputError, UsageError

KEYS = (
    "type",
    "backend",
    "cpu",
    "mem",
    "replicas",
    "buildservice_image",
    "extra_args",
    "health_check_path",
    "mount",
)
# service.manifest spelling of each key (REFERENCE section 4)
MANIFEST_KEYS = {
    "type": "web",
    "backend": "backend",
    "cpu": "cpu",
    "mem": "memory",
    "replicas": "replicas",
    "buildservice_image": "buildservice-image",
    "extra_args": "web::extra_args",
    "health_check_path": "health-check-path",
    "mount": "mount",
}
BACKENDS = ("kubernetes",)
MOUNTS = ("all", "none")
MAX_REPLICAS = 16
DEFAULT_LIMITS = {"cpu": Decimal("0.5"), "memory": Decimal(512 * 2**20)}
# requests follow the limits by the same rule as --cpu/--mem (half, rounded up to 1m)
DEFAULT_REQUESTS = {"cpu": quantity.cpu_request_for(DEFAULT_LIMITS["cpu"]),
                    "memory": quantity.memory_request_for(DEFAULT_LIMITS["memory"])}
PROFILE_LIMITS = {"default": {}, "jdk": {"memory": Decimal(2**30)}}
# \Z, not $: '$' also matches before a final newline ('/healthz\n' is not a path)
_IMAGE_PATH = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?\Z")
_HEALTH_PATH = re.compile(r"^/[\x21-\x7e]{0,1023}\Z")


@dataclass(frozen=True)
class Spec:
    """Everything needed to build the objects of one webservice."""

    tool: str
    project: str
    namespace: str
    type_name: str
    runner: str | None  # webservice-runner --type, None for build-service images
    image: str
    buildservice: bool
    deprecated: bool
    cpu_limit: Decimal
    cpu_request: Decimal
    mem_limit: Decimal
    mem_request: Decimal
    replicas: int
    extra_args: tuple[str, ...]
    health_check_path: str | None
    mount: str
    routing: str
    public_domain: str
    legacy_host: str
    legacy_snippets: bool
    gateway_name: str
    gateway_namespace: str
    gateway_section: str
    started_at: str
    buildservice_image: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    # the uid and gid the pods run as (the tool's account, or the site config's); None: unknown
    uid: int | None = None
    gid: int | None = None

    @property
    def host(self) -> str:
        return self.legacy_host if self.routing == "legacy-path" else f"{self.tool}.{self.public_domain}"

    @property
    def url(self) -> str:
        if self.routing == "legacy-path":
            return f"https://{self.legacy_host}/{self.tool}/"
        return f"https://{self.tool}.{self.public_domain}/"

    def manifest_values(self) -> dict:
        """The service.manifest values of this spec, by manifest key (None removes a key).

        Values that only come from the defaults are not stored, so that a later change of
        the defaults reaches the tool."""
        given = lambda key: self.sources.get(key, "default") != "default"  # noqa: E731
        return {
            "web": self.type_name,
            "backend": "kubernetes",
            "cpu": quantity.format_cpu(self.cpu_limit) if given("cpu") else None,
            "memory": quantity.format_memory(self.mem_limit) if given("mem") else None,
            "replicas": self.replicas if given("replicas") else None,
            "buildservice-image": self.buildservice_image,
            "web::extra_args": list(self.extra_args) or None,
            "health-check-path": self.health_check_path,
            "mount": self.mount if self.mount != "all" else None,
        }


def manifest_layer(data: Mapping[str, Any]) -> dict:
    """Translate service.manifest keys into spec keys (only the ones present)."""
    out = {}
    for key, stored in MANIFEST_KEYS.items():
        if data.get(stored) is not None:
            out[key] = data[stored]
    return out


def now_iso(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_extra_args(value: Any, origin: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise InputError(
            f"extra_args from {origin} must be a list of strings, e.g. [--port, '8000'], "
            f"not {type(value).__name__}"
        )
    if len(value) > 256:
        raise InputError(f"extra_args from {origin}: too many arguments ({len(value)}, at most 256)")
    out = []
    for item in value:
        if not isinstance(item, str):
            raise InputError(f"extra_args from {origin}: {item!r} is not a string")
        if "\x00" in item or len(item) > 4096:
            raise InputError(f"extra_args from {origin}: an argument is over 4096 characters or has a NUL byte")
        out.append(item)
    return tuple(out)


def resolve_spec(
    *,
    tool,
    config,
    catalogue,
    cli: Mapping[str, Any],
    template: Mapping[str, Any] | None = None,
    template_origin: str = "service.template",
    manifest: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    require_type: bool = True,
) -> Spec:
    """Resolve the spec; ``cli``/``template`` use the snake_case KEYS, ``manifest`` the raw file data."""
    layers = [
        ("command line", {k: v for k, v in cli.items() if v is not None and k in KEYS}),
        (template_origin, {k: v for k, v in (template or {}).items() if v is not None}),
        ("service.manifest", manifest_layer(manifest or {})),
    ]
    chosen: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in KEYS:
        for origin, values in layers:
            if key in values:
                chosen[key] = values[key]
                sources[key] = origin
                break
        else:
            sources[key] = "default"

    backend = chosen.get("backend", "kubernetes")
    if backend == "gridengine":
        raise UsageError(
            "the grid engine backend is retired: webservices run on Kubernetes only",
            hint="drop '--backend gridengine' (and 'backend: gridengine' from service.template)",
        )
    if backend not in BACKENDS:
        raise InputError(f"backend {str(backend)[:40]!r} from {sources['backend']} is unknown; use 'kubernetes'")

    if "type" not in chosen:
        raise UsageError(
            "no webservice type given and none stored in service.manifest",
            hint="name one, e.g. 'webservice python3.11 start' (see 'webservice --help' for types)",
        )
    if not isinstance(chosen["type"], str):
        raise InputError(f"type from {sources['type']} must be a string")
    wstype = catalogue.resolve(chosen["type"])

    # resources: profile defaults, then --cpu/--mem (limit; request derived)
    limits = dict(DEFAULT_LIMITS)
    limits.update(PROFILE_LIMITS.get(wstype.profile, {}))
    requests = dict(DEFAULT_REQUESTS)
    def named(key: str, option: str) -> str:
        return option if sources[key] == "command line" else f"{key} in {sources[key]}"

    if "cpu" in chosen:
        limits["cpu"] = quantity.parse_cpu(chosen["cpu"], named("cpu", "--cpu"))
        requests["cpu"] = quantity.cpu_request_for(limits["cpu"])
    if "mem" in chosen:
        limits["memory"] = quantity.parse_memory(chosen["mem"], named("mem", "--mem"))
        requests["memory"] = quantity.memory_request_for(limits["memory"])
    requests["cpu"] = min(requests["cpu"], limits["cpu"])
    requests["memory"] = min(requests["memory"], limits["memory"])

    replicas = chosen.get("replicas", 1)
    if isinstance(replicas, str) and re.fullmatch(r"[0-9]{1,6}", replicas.strip()):  # ASCII digits only
        replicas = int(replicas)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= MAX_REPLICAS:
        raise InputError(
            f"replicas from {sources['replicas']} must be a whole number from 1 to {MAX_REPLICAS}, "
            f"got {str(replicas)[:40]!r}"
        )

    extra_args = _check_extra_args(chosen["extra_args"], sources["extra_args"]) if "extra_args" in chosen else ()

    health = chosen.get("health_check_path")
    if health is not None and (not isinstance(health, str) or not _HEALTH_PATH.match(health)):
        raise InputError(
            f"health-check-path from {sources['health_check_path']} must be a URL path starting "
            f"with '/', without spaces, got {str(health)[:60]!r}"
        )

    mount = chosen.get("mount", "all")
    if mount not in MOUNTS:
        raise InputError(f"mount from {sources['mount']} must be 'all' or 'none', got {str(mount)[:40]!r}")

    bs_image = chosen.get("buildservice_image")
    buildservice = wstype.runner is None
    if bs_image is not None and not buildservice:
        raise UsageError(
            f"--buildservice-image only applies to the buildservice type, not {wstype.name}",
            hint="use 'webservice buildservice start --buildservice-image IMAGE'",
        )
    if buildservice:
        bs_image = bs_image or f"tool-{tool.name}/tool-{tool.name}:latest"
        if not isinstance(bs_image, str) or not _IMAGE_PATH.match(bs_image):
            raise InputError(
                f"buildservice-image from {sources['buildservice_image']} is not an image name "
                f"like tool-{tool.name}/tool-{tool.name}:latest, got {str(bs_image)[:80]!r}"
            )
        if ":" not in bs_image.rsplit("/", 1)[-1]:
            bs_image += ":latest"
        image = f"{config.buildservice_repository}/{bs_image}"
    else:
        image = wstype.image
        if mount == "none":
            raise InputError(
                f"--mount none only works with build-service images: type {wstype.name} "
                "serves files from the tool's home, which would not be mounted"
            )
        if wstype.needs_extra_args and not extra_args:
            raise UsageError(
                f"type {wstype.name} runs the command you give after '--', and none was given",
                hint=f"e.g. 'webservice {wstype.name} start -- ./my-server --port 8000'",
            )

    project = config.project or tool.project
    return Spec(
        tool=tool.name,
        project=project,
        namespace=tool.namespace,
        type_name=wstype.name,
        runner=wstype.runner,
        image=image,
        buildservice=buildservice,
        deprecated=wstype.deprecated,
        cpu_limit=limits["cpu"],
        cpu_request=requests["cpu"],
        mem_limit=limits["memory"],
        mem_request=requests["memory"],
        replicas=replicas,
        extra_args=extra_args,
        health_check_path=health,
        mount=mount,
        routing=config.routing,
        public_domain=config.public_domain,
        legacy_host=config.effective_legacy_host(project),
        legacy_snippets=config.legacy_snippets,
        gateway_name=config.gateway_name,
        gateway_namespace=config.gateway_namespace,
        gateway_section=config.gateway_section,
        started_at=now_iso(now),
        buildservice_image=bs_image if buildservice and sources["buildservice_image"] != "default" else None,
        sources=sources,
        uid=getattr(config, "run_as_uid", 0) or getattr(tool, "uid", None),
        gid=getattr(config, "run_as_gid", 0) or getattr(tool, "gid", None),
    )
