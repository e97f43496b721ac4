"""``nodejs`` (alias ``js``): ``npm start`` in ``~/www/js`` with ``PORT`` set.

Needs ``~/www/js/package.json`` with a ``start`` script (or a ``server.js``, which is
what ``npm start`` runs without one). Extra arguments are passed to the start script
(``npm start -- ARGS``). In legacy-path mode the app gets ``WEBSERVICE_PATH_PREFIX=/<tool>``
and must itself serve under ``/<tool>/`` and redirect a bare ``/<tool>`` to ``/<tool>/``
(keeping the query string): the runner does not sit in the request path.
"""

from __future__ import annotations

import json
import os

from webservice.runner.context import Context, Launch, RunnerError, missing


def prepare(ctx: Context) -> Launch:
    appdir = ctx.path("www", "js")
    package = os.path.join(appdir, "package.json")
    if not os.path.isfile(package):
        raise missing(package, 'create it with a "start" script, e.g. {"scripts": {"start": "node server.js"}}')
    try:
        with open(package, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as error:
        raise RunnerError(f"{package} is not valid JSON: {error}") from None
    scripts = data.get("scripts") if isinstance(data, dict) else None
    start = scripts.get("start") if isinstance(scripts, dict) else None
    if not (isinstance(start, str) and start.strip()) and not os.path.isfile(os.path.join(appdir, "server.js")):
        raise RunnerError(f'{package} has no "start" script (and there is no server.js): add "scripts": {{"start": "node server.js"}}')
    npm = ctx.need_program("npm", "this image has no npm; use a Node.js type")
    argv = [npm, "start"]
    if ctx.extra_args:
        argv += ["--", *ctx.extra_args]
    env = ctx.child_env()
    env.setdefault("NPM_CONFIG_UPDATE_NOTIFIER", "false")  # no registry lookups at start
    env.setdefault("NPM_CONFIG_FUND", "false")
    return Launch(argv=argv, cwd=appdir, env=env, description=f"npm start in {appdir}")
