"""The validated spec: exactly what to run, resolved once from every source.

Precedence, per key, without exceptions: command line > service.template >
service.manifest > built-in defaults (REFERENCE section 4). Unlike the old command,
``--replicas 1`` overrides a stored 2 and ``extra_args`` follows the same precedence as
every other key. With no type anywhere, the site's ``default_type`` (else ``php7.4``)
starts, with a note.

A service.manifest as 0.98 and older left it never blocks (:func:`manifest_layer`): a
stored ``backend: gridengine`` is ignored with a note (only ``--backend gridengine`` is an
error), a version 2 ``web::extra_args`` string is split, and ``buildservice-image`` or
``web::extra_args`` stored for another type than the one starting are ignored. Every
refusal names where the value came from: the option, the service.template key or the
service.manifest key (:func:`_label`). ``Spec.notes`` carries the notes for the caller to
show as warnings.

``resolve_spec`` is pure: the caller hands it the tool, the config, the catalogue, the
template values and the manifest data. It raises ``InputError`` subclasses for anything
that cannot run. Objects are built from a ``Spec`` by ``webservice.builders.objects``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Mapping

from webservice.model import quantity
from webservice.conventions import GRID_HINT, GRID_RETIRED
from webservice.errors import InputError, UnknownTypeError, UsageError

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
DEFAULT_TYPE = "php7.4"  # Toolforge's own acceptance tests expect it when nothing names a type
# the option that sets each key on the command line
OPTIONS = {
    "backend": "--backend", "cpu": "--cpu", "mem": "--mem", "replicas": "--replicas",
    "buildservice_image": "--buildservice-image", "health_check_path": "--health-check-path",
    "mount": "--mount", "extra_args": "the arguments after '--'", "type": "the type on the command line",
}
TEMPLATE_NAMES = {"buildservice_image": "buildservice-image", "health_check_path": "health-check-path"}
GRID_NOTE = ("the grid engine was retired in 2024 and webservices run on Kubernetes; "
             "the next start or stop rewrites the file")
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
    ingress_class: str = ""
    # what legacy path routing is built as: "HTTPRoute" under a Gateway, "Ingress" where the
    # site runs an ingress controller (Config.legacy_path_kind)
    legacy_kind: str = "Ingress"
    buildservice_image: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    # the uid and gid the pods run as (the tool's account, or the site config's); None: unknown
    uid: int | None = None
    gid: int | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)

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

        Only what was given on a command line (now, or at an earlier start and kept in the
        manifest) is stored, plus the type: a value of service.template is read fresh on
        every start, so a key removed from the template stops applying; a value that only
        comes from the defaults is not stored, so that a later change of the defaults
        reaches the tool (the default ``mount: all`` included)."""
        given = lambda key: self.sources.get(key) in ("command line", "service.manifest")  # noqa: E731
        return {
            "web": self.type_name,
            "backend": "kubernetes",
            "cpu": quantity.format_cpu(self.cpu_limit) if given("cpu") else None,
            "memory": quantity.format_memory(self.mem_limit) if given("mem") else None,
            "replicas": self.replicas if given("replicas") else None,
            "buildservice-image": self.buildservice_image if given("buildservice_image") else None,
            "web::extra_args": (list(self.extra_args) or None) if given("extra_args") else None,
            "health-check-path": self.health_check_path if given("health_check_path") else None,
            "mount": self.mount if given("mount") and self.mount != "all" else None,
        }



def check_backend(value) -> None:
    """``--backend gridengine`` on the command line is the one refusal of the retired grid
    (a stored or templated one is ignored with a note: see :func:`resolve_spec`)."""
    if value == "gridengine":
        raise UsageError(GRID_RETIRED, hint=GRID_HINT)

def manifest_layer(data: Mapping[str, Any], notes: list | None = None) -> dict:
    """Translate service.manifest keys into spec keys (only the ones present and usable).

    What older versions left that cannot apply is left out, with a note appended to
    ``notes``: ``backend: gridengine``, a ``web::extra_args`` string whose quoting is
    broken. A version 2 ``web::extra_args`` string is split like a shell would."""
    notes = [] if notes is None else notes
    out = {}
    for key, stored in MANIFEST_KEYS.items():
        if data.get(stored) is not None:
            out[key] = data[stored]
    backend = out.get("backend")
    if backend is not None and backend not in BACKENDS:
        del out["backend"]
        why = GRID_NOTE if backend == "gridengine" else "webservices run on Kubernetes only"
        notes.append(f"service.manifest: ignored 'backend: {str(backend)[:40]}' ({why})")
    extra = out.get("extra_args")
    if isinstance(extra, str):
        import shlex

        try:
            out["extra_args"] = shlex.split(extra)
        except ValueError:
            del out["extra_args"]
            notes.append(f"service.manifest: ignored key 'web::extra_args' {extra[:60]!r} (its quoting is "
                         "broken); give the arguments after '--'")
    return out


def _label(key: str, sources: Mapping[str, str]) -> str:
    """Where the value of ``key`` came from, for a message: ``--mount``, ``service.template
    (/path) key 'mount'``, ``service.manifest key 'replicas'``."""
    origin = sources.get(key, "default")
    if origin == "command line":
        return OPTIONS.get(key, f"--{key.replace('_', '-')}")
    if origin == "service.manifest":
        return f"service.manifest key '{MANIFEST_KEYS[key]}'"
    if origin == "default":
        return f"the default {key.replace('_', '-')}"
    return f"{origin} key '{TEMPLATE_NAMES.get(key, key)}'"


def now_iso(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_extra_args(value: Any, origin: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise InputError(
            f"{origin} must be a list of strings, e.g. [--port, '8000'], "
            f"not {type(value).__name__}"
        )
    if len(value) > 256:
        raise InputError(f"{origin}: too many arguments ({len(value)}, at most 256)")
    out = []
    for item in value:
        if not isinstance(item, str):
            raise InputError(f"{origin}: {item!r} is not a string")
        if "\x00" in item or len(item) > 4096:
            raise InputError(f"{origin}: an argument is over 4096 characters or has a NUL byte")
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
    notes: list[str] = []
    cli_values = {k: v for k, v in cli.items() if v is not None and k in KEYS}
    template_values = {k: v for k, v in (template or {}).items() if v is not None}
    stored = manifest_layer(manifest or {}, notes)
    check_backend(cli_values.get("backend"))
    if template_values.get("backend") == "gridengine":
        del template_values["backend"]
        notes.append(f"{template_origin}: ignored 'backend: gridengine' ({GRID_NOTE.split(';')[0]}); "
                     "remove that line")
    # an explicit type (command line, template) other than the stored one: what was stored
    # for the old type (its arguments, build-service image, mount choice) does not apply
    asked = cli_values.get("type", template_values.get("type"))
    if asked is not None and stored.get("type") is not None and asked != stored["type"]:
        for key in ("extra_args", "buildservice_image", "mount"):
            stored.pop(key, None)
    layers = [("command line", cli_values), (template_origin, template_values), ("service.manifest", stored)]
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

    def label(key: str) -> str:
        return _label(key, sources)

    backend = chosen.get("backend", "kubernetes")
    if backend not in BACKENDS:
        raise InputError(f"{label('backend')} is {str(backend)[:40]!r}, which is unknown; use 'kubernetes'")

    if "type" not in chosen and sources["buildservice_image"] in ("command line", template_origin):
        # a build-service image named without a type: the buildservice type is meant
        chosen["type"], sources["type"] = "buildservice", sources["buildservice_image"]
    if "type" not in chosen:
        default = getattr(config, "default_type", "") or DEFAULT_TYPE
        where = (getattr(config, "sources", None) or {}).get("default_type", "default")
        chosen["type"], sources["type"] = default, "default"
        notes.append(f"no type given (on the command line, in service.template or in service.manifest): "
                     f"starting the {'site ' if where != 'default' else ''}default type {default}"
                     + (f" ({where})" if where != "default" else "")
                     + f"; name one to choose, e.g. 'webservice {default} start'")
    if not isinstance(chosen["type"], str):
        raise InputError(f"{label('type')} must be a string")
    try:
        wstype = catalogue.resolve(chosen["type"])
    except UnknownTypeError as error:
        if sources["type"] == "service.manifest":
            error.message = f"service.manifest key 'web': {error}"
            error.hint = (f"it was stored by an older start; name a current type, e.g. "
                          f"'webservice {catalogue.suggest_replacement(chosen['type']) or DEFAULT_TYPE} start'"
                          if hasattr(catalogue, "suggest_replacement") else error.hint)
        elif sources["type"] == "default":
            error.message = f"site config key 'default_type': {error}"
        elif sources["type"] != "command line":
            error.message = f"{label('type')}: {error}"
        raise

    # resources: profile defaults, then --cpu/--mem (limit; request derived)
    limits = dict(DEFAULT_LIMITS)
    limits.update(PROFILE_LIMITS.get(wstype.profile, {}))
    requests = dict(DEFAULT_REQUESTS)
    if "cpu" in chosen:
        limits["cpu"] = quantity.parse_cpu(chosen["cpu"], label("cpu"))
        requests["cpu"] = quantity.cpu_request_for(limits["cpu"])
    if "mem" in chosen:
        limits["memory"] = quantity.parse_memory(chosen["mem"], label("mem"))
        requests["memory"] = quantity.memory_request_for(limits["memory"])
    requests["cpu"] = min(requests["cpu"], limits["cpu"])
    requests["memory"] = min(requests["memory"], limits["memory"])

    replicas = chosen.get("replicas", 1)
    if isinstance(replicas, str) and re.fullmatch(r"[0-9]{1,6}", replicas.strip()):  # ASCII digits only
        replicas = int(replicas)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= MAX_REPLICAS:
        raise InputError(
            f"{label('replicas')} must be a whole number from 1 to {MAX_REPLICAS}, "
            f"got {str(replicas)[:40]!r}",
            hint=("fix or remove that key (or give --replicas N)" if sources["replicas"] != "command line"
                  else None),
        )

    extra_args = _check_extra_args(chosen["extra_args"], label("extra_args")) if "extra_args" in chosen else ()

    health = chosen.get("health_check_path")
    if health is not None and (not isinstance(health, str) or not _HEALTH_PATH.match(health)):
        raise InputError(
            f"{label('health_check_path')} must be a URL path starting "
            f"with '/', without spaces, got {str(health)[:60]!r}"
        )

    mount = chosen.get("mount", "all")
    if mount not in MOUNTS:
        raise InputError(f"{label('mount')} must be 'all' or 'none', got {str(mount)[:40]!r}")

    bs_image = chosen.get("buildservice_image")
    buildservice = wstype.runner is None
    if bs_image is not None and not buildservice:
        if sources["buildservice_image"] == "command line":
            raise UsageError(
                f"--buildservice-image only applies to the buildservice type, not {wstype.name}",
                hint="use 'webservice buildservice start --buildservice-image IMAGE'",
            )
        if sources["buildservice_image"] != "service.manifest":  # 0.98 stored it for every type: silent
            notes.append(f"{label('buildservice_image')} ignored: it only applies to the buildservice "
                         f"type, not {wstype.name}")
        bs_image, sources["buildservice_image"] = None, "default"
    if buildservice:
        bs_image = bs_image or f"tool-{tool.name}/tool-{tool.name}:latest"
        if not isinstance(bs_image, str) or not _IMAGE_PATH.match(bs_image):
            raise InputError(
                f"{label('buildservice_image')} is not an image name "
                f"like tool-{tool.name}/tool-{tool.name}:latest, got {str(bs_image)[:80]!r}"
            )
        if ":" not in bs_image.rsplit("/", 1)[-1]:
            bs_image += ":latest"
        image = f"{config.buildservice_repository}/{bs_image}"
    else:
        image = wstype.image
        if mount == "none":
            raise InputError(
                f"{label('mount')} is 'none', which only works with build-service images: type "
                f"{wstype.name} serves files from the tool's home, which would not be mounted"
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
        ingress_class=config.ingress_class,
        legacy_kind=config.legacy_path_kind(),
        started_at=now_iso(now),
        buildservice_image=bs_image if buildservice and sources["buildservice_image"] != "default" else None,
        sources=sources,
        uid=getattr(config, "run_as_uid", 0) or getattr(tool, "uid", None),
        gid=getattr(config, "run_as_gid", 0) or getattr(tool, "gid", None),
        notes=tuple(notes),
    )
