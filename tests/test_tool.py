"""Who is the tool: the Unix user tools.<tool>, the project file, overrides."""

from __future__ import annotations

from pathlib import Path

import os
import pytest

from webservice.model import tool as toolmod
from webservice.errors import InputError, NotAToolError
from webservice.model.tool import Tool, identify, read_project, validate_tool_name


@pytest.fixture
def no_project(tmp_path):
    """An environ whose project file does not exist: the project is 'tools'."""
    return {"WEBSERVICE_PROJECT_FILE": str(tmp_path / "no-such-wmcs-project")}


def project_env(tmp_path, content: str | bytes) -> dict:
    path = tmp_path / "wmcs-project"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return {"WEBSERVICE_PROJECT_FILE": str(path)}


def test_unix_user_is_the_tool(no_project):
    tool = identify(None, environ=no_project, user=("tools.foo", "/data/project/foo"))
    assert tool == Tool(name="foo", project="tools", home="/data/project/foo", source="unix-user")
    assert tool.namespace == "tool-foo"
    assert tool.user == "tools.foo"


@pytest.mark.parametrize(
    "username, name",
    [
        ("tools.foo", "foo"),
        ("tools.my-tool", "my-tool"),
        ("tools.a", "a"),
        ("tools.0", "0"),
        ("tools.x1-2y", "x1-2y"),
        ("tools." + "a" * 58, "a" * 58),
    ],
)
def test_tool_user_names(no_project, username, name):
    assert identify(None, environ=no_project, user=(username, "/home/x")).name == name


def test_project_from_file(tmp_path):
    environ = project_env(tmp_path, "toolsbeta\n")
    tool = identify(None, environ=environ, user=("toolsbeta.foo", "/data/project/foo"))
    assert (tool.name, tool.project, tool.user, tool.namespace) == ("foo", "toolsbeta", "toolsbeta.foo", "tool-foo")


def test_project_argument_beats_file(tmp_path):
    environ = project_env(tmp_path, "toolsbeta\n")
    tool = identify(None, project="tools", environ=environ, user=("tools.foo", "/h"))
    assert tool.project == "tools"


def test_tools_user_on_toolsbeta_is_not_a_tool(tmp_path):
    environ = project_env(tmp_path, "toolsbeta")
    with pytest.raises(NotAToolError) as info:
        identify(None, environ=environ, user=("tools.foo", "/data/project/foo"))
    assert "toolsbeta.<tool>" in str(info.value)


@pytest.mark.parametrize(
    "content",
    [
        "",
        "\n",
        "Tools\n",
        "tools beta\n",
        "tools.beta",
        "../../etc",
        "-tools",
        "tоols",  # Cyrillic o
        b"\xff\xfe\x00",
        "toolsbeta\nextra\n",
    ],
    ids=repr,
)
def test_garbage_project_file_falls_back_to_tools(tmp_path, content):
    environ = project_env(tmp_path, content)
    assert read_project(environ["WEBSERVICE_PROJECT_FILE"]) == "tools"
    assert identify(None, environ=environ, user=("tools.foo", "/h")).project == "tools"


def test_project_file_that_is_a_directory(tmp_path):
    assert read_project(str(tmp_path)) == "tools"


def test_project_file_with_spaces_around(tmp_path):
    environ = project_env(tmp_path, "  toolsbeta \n\n")
    assert read_project(environ["WEBSERVICE_PROJECT_FILE"]) == "toolsbeta"


def test_missing_project_file(tmp_path):
    assert read_project(str(tmp_path / "nope")) == "tools"


def test_default_project_file_path(monkeypatch):
    seen = []
    monkeypatch.setattr(toolmod, "read_project", lambda path=toolmod.PROJECT_FILE: seen.append(path) or "tools")
    identify(None, environ={}, user=("tools.foo", "/h"))
    assert seen == ["/etc/wmcs-project"]


@pytest.mark.parametrize(
    "username",
    ["root", "alice", "tools", "tools.", "toolsfoo", "tools.Foo", "tools.foo_bar", "tools.-foo", "tools.foo-",
     "tools." + "a" * 59, "tools.foo.bar", "tools.föo", "tools.foo\n", "toolsbeta.foo", ".foo"],
    ids=repr,
)
def test_non_tool_users(no_project, username):
    with pytest.raises(NotAToolError) as info:
        identify(None, environ=no_project, user=(username, "/home/alice"))
    message = str(info.value)
    assert "\n" not in message
    assert "not a tool account" in message
    assert repr(username) in message
    assert "become <tool>" in info.value.hint
    assert "--tool" in info.value.hint
    assert isinstance(info.value, InputError)


def test_override_uses_home_from_environment(no_project):
    environ = {**no_project, "HOME": "/srv/tool-home"}
    tool = identify("foo", environ=environ, user=("alice", "/home/alice"))
    assert tool == Tool(name="foo", project="tools", home="/srv/tool-home", source="override")
    assert tool.namespace == "tool-foo"


def test_override_beats_unix_user(no_project):
    environ = {**no_project, "HOME": "/h"}
    tool = identify("bar", environ=environ, user=("tools.foo", "/data/project/foo"))
    assert (tool.name, tool.source) == ("bar", "override")


def test_override_without_home_uses_the_user_home(no_project):
    tool = identify("foo", environ=no_project, user=("alice", "/home/alice"))
    assert tool.home == "/home/alice"


def test_override_is_stripped(no_project):
    assert identify("  foo\n", environ={**no_project, "HOME": "/h"}, user=("a", "/h")).name == "foo"


def test_override_with_project_file(tmp_path):
    environ = {**project_env(tmp_path, "toolsbeta"), "HOME": "/h"}
    tool = identify("foo", environ=environ, user=("alice", "/h"))
    assert (tool.project, tool.user) == ("toolsbeta", "toolsbeta.foo")


def test_real_current_user_is_used_without_injection(no_project, monkeypatch):
    monkeypatch.setattr(toolmod, "_current_user", lambda: ("tools.real", "/data/project/real"))
    tool = identify(None, environ=no_project)
    assert (tool.name, tool.home) == ("real", "/data/project/real")


def test_current_user_reads_the_password_database():
    import os
    import pwd

    name, home = toolmod._current_user()
    assert name == pwd.getpwuid(os.getuid()).pw_name
    assert home == pwd.getpwuid(os.getuid()).pw_dir


BAD_NAMES = [
    "Foo",
    "FOO",
    "foo_bar",
    "foo.bar",
    "foo bar",
    "a" * 59,
    "föo",
    "ｆｏｏ",  # fullwidth
    "tооl",  # Cyrillic o
    "",
    "-foo",
    "foo-",
    "-",
    "foo/bar",
    "../foo",
    "foo\n",
    "foo\x00",
    "tools.foo",
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_invalid_names_refused(name):
    with pytest.raises(InputError) as info:
        validate_tool_name(name)
    message = str(info.value)
    assert "\n" not in message
    assert "tool name" in message
    assert "is not valid" in message
    assert len(message) < 200


@pytest.mark.parametrize("name", [n for n in BAD_NAMES if n.strip() == n and n], ids=repr)
def test_invalid_override_refused(no_project, name):
    with pytest.raises(InputError) as info:
        identify(name, environ={**no_project, "HOME": "/h"}, user=("alice", "/h"))
    assert "--tool/WEBSERVICE_TOOL" in str(info.value)
    assert not isinstance(info.value, NotAToolError)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["   ", "\n"])
def test_blank_override_refused(no_project, name):
    with pytest.raises(InputError):
        identify(name, environ={**no_project, "HOME": "/h"}, user=("alice", "/h"))


@pytest.mark.parametrize("value", [None, 42, b"foo", ["foo"]], ids=repr)
def test_non_string_names_refused(value):
    with pytest.raises(InputError) as info:
        validate_tool_name(value)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_long_name_is_shortened_in_the_message():
    with pytest.raises(InputError) as info:
        validate_tool_name("x" * 10_000)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize("name", ["foo", "a", "0", "my-tool-2", "a" * 58, "1abc"])
def test_valid_names(name):
    assert validate_tool_name(name) == name


def test_namespace_of_the_longest_name_is_a_dns_label():
    name = "a" * 58
    assert len(Tool(name=name, project="tools", home="/", source="override").namespace) == 63


def test_the_tool_account_itself_gives_its_own_uid_and_gid(monkeypatch):
    from webservice.model import tool as tool_mod

    monkeypatch.setattr(tool_mod, "_current_user", lambda: ("tools.mytool", "/data/project/mytool"))
    me = tool_mod.identify(None, project="tools", environ={})
    assert (me.name, me.source, me.uid, me.gid) == ("mytool", "unix-user", os.getuid(), os.getgid())


def test_an_override_looks_the_account_up_and_may_not_find_it(monkeypatch):
    from webservice.model import tool as tool_mod

    monkeypatch.setattr(tool_mod, "account_ids", lambda user: {"tools.known": (51000, 51001)}.get(user, (None, None)))
    assert tool_mod.identify("known", project="tools", environ={"HOME": "/h"}).uid == 51000
    unknown = tool_mod.identify("unknown", project="tools", environ={"HOME": "/h"})
    assert (unknown.uid, unknown.gid) == (None, None)


def test_account_ids_of_a_real_and_a_missing_account():
    import pwd

    me = pwd.getpwuid(os.getuid())
    from webservice.model.tool import account_ids

    assert account_ids(me.pw_name) == (me.pw_uid, me.pw_gid)
    assert account_ids("tools.no-such-tool-here") == (None, None)
