"""The webhook's counters and latency histogram, rendered as Prometheus text (format 0.0.4).

Thread-safe (one lock; an increment is a few dict operations). Metrics:

* ``webservice_admission_reviews_total{decision="allowed|denied"}``
* ``webservice_admission_denials_total{reason="<code>"}`` (codes of ``webservice.builders.admission.REASONS``
  and ``unparseable-object``)
* ``webservice_admission_review_duration_seconds`` histogram (body read to response written)
* ``webservice_admission_invalid_requests_total{code="400|404|413|..."}``: requests that were
  not reviews (bad body, unknown path, too large)
* ``webservice_admission_certificate_reloads_total{result="ok|error"}``
"""

from __future__ import annotations

import bisect
import threading

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
PREFIX = "webservice_admission"


class Metrics:
    def __init__(self):
        self.lock = threading.Lock()
        self.reviews = {"allowed": 0, "denied": 0}
        self.denials: dict[str, int] = {}
        self.invalid: dict[str, int] = {}
        self.reloads = {"ok": 0, "error": 0}
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.duration_sum = 0.0

    def review(self, allowed: bool, reason: str | None, seconds: float) -> None:
        index = bisect.bisect_left(BUCKETS, seconds)
        with self.lock:
            self.reviews["allowed" if allowed else "denied"] += 1
            if not allowed:
                self.denials[reason or "unknown"] = self.denials.get(reason or "unknown", 0) + 1
            self.buckets[index] += 1
            self.duration_sum += seconds

    def invalid_request(self, code: int) -> None:
        with self.lock:
            self.invalid[str(code)] = self.invalid.get(str(code), 0) + 1

    def reload(self, ok: bool) -> None:
        with self.lock:
            self.reloads["ok" if ok else "error"] += 1

    def render(self) -> str:
        with self.lock:
            reviews, denials, invalid = dict(self.reviews), dict(self.denials), dict(self.invalid)
            reloads, buckets, total = dict(self.reloads), list(self.buckets), self.duration_sum
        lines = [f"# HELP {PREFIX}_reviews_total AdmissionReviews answered, by decision.",
                 f"# TYPE {PREFIX}_reviews_total counter"]
        lines += [f'{PREFIX}_reviews_total{{decision="{k}"}} {v}' for k, v in sorted(reviews.items())]
        lines += [f"# HELP {PREFIX}_denials_total Denied AdmissionReviews, by reason code.",
                  f"# TYPE {PREFIX}_denials_total counter"]
        lines += [f'{PREFIX}_denials_total{{reason="{k}"}} {v}' for k, v in sorted(denials.items())]
        lines += [f"# HELP {PREFIX}_invalid_requests_total Requests that were not reviews, by HTTP status.",
                  f"# TYPE {PREFIX}_invalid_requests_total counter"]
        lines += [f'{PREFIX}_invalid_requests_total{{code="{k}"}} {v}' for k, v in sorted(invalid.items())]
        lines += [f"# HELP {PREFIX}_certificate_reloads_total Serving certificate reloads, by result.",
                  f"# TYPE {PREFIX}_certificate_reloads_total counter"]
        lines += [f'{PREFIX}_certificate_reloads_total{{result="{k}"}} {v}' for k, v in sorted(reloads.items())]
        name = f"{PREFIX}_review_duration_seconds"
        lines += [f"# HELP {name} Time from request body to response written.", f"# TYPE {name} histogram"]
        running = 0
        for bound, count in zip(BUCKETS, buckets):
            running += count
            lines.append(f'{name}_bucket{{le="{bound}"}} {running}')
        running += buckets[-1]
        lines.append(f'{name}_bucket{{le="+Inf"}} {running}')
        lines.append(f"{name}_sum {total:.6f}")
        lines.append(f"{name}_count {running}")
        return "\n".join(lines) + "\n"
