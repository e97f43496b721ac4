"""``lighttpd`` (PHP through FastCGI php-cgi) and ``lighttpd-plain``.

Layout: document root ``~/public_html``; ``~/.lighttpd.conf`` is appended to the
generated configuration. One of them must exist.

The generated configuration sets the keys the old Toolforge launcher set (so that a
``.lighttpd.conf`` written for it, which had to extend them with ``+=``, still works)
and no other global key: setting a key twice with ``=`` is a lighttpd error, so every
key that configuration did not set stays free for the tool's own ``=``. The legacy-path
redirect lives in a conditional block for the same reason.

Output: lighttpd in the foreground (``-D``) writes its error log to stderr when
``server.errorlog`` is unset, and FastCGI stderr (PHP's ``error_log()``, warnings) goes
to that error log. The access log goes to the runner's stdout through a piped logger
(``|exec cat >&N``, N a duplicate of the runner's stdout that lighttpd inherits): lighttpd
points its own stdout at /dev/null, buffers access logs written to files for seconds,
and a non-root user cannot reopen a pipe owned by another user through /dev/stdout.

The runner turns SIGTERM into SIGINT, lighttpd's graceful shutdown.

lighttpd runs as whoever starts it: the tool user in the container. ``server.username``
is never set (it needs root, and as root, in tests, there is nothing to drop to).
"""

from __future__ import annotations

import mimetypes
import os
import re
import signal

from webservice.runner import lighttpd_conf
from webservice.runner.context import Context, Launch, RunnerError, missing

MODULES = (
    "mod_setenv",
    "mod_access",
    "mod_accesslog",
    "mod_alias",
    "mod_deflate",  # 0.98 loaded mod_compress; since lighttpd 1.4.56 that name is mod_deflate
    "mod_redirect",
    "mod_rewrite",
    "mod_fastcgi",
    "mod_cgi",
)
# lighttpd's compiled-in server.modules-dir on Debian; mod_deflate is a package of its own
# there (lighttpd-mod-deflate), so it is loaded only where it is installed
MODULES_DIR = "/usr/lib/lighttpd"
OPTIONAL_MODULES = {"mod_deflate": "lighttpd-mod-deflate"}
# keys the runner must own: the container's port is the Service's target
RUNNER_KEYS = ("server.port", "server.bind")
USER_MARK = "# ---- "


def quote(value: str) -> str:
    """A lighttpd string literal; refuse what its parser could misread."""
    if any(c in value for c in '"\\\n\r\0'):
        raise RunnerError(f"cannot use {value!r} in a lighttpd configuration (quote, backslash or newline)")
    return f'"{value}"'


def mimetypes_table() -> dict[str, str]:
    """Suffix -> type from the system's mime.types (Debian's lighttpd.conf does the same
    with a Perl script); text types get ``charset=utf-8``; ``""`` is the catch-all."""
    db = mimetypes.MimeTypes()
    for path in ("/etc/mime.types",):
        if os.path.exists(path):
            db.read(path)
    types = {}
    for ext, mime in db.types_map[1].items():  # lighttpd compares suffixes without case
        types.setdefault(ext.lower(), mime)
    types.update({".mjs": "text/javascript", ".json": "application/json", ".wasm": "application/wasm"})
    types.pop(".php", None)
    table = {}
    for ext, mime in sorted(types.items()):
        if not re.match(r"^\.[A-Za-z0-9_.+-]+$", ext) or not re.match(r"^[A-Za-z0-9.+/_-]+$", mime):
            continue
        if mime.startswith("text/") or mime in ("application/javascript", "application/json", "image/svg+xml"):
            mime += ";charset=utf-8"
        table[ext] = mime
    table[""] = "application/octet-stream"
    return table


def _array(key: str, entries: dict[str, str], indent: str = "  ") -> str:
    """``key = ( "k" => v, ... )``, values already rendered."""
    if len(entries) == 1 and "\n" not in next(iter(entries.values())):
        (k, v), = entries.items()
        return f"{key} = ( {quote(k)} => {v} )"
    body = "\n".join(f"{indent}{quote(k)} => {v}," for k, v in entries.items())
    return f"{key} = (\n{body}\n)"


def _available(module: str, modules_dir: str) -> bool:
    return module not in OPTIONAL_MODULES or os.path.exists(os.path.join(modules_dir, f"{module}.so"))


def render_config(
    ctx: Context, *, php: bool, docroot: str, php_cgi: str | None, user_conf: str | None, log_fd: int | None, cat: str | None,
    modules_dir: str = MODULES_DIR,
) -> str:
    """The generated configuration, with ``user_conf`` appended.

    Every key the tool's file sets with ``=`` outside a conditional is left out (the
    tool's value wins), and so is every array entry the file adds with ``+=``:
    lighttpd would refuse the duplicate. The modules are the exception: they are added
    after the tool's file (``+=``, duplicates are harmless) when the file sets
    ``server.modules`` itself; ``server.port`` and ``server.bind`` are set after it with
    ``:=`` (the runner's port is the one the Service sends traffic to).
    """
    user = lighttpd_conf.scan(user_conf or "")
    runtime = ctx.runtime_dir or ""
    tool = re.sub(r"[^A-Za-z0-9._-]", "?", ctx.tool)  # it is only shown in a comment
    modules = [m for m in MODULES if _available(m, modules_dir)]
    settings: list[tuple[str, str]] = [  # (key, the whole statement)
        ("server.modules", "server.modules = (\n" + "".join(f"  {quote(m)},\n" for m in modules) + ")"),
        ("server.port", f"server.port = {ctx.port}"),
    ]
    if ctx.bind:
        settings.append(("server.bind", f"server.bind = {quote(ctx.bind)}"))
    settings += [
        ("server.document-root", f"server.document-root = {quote(docroot)}"),
        ("server.follow-symlink", 'server.follow-symlink = "enable"'),
        ("server.stat-cache-engine", 'server.stat-cache-engine = "simple"'),
        ("server.upload-dirs", f"server.upload-dirs = ( {quote(runtime)} )"),
        ("index-file.names", 'index-file.names = ( "index.php", "index.html", "index.htm" )' if php else 'index-file.names = ( "index.html", "index.htm" )'),
        ("url.access-deny", 'url.access-deny = ( "~", ".inc" )'),
        ("static-file.exclude-extensions", 'static-file.exclude-extensions = ( ".php", ".pl", ".fcgi" )'),
        ("accesslog.use-syslog", 'accesslog.use-syslog = "disable"'),
    ]
    if "mod_deflate" in modules:
        # what mod_compress did by default: without it lighttpd 1.4.69's mod_deflate
        # compresses nothing, whatever compress.filetype / deflate.mimetypes say
        settings.append(("deflate.allowed-encodings", 'deflate.allowed-encodings = ( "gzip", "deflate" )'))
    if log_fd is not None and cat:
        # a piped logger writing to the runner's stdout, inherited as fd N: unbuffered,
        # and it works for any user (see Context.output_fd)
        settings.append(("accesslog.filename", f'accesslog.filename = "|exec {cat} >&{log_fd}"'))
    arrays = {
        "cgi.assign": {".pl": quote("/usr/bin/perl"), ".py": quote("/usr/bin/python3")},
        "mimetype.assign": {ext: quote(mime) for ext, mime in mimetypes_table().items()},
    }
    if ctx.prefix:
        arrays["alias.url"] = {ctx.prefix + "/": quote(docroot.rstrip("/") + "/")}
    if php and php_cgi:
        arrays["fastcgi.server"] = {
            ".php": "((\n"
            f"    \"bin-path\" => {quote(php_cgi)},\n"
            f"    \"socket\" => {quote(os.path.join(runtime, 'php.socket'))},\n"
            '    "max-procs" => 2,\n'
            '    "bin-environment" => ( "PHP_FCGI_CHILDREN" => "2", "PHP_FCGI_MAX_REQUESTS" => "500" ),\n'
            '    "broken-scriptfilename" => "enable",\n'
            "  ))",  # the whole environment is passed to PHP (getenv('PORT'), the tool's envvars)
        }
    for key, entries in arrays.items():
        entries = {k: v for k, v in entries.items() if k not in user.extended.get(key, ())}
        if entries:
            settings.append((key, _array(key, entries)))
    out = [
        f"# Generated by webservice-runner for the tool {tool}: type {ctx.type}, port {ctx.port}",
        f"# prefix {ctx.prefix or '(none)'}; {'~/.lighttpd.conf is appended at the end' if user_conf is not None else 'no ~/.lighttpd.conf'}.",
    ]
    for key, statement in settings:
        if user.sets(key):
            out.append(f"# {key}: set in ~/.lighttpd.conf (line {user.assigned[key]})")
        else:
            out.append(statement)
    if ctx.prefix:
        out += [
            f"# legacy path routing: the site under {ctx.prefix}/ and {ctx.prefix} redirected there",
            f'$HTTP["url"] == {quote(ctx.prefix)} {{',
            f"  url.redirect = ( \"\" => {quote(ctx.prefix + '/${qsa}')} )",
            "  url.redirect-code = 302",
            "}",
        ]
    text = "\n".join(out) + "\n"
    if user_conf is not None:
        text += f"\n{USER_MARK}{ctx.path('.lighttpd.conf')} ----\n" + user_conf
        if not user_conf.endswith("\n"):
            text += "\n"
        after = []
        if user.sets("server.modules"):
            after.append("server.modules += ( " + ", ".join(quote(m) for m in modules) + " )")
        for key in RUNNER_KEYS:
            if user.sets(key) and key == "server.port":
                after.append(f"server.port := {ctx.port}")
            elif user.sets(key) and ctx.bind:
                after.append(f"server.bind := {quote(ctx.bind)}")
        if after:
            text += f"{USER_MARK}end of ~/.lighttpd.conf: what the runner needs after it ----\n" + "\n".join(after) + "\n"
    return text


_SOURCE = re.compile(r"source: (?P<path>.*?) line: (?P<line>\d+) pos: (?P<pos>\d+)")
_DUPLICATE = re.compile(r"Duplicate (?:config variable in conditional \d+ [^:]*|array-key) ?:? ?'?(?P<key>[^'\s]*)'?")
_ERROR_LINE = re.compile(r"^\S+ \S+ \((?:[a-z_]+\.c)\.\d+\) ")


def _lighttpd_lines(stderr: str) -> list[str]:
    """lighttpd's messages without its timestamps and source positions."""
    return [_ERROR_LINE.sub("", line).strip() for line in stderr.splitlines() if line.strip()]


def explain_refusal(stderr: str, config: str, config_path: str, user_path: str) -> str:
    """One message for a configuration lighttpd refused: its reason and, where it lies in
    the tool's file, that file's line number and text."""
    lines = config.splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if line.startswith(USER_MARK) and line.endswith(".lighttpd.conf ----")), None)
    end = next((i + 1 for i, line in enumerate(lines) if start and i >= start and line.startswith(USER_MARK + "end of")), len(lines) + 1)
    messages = _lighttpd_lines(stderr)
    reasons = [re.sub(r"^source: .*? line: \d+ pos: \d+ ", "", m) for m in messages]
    reason = next((r for r in reasons if "parser failed" not in r), None)
    where = None
    m = _SOURCE.search(stderr)
    if m and start is not None and start < int(m.group("line")) < end:
        n = int(m.group("line")) - start
        where = (n, lines[int(m.group("line")) - 1])
    dup = _DUPLICATE.search(stderr)
    if dup and start is not None:
        # lighttpd names the key and reports the end of the statement: show where it starts
        key = dup.group("key")
        user_text = "\n".join(lines[start:end - 1])
        found = lighttpd_conf.scan(user_text).lines.get(key) if "array-key" not in dup.group(0) else None
        if found:
            where = (found, lines[start + found - 1])
    who = re.search(r"can't find (user|group)name (\S+)", stderr)
    if who and where is None and start is not None:
        key = "server.username" if who.group(1) == "user" else "server.groupname"
        found = lighttpd_conf.scan("\n".join(lines[start:end - 1])).lines.get(key)
        if found:
            where = (found, lines[start + found - 1])
    reason = reason or (messages[-1] if messages else "no reason given")
    if where:
        text = f"lighttpd refused {user_path} line {where[0]}: {where[1].strip()}  ({reason})"
    elif m and start is not None and int(m.group("line")) <= start:
        text = f"lighttpd refused the generated configuration line {m.group('line')} ({reason}): a bug in webservice-runner, please report it"
    else:
        text = f"lighttpd refused the configuration: {reason}"
    return f"{text}; fix {user_path}, the whole configuration is kept in {config_path}"


_BIN_PATH = re.compile(r'"bin-path"\s*=>\s*"(?P<value>[^"]*)"')


def check_bin_paths(user_conf: str, user_path: str, home: str) -> None:
    """Refuse, naming the line, a FastCGI/SCGI ``"bin-path"`` lighttpd cannot start.

    lighttpd spawns every such backend at start-up and stops ("Configuration of plugins
    failed") when one is not an executable file; and it runs the command without a shell
    (bookworm's 1.4.69 does), so a ``VAR=value`` prefix (which the old lighttpd passed to ``sh -c``) is
    taken for the program. Said before the start, on one line, with the line of the file.
    """
    for number, line in enumerate(user_conf.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        for m in _BIN_PATH.finditer(line):
            words = m.group("value").split()
            if not words:
                continue
            program = os.path.join(home, words[0])  # relative: from the tool home (lighttpd's cwd)
            if os.path.isfile(program) and os.access(program, os.X_OK):
                continue
            if "=" in words[0] and len(words) > 1:
                why = (f"lighttpd runs it without a shell, so {words[0].split('=', 1)[0]}= is not an environment setting: "
                       'move it to "bin-environment" => ( ... )')
            elif os.path.exists(program):
                why = f"{words[0]} is not an executable file: chmod +x it"
            else:
                why = f"{words[0]} does not exist: fix the path (the tool home is {home})"
            raise RunnerError(f"{user_path} line {number}: {line.strip()}  (lighttpd cannot start this FastCGI program: {why})")


def prepare(ctx: Context) -> Launch:
    php = ctx.type == "lighttpd"
    public_html = ctx.path("public_html")
    user_conf_path = ctx.path(".lighttpd.conf")
    has_docroot = os.path.isdir(public_html)
    has_conf = os.path.isfile(user_conf_path)
    if not (has_docroot or has_conf):
        raise missing(public_html, "create it (the document root) or a ~/.lighttpd.conf")
    lighttpd = ctx.need_program("lighttpd", "this image has no lighttpd")
    php_cgi = ctx.need_program("php-cgi", "this image has no PHP; use a PHP type, or lighttpd-plain") if php else None
    user_conf = None
    if has_conf:
        try:
            with open(user_conf_path, encoding="utf-8", errors="replace") as f:
                user_conf = f.read()
        except OSError as error:
            raise RunnerError(f"cannot read {user_conf_path}: {error.strerror}") from None
    if user_conf is not None:
        check_bin_paths(user_conf, user_conf_path, ctx.home)
    warnings = []
    if ctx.extra_args:
        warnings.append(f"{ctx.type} ignores extra arguments ({' '.join(ctx.extra_args)}): put settings in ~/.lighttpd.conf")
    runtime = ctx.make_runtime_dir()
    docroot = public_html if has_docroot else os.path.join(runtime, "empty")
    files = {} if has_docroot else {os.path.join(docroot, ".keep"): ""}
    config_path = os.path.join(runtime, "lighttpd.conf")
    cat = ctx.which("cat")
    if cat and any(c in cat for c in " '\"\\$`;&|<>"):
        cat = None
    log_fd = ctx.output_fd() if cat else None
    files[config_path] = render_config(ctx, php=php, docroot=docroot, php_cgi=php_cgi, user_conf=user_conf, log_fd=log_fd, cat=cat)
    return Launch(
        argv=[lighttpd, "-D", "-f", config_path],
        cwd=ctx.home,
        env=ctx.child_env(),
        description=f"lighttpd{' with PHP (php-cgi)' if php else ''}, document root {docroot}",
        files=files,
        pass_fds=tuple(ctx.pass_fds),
        warnings=warnings,
        # SIGINT is lighttpd's graceful shutdown (finish requests in flight); its SIGTERM
        # stops at once and exits 1 if a connection is still open
        stop_signal=signal.SIGINT,
        # lighttpd's own check first: a refusal is explained with the tool's line
        preflight=[lighttpd, "-tt", "-f", config_path],
        explain=lambda stderr: explain_refusal(stderr, files[config_path], config_path, user_conf_path),
    )
