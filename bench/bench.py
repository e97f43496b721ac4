#!/usr/bin/env python3
"""Benchmark every webservice command as whole processes, against budgets and the floor.

Usage (from a clone, after ``.ci/setup``)::

    .venv/bin/python bench/bench.py [--runs 15] [--envs pypi,bookworm] [--out bench/results]

What it does:

* builds (once, cached in ``.bench/``, git-ignored) two virtualenvs with webservice
  installed normally (not editable, byte-compiled, as a package install is): ``pypi``
  with the newest versions setup.cfg allows, and ``bookworm`` with the versions Debian
  bookworm ships (kubernetes 22.6, click 8.1.3, rich 13.3.1, PyYAML 6.0.x,
  platformdirs 2.6);
* starts the test stand-in (``tests/standin``) in this process with its time scale at
  zero, and a tool environment (home, kubeconfig with a client certificate);
* runs each case ``--runs`` times as a fresh process, and records the median and spread
  of the wall time, the peak memory (``ru_maxrss``), and the API requests it made;
* measures the floor: a bare interpreter start, and the same number of requests made
  by a minimal HTTPS client (``http.client``) in a fresh interpreter;
* records which requests each case made (``describe``: verb and resource, without the
  tool's names) and gives the reason for each from the ``WHY`` table; a request missing
  there fails the "no request it does not need" row;
* checks the budgets of issue 9 and prints a table; writes ``results.json`` and
  ``results.md`` in ``--out``.

Nothing here is a test: timings depend on the machine. The tests assert behaviour;
this script reports speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ENVS = {
    "pypi": [],  # the newest versions setup.cfg allows
    "bookworm": ["kubernetes==22.6.0", "click==8.1.3", "rich==13.3.1", "PyYAML==6.0.1", "platformdirs==2.6.2"],
}
BUDGETS = {
    "help": 0.15,
    "complete": 0.15,
    "dry-run": 0.15,
}
STATUS_BUDGET = 0.4
START_OVERHEAD_BUDGET = 0.3


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_env(name: str, pins: list[str]) -> Path:
    """A virtualenv with webservice installed like a package, cached by its pins."""
    venv = ROOT / ".bench" / f"venv-{name}"
    stamp = venv / "bench-stamp"
    want = json.dumps({"pins": pins, "source": _source_stamp()})
    if stamp.exists() and stamp.read_text() == want:
        return venv
    log(f"bench: building the {name} environment in {venv} (once)")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    quiet = {"stderr": subprocess.DEVNULL}
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, *pins, "cryptography", "kubernetes-validate", "pytest"], check=True, **quiet)
    subprocess.run([*pip, str(ROOT)], check=True, **quiet)  # the pins satisfy setup.cfg's ranges
    subprocess.run([str(venv / "bin" / "python"), "-m", "compileall", "-q", str(venv / "lib")], check=False)
    stamp.write_text(want)
    return venv


def _source_stamp() -> str:
    files = sorted((ROOT / "webservice").rglob("*.py")) + [ROOT / "setup.cfg"]
    return str(max(f.stat().st_mtime_ns for f in files))


class Proc:
    """One timed run of a whole process."""

    def __init__(self, argv, env, cwd):
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            started = time.perf_counter()
            child = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            _, status, usage = os.wait4(child.pid, 0)  # this child's own peak memory
            self.ended = time.perf_counter()
            child.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            self.out, self.err = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        self.wall = self.ended - started
        self.code = child.returncode
        self.maxrss_kb = usage.ru_maxrss


# Why each request a command makes is needed. A request the benchmark sees that is not in
# this table makes the "no request it does not need" budget row fail.
_LIST_DEPLOYMENTS = ("every Deployment of the namespace, in one request: is the webservice there, "
                     "and is a Deployment of another workload using its name")
WHY = {
    "status-stopped": {
        "GET deployments (list)": "is there a webservice Deployment? None: 'stopped', and nothing else to ask",
    },
    "status-running": {
        "GET deployments (list)": "the webservice Deployment: replicas, image, resources, start time",
        "GET pods (list)": "its pods: readiness, restarts, last state (crash loop, OOM, image pull)",
        "GET ingresses (list)": "the routing objects carrying the webservice's labels, for the URLs",
        "GET httproutes (list)": "the same for HTTPRoutes (the default routing): URLs and whether the "
                                 "Gateway accepted the route",
    },
    "start": {
        "GET deployments (list)": _LIST_DEPLOYMENTS,
        "GET limitranges (list)": "preflight: the cpu/memory asked for fit the namespace's LimitRange",
        "GET resourcequotas (list)": "preflight: ... and its ResourceQuota (before anything is applied)",
        "GET ingresses (list)": "routing objects of ours left by an earlier start under another name or "
                                "routing mode: deleted after the apply, so nothing stale keeps routing",
        "PATCH deployments/NAME (apply)": "server-side apply of the Deployment",
        "PATCH services/NAME (apply)": "server-side apply of the Service",
        "GET httproutes (list)": "the same for HTTPRoutes: an old Ingress of ours is deleted when the "
                                 "tool moves to HTTPRoute routing, and the other way round",
        "PATCH ingresses/NAME (apply)": "server-side apply of the Ingress (ingress routing)",
        "PATCH httproutes/NAME (apply)": "server-side apply of the HTTPRoute (the default routing)",
        "GET httproutes (watch)": "wait: the Gateway controller's status.parents, so that 'serving' means "
                                  "the route is accepted and its backend resolved",
        "GET deployments (watch)": "wait: the rollout's progress (observedGeneration, updated and ready replicas)",
        "GET replicasets (watch)": "wait: which ReplicaSet is the new revision, and its FailedCreate "
                                   "condition (quota or LimitRange refusals)",
        "GET pods (watch)": "wait: readiness and why a pod fails (crash loop, image pull, unschedulable)",
        "GET events (watch)": "wait: the reasons only events carry (FailedScheduling, FailedCreate, probe "
                              "failures); opened with the others, so a start that is ready at once may end "
                              "before it is sent",
    },
    "restart": {},  # filled below: start's, plus one
    "logs-last-100": {
        "GET pods (list)": "the webservice's pods (every replica), to read them concurrently",
        "GET pods/NAME/log": "one log read per pod, with tailLines=100 and timestamps",
    },
    "stop": {
        "GET ingresses (list)": "routing objects carrying our labels: deleted first, so visitors get "
                                "the 'not running' page at once",
        "GET httproutes (list)": "the same for HTTPRoutes (a tool may have switched routing modes)",
        "GET services (list)": "the Service carrying our labels",
        "GET deployments (list)": "the Deployment carrying our labels (deleted last)",
        "DELETE ingresses/NAME": "delete, with the listed uid as a precondition (never a look-alike)",
        "DELETE httproutes/NAME": "delete, with the listed uid as a precondition",
        "DELETE services/NAME": "delete, with the listed uid as a precondition",
        "DELETE deployments/NAME": "delete, with the listed uid as a precondition; its pods follow",
        "GET pods (list)": "the pods still there after the deletes",
        "GET pods (watch)": "wait until they are gone, so that 'stopped' is true when stop returns",
    },
}
WHY["restart"] = {**WHY["start"],
                  "GET deployments (list)": _LIST_DEPLOYMENTS + " (restart needs it running)",
                  "GET pods (list)": "the pods of the old revision, known before new ones appear, so "
                                     "that the wait can tell old from new"}


def describe(record) -> str:
    """A request as "VERB resource" without the tool's names: ``GET pods (list)``,
    ``PATCH deployments/NAME (apply)``, ``GET events (watch)``."""
    parts = record.path.strip("/").split("/")
    if "namespaces" in parts:
        parts = parts[parts.index("namespaces") + 2:]
    else:
        parts = parts[-2:]
    resource = parts[0] if parts else record.path
    if len(parts) > 1:
        resource += "/NAME" + "".join("/" + sub for sub in parts[2:])
    how = ""
    if record.query.get("watch") in ("true", "1"):
        how = " (watch)"
    elif record.method == "GET" and len(parts) == 1:
        how = " (list)"
    elif record.method == "PATCH" and "apply-patch" in (record.content_type or ""):
        how = " (apply)"
    return f"{record.method} {resource}{how}"


def summarise(values: list[float]) -> dict:
    values = sorted(values)
    return {
        "median": statistics.median(values),
        "min": values[0],
        "max": values[-1],
        "stdev": statistics.pstdev(values) if len(values) > 1 else 0.0,
        "runs": len(values),
    }


class Bench:
    def __init__(self, runs: int):
        from tests.standin.cluster import StandIn
        from tests.standin.fixtures import WsEnv

        self.runs = runs
        self.tmp = tempfile.mkdtemp(prefix="webservice-bench-")
        self.standin = StandIn(directory=os.path.join(self.tmp, "standin")).start()
        self.standin.time_scale = 0.0
        self.world = WsEnv(self.standin, os.path.join(self.tmp, "tool"))
        app = Path(self.world.home, "www", "python", "src", "app.py")
        app.parent.mkdir(parents=True)
        app.write_text("def app(environ, start_response):\n    start_response('200 OK', [])\n    return [b'ok']\n")
        self.rows: list[dict] = []

    def close(self):
        self.standin.stop()

    def env_for(self, venv: Path, extra: dict | None = None) -> dict:
        env = dict(self.world.env)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # a package install has its .pyc files
        env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
        env.update(extra or {})
        return env

    def run_case(self, env_name, venv, case, args, *, extra_env=None, before=None, ready_clock=None):
        argv = [str(venv / "bin" / "webservice"), *args]
        env = self.env_for(venv, extra_env)
        walls, rss, requests, overheads = [], [], [], []
        seen_requests: dict[str, int] = {}
        Proc(argv, env, self.world.home)  # warm-up: caches, .pyc, catalogue
        for _ in range(self.runs):
            if before:
                before()
            self.standin.clear_requests()
            watcher = ready_clock() if ready_clock else None
            run = Proc(argv, env, self.world.home)
            if run.code not in case.get("codes", (0,)):
                raise SystemExit(f"bench: {case['name']} exited {run.code}: {run.err.strip()[-500:]}")
            walls.append(run.wall)
            rss.append(run.maxrss_kb)
            requests.append(len(self.standin.requests))
            for record in list(self.standin.requests):
                seen_requests.setdefault(describe(record), 0)
                seen_requests[describe(record)] += 1
            if watcher is not None:
                ready_at = watcher()
                if ready_at is not None:
                    overheads.append(run.ended - ready_at)
        row = {"env": env_name, "case": case["name"], "command": "webservice " + " ".join(args),
               "wall": summarise(walls), "peak_rss_kb": max(rss), "requests": statistics.median(requests),
               "requests_range": [min(requests), max(requests)],
               "request_kinds": {kind: round(count / self.runs, 2) for kind, count in sorted(seen_requests.items())}}
        if overheads:
            row["after_ready"] = summarise(overheads)
        self.rows.append(row)
        log(f"bench: {env_name:8} {case['name']:16} median {row['wall']['median']*1000:7.1f} ms, "
            f"{row['requests']:.0f} requests")
        return row

    # --- helpers around the stand-in ---------------------------------------------------

    def wsrun(self, venv, *args):
        done = subprocess.run([str(venv / "bin" / "webservice"), *args], env=self.env_for(venv),
                              cwd=self.world.home, capture_output=True, text=True, timeout=120)
        if done.returncode not in (0, 3, 6):
            raise SystemExit(f"bench: setup 'webservice {' '.join(args)}' failed: {done.stderr.strip()}")

    def ready_clock(self):
        """Watch the stand-in's store; return a function giving when all pods were Ready."""
        seen = {"at": None}
        stop = threading.Event()
        namespace = f"tool-{self.world.tool}"

        def poll():
            while not stop.is_set():
                deployments = self.standin.objects("Deployment", namespace)
                pods = [p for p in self.standin.objects("Pod", namespace)
                        if p["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "web"
                        and not p["metadata"].get("deletionTimestamp")]
                want = deployments[0]["spec"].get("replicas", 1) if deployments else None
                ready = [p for p in pods if any(c.get("type") == "Ready" and c.get("status") == "True"
                                                 for c in p.get("status", {}).get("conditions", []))]
                if want and len(ready) >= want and len(pods) == want:
                    if seen["at"] is None:
                        seen["at"] = time.perf_counter()
                else:
                    seen["at"] = None
                time.sleep(0.0005)

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()

        def finish():
            stop.set()
            thread.join()
            return seen["at"]

        return finish

    # --- floors ---------------------------------------------------------------------------

    def floor_interpreter(self, venv) -> dict:
        walls = [Proc([str(venv / "bin" / "python"), "-c", "pass"], self.env_for(venv), self.world.home).wall
                 for _ in range(self.runs)]
        return summarise(walls)

    def floor_requests(self, venv, count: int) -> dict:
        cert, key = self.standin.client_cert(self.world.tool)
        script = (
            "import http.client, ssl, sys\n"
            "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.load_verify_locations(sys.argv[1])\n"
            "ctx.load_cert_chain(sys.argv[2], sys.argv[3])\n"
            "host, port = sys.argv[4].split('//')[1].split(':')\n"
            "conn = http.client.HTTPSConnection(host, int(port), context=ctx)\n"
            "for _ in range(int(sys.argv[5])):\n"
            "    conn.request('GET', '/api/v1/namespaces/tool-%s/pods' % sys.argv[6]); conn.getresponse().read()\n"
        )
        argv = [str(venv / "bin" / "python"), "-c", script, self.standin.ca_file, cert, key,
                self.standin.url, str(count), self.world.tool]
        walls = [Proc(argv, self.env_for(venv), self.world.home).wall for _ in range(self.runs)]
        return summarise(walls)

    def imports_kubernetes(self, venv, args, extra_env=None) -> bool:
        env = self.env_for(venv, extra_env)
        done = subprocess.run([str(venv / "bin" / "python"), "-X", "importtime", "-c",
                               "import sys; from webservice.ui.cli import main; sys.argv[0]='webservice'; main()", *args],
                              env=env, cwd=self.world.home, capture_output=True, text=True)
        names = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines()
                 if line.startswith("import time:")}
        return "kubernetes" in names


COMPLETE_ENV = {"_WEBSERVICE_COMPLETE": "bash_complete", "COMP_WORDS": "webservice st", "COMP_CWORD": "1"}


def bench_env(bench: Bench, env_name: str, venv: Path) -> dict:
    floors = {"interpreter": bench.floor_interpreter(venv)}
    fast = [
        ({"name": "help"}, ["--help"], None),
        ({"name": "complete"}, [], COMPLETE_ENV),
        ({"name": "dry-run"}, ["--dry-run", "python3.11", "start"], None),
    ]
    for case, args, extra in fast:
        row = bench.run_case(env_name, venv, case, args, extra_env=extra)
        row["imports_kubernetes"] = bench.imports_kubernetes(venv, args, extra)

    def stopped():
        bench.wsrun(venv, "stop")

    def running():
        bench.wsrun(venv, "python3.11", "start")

    def running_with_logs():
        running()
        namespace = f"tool-{bench.world.tool}"
        for pod in bench.standin.objects("Pod", namespace):
            for number in range(150):
                bench.standin.append_log(namespace, pod["metadata"]["name"], f"line {number}")

    stopped()
    bench.run_case(env_name, venv, {"name": "status-stopped", "codes": (3,)}, ["status"])
    bench.run_case(env_name, venv, {"name": "start"}, ["python3.11", "start"], before=stopped,
                   ready_clock=bench.ready_clock)
    bench.run_case(env_name, venv, {"name": "status-running"}, ["status"], before=None)
    bench.run_case(env_name, venv, {"name": "restart"}, ["restart"], before=running)
    bench.run_case(env_name, venv, {"name": "logs-last-100"}, ["logs", "--last", "100"], before=running_with_logs)
    bench.run_case(env_name, venv, {"name": "stop"}, ["stop"], before=running)
    counts = sorted({int(r["requests"]) for r in bench.rows if r["env"] == env_name and r["requests"]})
    floors["requests"] = {str(n): bench.floor_requests(venv, n) for n in counts}
    return floors


def budgets(rows: list[dict], floors: dict) -> list[dict]:
    out = []
    for row in rows:
        limit = None
        if row["case"] in BUDGETS:
            limit = BUDGETS[row["case"]]
            met = row["wall"]["median"] <= limit and not row.get("imports_kubernetes")
            what = f"median <= {limit:.2f} s, no kubernetes import"
        elif row["case"].startswith("status") and row["env"] == "bookworm":
            limit = STATUS_BUDGET
            met = row["wall"]["median"] <= limit
            what = f"median <= {limit:.2f} s (bookworm libraries)"
        elif row["case"] == "start" and "after_ready" in row:
            limit = START_OVERHEAD_BUDGET
            met = row["after_ready"]["median"] <= limit
            what = f"exit <= {limit:.2f} s after pods Ready"
        else:
            continue
        measured = row["after_ready"]["median"] if row["case"] == "start" else row["wall"]["median"]
        out.append({"env": row["env"], "case": row["case"], "budget": what, "measured": measured,
                    "floor": floors[row["env"]]["interpreter"]["median"], "met": bool(met)})
    for row in rows:
        unjustified = sorted(set(row.get("request_kinds", {})) - set(WHY.get(row["case"], {})))
        out.append({"env": row["env"], "case": row["case"], "measured": None,
                    "budget": "no request it does not need" + (
                        f" (unjustified: {', '.join(unjustified)})" if unjustified else ""),
                    "floor": floors[row["env"]]["interpreter"]["median"], "met": not unjustified})
    return out


def markdown(result: dict) -> str:
    lines = [
        f"# webservice benchmark ({result['date']}, {result['machine']})",
        "",
        f"{result['runs']} runs per case, whole processes, stand-in time scale 0. "
        "Floor: a bare interpreter start; requests floor: the same number of HTTPS requests "
        "from a minimal client in a fresh interpreter.",
        "",
        "The ratio is the median over its floor: the requests floor where the command makes "
        "requests, else the bare interpreter.",
        "",
        "| env | case | median ms | min-max ms | requests | requests floor ms | ratio to floor | peak RSS MiB | notes |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in result["rows"]:
        floor = result["floors"][row["env"]]["requests"].get(str(int(row["requests"])))
        base = (floor or result["floors"][row["env"]]["interpreter"])["median"]
        ratio = f"{row['wall']['median'] / base:.1f}x"
        notes = []
        if "imports_kubernetes" in row:
            notes.append("imports kubernetes" if row["imports_kubernetes"] else "no kubernetes import")
        if "after_ready" in row:
            notes.append(f"exit {row['after_ready']['median']*1000:.0f} ms after pods Ready")
        floor_ms = f"{floor['median']*1000:.1f}" if floor else "-"
        lines.append(
            f"| {row['env']} | {row['case']} | {row['wall']['median']*1000:.1f} | "
            f"{row['wall']['min']*1000:.0f}-{row['wall']['max']*1000:.0f} | {row['requests']:.0f} | {floor_ms} | "
            f"{ratio} | {row['peak_rss_kb']/1024:.1f} | {'; '.join(notes)} |"
        )
    lines += ["", "| budget | env | case | measured ms | interpreter floor ms | met |",
              "| --- | --- | --- | ---: | ---: | --- |"]
    for b in result["budgets"]:
        measured = f"{b['measured']*1000:.1f}" if b["measured"] is not None else "-"
        lines.append(f"| {b['budget']} | {b['env']} | {b['case']} | {measured} | "
                     f"{b['floor']*1000:.1f} | {'met' if b['met'] else 'NOT MET'} |")
    lines += ["", "## The requests each command makes, and why", "",
              "Per run (the average over the runs, when it varies); `NAME` is the tool's name.", "",
              "| env | case | requests per run | request | per run | why |",
              "| --- | --- | --- | --- | ---: | --- |"]
    for row in result["rows"]:
        low, high = row.get("requests_range", [row["requests"]] * 2)
        total = f"{low:.0f}" if low == high else f"{low:.0f}-{high:.0f}"
        for kind, per_run in row.get("request_kinds", {}).items():
            why = WHY.get(row["case"], {}).get(kind, "**not justified**")
            lines.append(f"| {row['env']} | {row['case']} | {total} | `{kind}` | {per_run:g} | {why} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--envs", default="pypi,bookworm")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    options = parser.parse_args()
    bench = Bench(options.runs)
    floors = {}
    try:
        for name in options.envs.split(","):
            venv = make_env(name, ENVS[name])
            floors[name] = bench_env(bench, name, venv)
    finally:
        bench.close()
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}",
        "runs": options.runs,
        "rows": bench.rows,
        "floors": floors,
    }
    result["budgets"] = budgets(bench.rows, floors)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (out / "results.md").write_text(text)
    print(text)
    return 0 if all(b["met"] for b in result["budgets"]) else 1


if __name__ == "__main__":
    sys.exit(main())
