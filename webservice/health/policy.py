"""Policy refusals (Kyverno, or any validating admission webhook) read out of the message
the API server passes on, so that they can be said in one line: which rule, which field.

Kyverno's text, as a ReplicaSet ``FailedCreate`` event or a direct denial, looks like::

    admission webhook "validate.kyverno.svc-fail" denied the request:

    resource Pod/tool-mytool/mytool-7d9f8-abcde was blocked due to the following policies

    toolforge-kyverno-pod-policy:
      toolforge-validate-pod-policy: 'validation error: ... rule toolforge-validate-pod-policy
        failed at path /spec/securityContext/runAsNonRoot/'

Pure text parsing: no I/O, no cluster. It does not decide what to do about a refusal;
``diagnose`` and ``apierrors`` word the advice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WEBHOOK = re.compile(r'admission webhook "(?P<webhook>[^"]+)" denied the request:?\s*(?P<rest>.*)', re.S)
_BLOCKED = re.compile(r"blocked due to the following policies\s*(?P<policies>.*)", re.S)
_POLICY = re.compile(r"^\s*(?P<policy>[A-Za-z0-9][-A-Za-z0-9_.]*):\s*$", re.M)
_RULE = re.compile(r"^\s*(?P<rule>[A-Za-z0-9][-A-Za-z0-9_.]*):\s*'?(?P<text>.+?)'?\s*$", re.M)
_PATH = re.compile(r"failed at path (?P<path>/[^\s']*)")


@dataclass(frozen=True)
class PolicyDenial:
    webhook: str
    policy: str | None
    rule: str | None
    path: str | None  # the field, as a JSON path (/spec/securityContext/runAsNonRoot/)
    text: str  # the rule's own message (or the webhook's), on one line

    @property
    def field(self) -> str | None:
        """The path as a field name: ``spec.securityContext.runAsNonRoot``."""
        if not self.path:
            return None
        return ".".join(p for p in self.path.strip("/").split("/") if p) or None

    def one_line(self, what: str = "the pods") -> str:
        who = f"policy {self.policy}, rule {self.rule}" if self.policy and self.rule else f"webhook {self.webhook}"
        where = f" at {self.field}" if self.field else ""
        return f"the cluster's policy refused {what} ({who}{where}): {self.text}"


def parse_denial(message: str) -> PolicyDenial | None:
    """The policy refusal in an API server message, or None when it is not one."""
    if not isinstance(message, str):
        return None
    found = _WEBHOOK.search(message)
    if not found:
        return None
    webhook, rest = found.group("webhook"), found.group("rest").strip()
    policy = rule = None
    text = " ".join(rest.split()) or "denied"
    blocked = _BLOCKED.search(rest)
    if blocked:
        body = blocked.group("policies")
        p = _POLICY.search(body)
        if p:
            policy = p.group("policy")
            r = _RULE.search(body, p.end())
            if r:
                rule, text = r.group("rule"), " ".join(r.group("text").split()).strip("'")
    path = _PATH.search(rest)
    if text.startswith("validation error: "):
        text = text[len("validation error: "):]
    if len(text) > 300:
        text = text[:297] + "..."
    return PolicyDenial(webhook=webhook, policy=policy, rule=rule, path=path.group("path") if path else None, text=text)
