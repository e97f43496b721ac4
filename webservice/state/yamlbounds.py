"""Bounds on YAML input, checked before PyYAML builds anything.

Files webservice reads (service.template, service.manifest, the kubeconfig) come from
users. PyYAML's composer is recursive and expands aliases, so a small hostile file can
exhaust the stack or memory ("billion laughs"). ``check_bounds`` makes one cheap,
iterative pass over the parser's events and refuses, with a one-line reason, documents
nested too deep, with too many aliases, too many values once aliases are expanded, or
more than one document. It does not load anything; callers load afterwards.
"""

from __future__ import annotations

MAX_DEPTH = 32
MAX_ALIASES = 100
MAX_NODES = 100_000


def check_bounds(text: str, loader, *, max_depth: int = MAX_DEPTH, max_aliases: int = MAX_ALIASES,
                 max_nodes: int = MAX_NODES) -> None:
    """Raise ``ValueError`` (one-line reason) if ``text`` is beyond the bounds.

    ``nodes`` counts the values the document has once every alias is expanded
    (``sizes``: the expanded size of each anchored node). YAML syntax errors propagate
    as ``yaml.YAMLError`` for the caller to report."""
    import yaml

    aliases = documents = nodes = 0
    stack: list[tuple[str | None, int]] = []
    sizes: dict[str, int] = {}
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            stack.append((event.anchor, nodes))
            nodes += 1
            if len(stack) > max_depth:
                raise ValueError(f"nested deeper than {max_depth} levels")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, start = stack.pop()
            if anchor is not None:
                sizes[anchor] = nodes - start
        elif isinstance(event, yaml.ScalarEvent):
            nodes += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            nodes += sizes.get(event.anchor, 1)
            if aliases > max_aliases:
                raise ValueError(f"more than {max_aliases} YAML aliases")
        elif isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise ValueError("more than one YAML document ('---')")
        if nodes > max_nodes:
            raise ValueError(f"too much data (more than {max_nodes} values once YAML aliases are expanded)")
