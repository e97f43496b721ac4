"""``nodejs`` (``js``) through webservice-runner: ``npm start`` with a real Node.js."""

from __future__ import annotations

import json

import pytest

from tests.runner import support
from tests.runner.support import get

SERVER_JS = """\
const http = require("http");
const port = parseInt(process.env.PORT, 10);
http.createServer((req, res) => {
  console.log("node request " + req.url);
  console.error("node stderr " + req.url);
  res.setHeader("Content-Type", "text/plain");
  res.end("node port=" + process.env.PORT + " url=" + req.url + " argv=" + process.argv.slice(2).join(",") + "\\n");
}).listen(port, "127.0.0.1", () => console.log("node listening on " + port));
"""


@pytest.fixture
def js_home(home):
    support.require("node", "npm")
    app = home / "www" / "js"
    app.mkdir(parents=True)
    (app / "package.json").write_text(json.dumps({"name": "mytool", "version": "1.0.0", "private": True, "scripts": {"start": "node server.js"}}))
    (app / "server.js").write_text(SERVER_JS)
    return home


@pytest.mark.parametrize("type_name", ["nodejs", "js"])
def test_node_app_answers_with_its_port(js_home, servers, type_name):
    server = servers.runner(["--type", type_name], js_home)
    r = get(server.port, "/some/path?q=1")
    assert r.status == 200, r
    assert r.text == f"node port={server.port} url=/some/path?q=1 argv=\n"
    server.wait_output(f"node listening on {server.port}", stream="stdout")
    server.wait_output("node request /some/path?q=1", stream="stdout")
    server.wait_output("node stderr /some/path?q=1", stream="stderr")
    # npm runs "sh -c 'node server.js'": on SIGTERM the shell goes and node would be
    # orphaned; the runner must stop node too
    code = server.stop()
    assert server.stop_seconds < 5, server.stop_seconds
    assert code in (0, 143), server.output()


def test_extra_args_reach_the_start_script(js_home, servers):
    server = servers.runner(["--type", "js", "--", "--flag", "two"], js_home)
    assert get(server.port, "/").text.endswith("argv=--flag,two\n")
    server.stop()


def test_server_js_without_start_script(js_home, servers):
    (js_home / "www" / "js" / "package.json").write_text('{"name": "mytool", "version": "1.0.0"}')
    server = servers.runner(["--type", "js"], js_home)
    assert get(server.port, "/x").status == 200
    server.stop()
