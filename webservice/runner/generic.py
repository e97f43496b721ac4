"""``generic``: the extra arguments are the command, run in the tool home with ``PORT`` set.

A program name without a slash is looked up on ``PATH``; a relative path is taken from
the tool home. The server must listen on ``$PORT``; in legacy-path mode it gets
``WEBSERVICE_PATH_PREFIX=/<tool>`` and must serve under ``/<tool>/`` and redirect a bare
``/<tool>`` to ``/<tool>/`` itself.
"""

from __future__ import annotations

import os

from webservice.runner.context import Context, Launch, RunnerError


def prepare(ctx: Context) -> Launch:
    if not ctx.extra_args:
        raise RunnerError("the generic type needs a command: give it as extra arguments (e.g. webservice-runner --type generic --port 8000 ./start.sh)")
    program, *args = ctx.extra_args
    if "/" in program:
        path = os.path.normpath(os.path.join(ctx.home, program))
        if not os.path.isfile(path):
            raise RunnerError(f"{path} not found: create it or fix the command in the extra arguments")
        if not os.access(path, os.X_OK):
            raise RunnerError(f"{path} is not executable: chmod +x it")
    else:
        found = ctx.which(program)
        if not found:
            raise RunnerError(f"{program} not found on PATH: fix the command in the extra arguments")
        path = found
    return Launch(argv=[path, *args], cwd=ctx.home, env=ctx.child_env(), description=f"{' '.join(ctx.extra_args)} in {ctx.home}")
