"""Real lighttpd with the kinds of ``~/.lighttpd.conf`` real tools have (tests/data/runner/
lighttpd): settings the generated configuration also makes (the tool's win), a copy of
the old launcher's whole configuration, compression, and a file lighttpd refuses."""

from __future__ import annotations

import gzip
import http.client
import re
from pathlib import Path

import pytest

from tests.runner import support
from tests.runner.support import get
from webservice.runner import lighttpd, lighttpd_conf
from webservice.runner.context import Context

DATA = Path(__file__).resolve().parent.parent / "data" / "runner" / "lighttpd"


def install_conf(home: Path, name: str, runtime: Path | None = None) -> str:
    text = (DATA / name).read_text().replace("@HOME@", str(home)).replace("@RUNTIME@", str(runtime or home))
    (home / ".lighttpd.conf").write_text(text)
    return text


@pytest.fixture
def site(home):
    support.require("lighttpd", "php-cgi")
    (home / "public_html").mkdir()
    (home / "public_html" / "index.php").write_text('<?php echo "php ", 6 * 7, "\\n";')
    (home / "public_html" / "index.html").write_text("<p>index.html</p>\n")
    (home / "public_html" / "start.html").write_text("<p>start page</p>\n")
    (home / "public_html" / "notes.md").write_text("# notes\n")
    (home / "public_html" / "LICENSE").write_text("no suffix\n")
    return home


# ----------------------------------------------------------------------------- scan


def test_scan_finds_global_assignments_and_extended_array_keys():
    settings = lighttpd_conf.scan(
        '# server.port = 1 in a comment\n'
        'server.errorlog = "/x # not a comment"\n'
        '$HTTP["host"] == "a" { index-file.names = ( "a" ) mimetype.assign += ( ".a" => "x/a" ) }\n'
        'else $HTTP["url"] =~ "^/b" {\n  accesslog.filename = "/b"\n}\n'
        'mimetype.assign += ( "" => "text/plain", ".x" => "y", "k" + "v" => "z" )\n'
        'server.modules += ( "mod_status" )\n'
        'var.dir = "/x"\nserver.port := 80\n'
    )
    assert settings.assigned == {"server.errorlog": 2, "var.dir": 9, "server.port": 10}
    assert settings.extended == {"mimetype.assign": {".a", "", ".x"}, "server.modules": set()}
    assert settings.lines["accesslog.filename"] == 5 and settings.lines["index-file.names"] == 3


@pytest.mark.parametrize("text", ['x = "unterminated\n', "}}}{ = = += (", "mimetype.assign += (", ""])
def test_scan_never_raises_on_what_lighttpd_would_refuse(text):
    assert isinstance(lighttpd_conf.scan(text), lighttpd_conf.Settings)


def render(tmp_path, user_conf, modules_dir="/usr/lib/lighttpd", prefix=None):
    ctx = Context(type="lighttpd", port=8123, home=str(tmp_path), tool="mytool", prefix=prefix, bind="127.0.0.1", runtime_dir=str(tmp_path / "rt"))
    return lighttpd.render_config(ctx, php=True, docroot=str(tmp_path / "public_html"), php_cgi="/usr/bin/php-cgi", user_conf=user_conf,
                                  log_fd=3, cat="/bin/cat", modules_dir=modules_dir)


def test_keys_the_tool_sets_are_left_out_of_the_generated_part(tmp_path):
    conf = render(tmp_path, 'accesslog.filename = "/x"\nindex-file.names = ( "a" )\nmimetype.assign += ( "" => "text/plain" )\n'
                            'fastcgi.server += ( ".php" => (( "socket" => "/s", "bin-path" => "/p" )) )\n')
    generated = conf.split(lighttpd.USER_MARK)[0]
    assert "accesslog.filename =" not in generated and "index-file.names =" not in generated
    assert "# accesslog.filename: set in ~/.lighttpd.conf (line 1)" in generated
    assert '"" =>' not in generated and '".css" =>' in generated  # only the colliding entry goes
    assert "fastcgi.server" not in generated


def test_runner_keys_and_modules_are_restored_after_a_full_copy(tmp_path):
    conf = render(tmp_path, 'server.modules = ( "mod_access" )\nserver.port = 8000\nserver.bind = "0.0.0.0"\n')
    tail = conf.split(lighttpd.USER_MARK)[-1]
    assert tail.startswith("end of ~/.lighttpd.conf")
    assert 'server.modules += ( "mod_setenv",' in tail and "server.port := 8123" in tail and 'server.bind := "127.0.0.1"' in tail


def test_mod_deflate_is_loaded_only_where_it_is_installed(tmp_path):
    assert '"mod_deflate"' not in render(tmp_path, None, modules_dir=str(tmp_path))
    (tmp_path / "mod_deflate.so").write_text("")
    assert '"mod_deflate"' in render(tmp_path, None, modules_dir=str(tmp_path))


# ----------------------------------------------------------------------------- real lighttpd


def test_a_conf_setting_what_the_runner_sets_is_accepted_and_wins(site, servers):
    install_conf(site, "duplicates.conf")
    server = servers.runner(["--type", "lighttpd"], site)
    r = get(server.port, "/")
    assert r.status == 200 and r.text == "<p>start page</p>\n", r  # the tool's index-file.names
    r = get(server.port, "/LICENSE")
    assert r.headers["content-type"] == "text/plain; charset=utf-8", r  # the tool's catch-all
    assert get(server.port, "/notes.md").headers["content-type"] == "text/markdown; charset=utf-8"
    assert get(server.port, "/index.php").text == "php 42\n"
    assert get(server.port, "/server-status").status == 200  # a module the tool added
    assert get(server.port, "/pretty/x").text == "<p>start page</p>\n"
    assert get(server.port, "/index.html").headers["content-type"].startswith("text/html")
    server.stop()
    # the tool's own log files got the access log and lighttpd's messages
    assert "GET /LICENSE" in (site / "access.log").read_text()
    assert "server started" in (site / "error.log").read_text()


def test_a_full_copy_of_the_old_generated_config_runs_on_the_runners_port(site, servers, tmp_path):
    install_conf(site, "full-copy.conf", runtime=tmp_path)
    server = servers.runner(["--type", "lighttpd"], site)  # on a free port, not the file's 8000
    assert get(server.port, "/").text == "php 42\n"
    assert get(server.port, "/index.html").headers["content-type"] == "text/html"  # the tool's table
    assert (tmp_path / "own-php.socket-0").exists() or (tmp_path / "own-php.socket").exists()  # the tool's fastcgi.server
    server.stop()


def test_compress_settings_work(site, servers):
    support.require("mod_deflate")
    install_conf(site, "compress.conf")
    (site / ".cache" / "lighttpd").mkdir(parents=True)
    big = "a line of text that compresses well\n" * 200
    (site / "public_html" / "big.txt").write_text(big)
    server = servers.runner(["--type", "lighttpd"], site)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/big.txt", headers={"Accept-Encoding": "gzip"})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    assert r.status == 200 and r.getheader("Content-Encoding") == "gzip" and r.getheader("Cache-Control") == "max-age=60"
    assert gzip.decompress(body).decode() == big
    assert "DEPRECATED" in server.stderr or "compress" not in server.stderr  # lighttpd's notes only
    server.stop()


def test_a_refused_conf_names_its_line_and_keeps_the_generated_config(site):
    install_conf(site, "refused.conf")
    result = support.run_runner(["--type", "lighttpd", "--port", str(support.free_port()), "--bind", "127.0.0.1"], site, timeout=20)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"{site}/.lighttpd.conf line 3: url.rewrite-once += ( \"/kategorie\")\" => \"/cat.php\" )" in lines[0]
    kept = re.search(r"kept in (\S+)$", lines[0]).group(1)
    text = Path(kept).read_text()
    assert "Generated by webservice-runner" in text and '"/kategorie")"' in text
    import shutil

    shutil.rmtree(Path(kept).parent)


def test_a_duplicate_within_the_tools_own_file_is_named(site):
    (site / ".lighttpd.conf").write_text('# two of them\nserver.errorlog = "/tmp/a"\nserver.errorlog = "/tmp/b"\n')
    result = support.run_runner(["--type", "lighttpd", "--port", str(support.free_port())], site, timeout=20)
    assert result.returncode == 2
    assert f'{site}/.lighttpd.conf line 2: server.errorlog = "/tmp/a"' in result.stderr and "Duplicate config variable" in result.stderr
    import shutil

    shutil.rmtree(Path(re.search(r"kept in (\S+)$", result.stderr.strip()).group(1)).parent)


# ----------------------------------------------------------------------------- bin-path


@pytest.mark.parametrize("value,why", [
    ("@HOME@/missing.fcgi", "does not exist: fix the path"),
    ("@HOME@/notexec.fcgi", "is not an executable file: chmod +x it"),
    ("APP_BASE_HREF=/x/ @HOME@/app.fcgi", 'APP_BASE_HREF= is not an environment setting: move it to "bin-environment"'),
])
def test_a_fastcgi_program_lighttpd_cannot_start_is_named_with_its_line(site, value, why):
    (site / "notexec.fcgi").write_text("#!/bin/sh\n")
    (site / "app.fcgi").write_text("#!/bin/sh\n")
    (site / "app.fcgi").chmod(0o755)
    value = value.replace("@HOME@", str(site))
    (site / ".lighttpd.conf").write_text(
        '# "bin-path" => "/commented/out"\n'
        f'fastcgi.server += ( "/app" => ((\n  "socket" => "/tmp/app.sock",\n  "bin-path" => "{value}",\n)) )\n')
    result = support.run_runner(["--type", "lighttpd", "--port", str(support.free_port())], site, timeout=20)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"webservice-runner: error: {site}/.lighttpd.conf line 4: \"bin-path\" => \"{value}\""), lines
    assert why in lines[0], lines


def test_an_executable_fastcgi_program_is_started(site, servers):
    (site / "app.fcgi").write_text(f"#!/bin/sh\nexec {support.which('php-cgi')}\n")
    (site / "app.fcgi").chmod(0o755)
    (site / ".lighttpd.conf").write_text(
        f'fastcgi.server += ( "/app" => (( "socket" => "{site}/app.sock", "bin-path" => "{site}/app.fcgi", "check-local" => "disable" )) )\n')
    server = servers.runner(["--type", "lighttpd"], site)
    assert get(server.port, "/").text == "php 42\n"
    assert get(server.port, "/app").status in (200, 404)  # php-cgi answers (no such script)
    server.stop()


def test_username_lighttpd_cannot_find_is_named_with_its_line(tmp_path):
    text = 'server.port = 8000\nserver.groupname = "${USER}"\n'
    conf = render(tmp_path, text)
    stderr = "2026-01-01 00:00:00: (server.c.1234) can't find groupname ${USER}\n"
    message = lighttpd.explain_refusal(stderr, conf, "/rt/lighttpd.conf", "~/.lighttpd.conf")
    assert message.startswith('lighttpd refused ~/.lighttpd.conf line 2: server.groupname = "${USER}"'), message
