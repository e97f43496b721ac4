"""Configuration layering and validation: defaults < site < user < environment < CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from webservice.model import config as cfg
from webservice.model.config import Config, load_config
from webservice.errors import ConfigError, InputError


@pytest.fixture
def files(tmp_path, monkeypatch):
    """Site and user file paths in tmp_path, and an environ naming them (no real files read)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    site = tmp_path / "site.yaml"
    user = tmp_path / "user.yaml"
    environ = {"WEBSERVICE_SITE_CONFIG": str(site), "WEBSERVICE_CONFIG": str(user)}
    return site, user, environ


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --- defaults and layering ------------------------------------------------------------------


def test_defaults_when_no_files(files):
    _, _, environ = files
    config = load_config(environ=environ)
    assert config == Config()
    assert config.public_domain == "toolforge.org"
    assert config.buildservice_repository == "tools-harbor.wmcloud.org"
    assert config.routing == "httproute"  # today's Toolforge serves HTTPRoutes on its Gateway
    assert (config.gateway_name, config.gateway_namespace, config.gateway_section) == ("toolforge", "istio-gateway", "")
    assert config.ingress_class == ""
    assert config.legacy_snippets is False
    assert set(config.sources.values()) == {"default"}
    assert set(config.sources) == set(cfg.KEYS)


def test_empty_files_are_defaults(files):
    site, user, environ = files
    write(site, "")
    write(user, "# only a comment\n")
    assert load_config(environ=environ) == Config()


def test_layering_order(files):
    site, user, environ = files
    write(site, "public_domain: site.example\nrouting: legacy-path\ntimeout: 10\ncatalogue_ttl: 20\n")
    write(user, "routing: httproute\ntimeout: 11\ncatalogue_ttl: 21\n")
    environ = {**environ, "WEBSERVICE_TIMEOUT": "12", "WEBSERVICE_CATALOGUE_TTL": "22"}
    config = load_config(overrides={"catalogue_ttl": 23, "gateway_name": None}, environ=environ)
    assert config.public_domain == "site.example"  # site only
    assert config.routing == "httproute"  # user beats site
    assert config.timeout == 12  # env beats user
    assert config.catalogue_ttl == 23  # command line beats env
    assert config.gateway_name == "toolforge"  # None override: not given
    assert config.sources["public_domain"] == f"config file {site}"
    assert config.sources["routing"] == f"config file {user}"
    assert config.sources["timeout"] == "environment variable WEBSERVICE_TIMEOUT"
    assert config.sources["catalogue_ttl"] == "command line"
    assert config.sources["gateway_name"] == "default"


def test_old_flat_site_format_is_valid(files):
    site, _, environ = files
    write(site, "public_domain: beta.toolforge.org\nbuildservice_repository: toolsbeta-harbor.wmcloud.org\n")
    config = load_config(environ=environ)
    assert config.public_domain == "beta.toolforge.org"
    assert config.buildservice_repository == "toolsbeta-harbor.wmcloud.org"


def test_dash_spellings_accepted(files):
    _, user, environ = files
    write(
        user,
        "public-domain: example.org\nbuildservice-repository: registry.example.org:5000/x\n"
        "legacy-host: tools.wmflabs.org\nlegacy-snippets: yes\ngateway-name: gw\n"
        "gateway-namespace: gw-ns\ngateway-section: https\ncatalogue-ttl: 60\ningress-class: istio\n",
    )
    config = load_config(environ=environ)
    assert config.public_domain == "example.org"
    assert config.buildservice_repository == "registry.example.org:5000/x"
    assert config.legacy_host == "tools.wmflabs.org"
    assert config.legacy_snippets is True
    assert (config.gateway_name, config.gateway_namespace, config.gateway_section) == ("gw", "gw-ns", "https")
    assert config.catalogue_ttl == 60
    assert config.ingress_class == "istio"
    assert config.sources["public_domain"] == f"config file {user}"


def test_user_file_default_is_under_xdg_config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    environ = {"WEBSERVICE_SITE_CONFIG": str(tmp_path / "none.yaml")}
    expected = tmp_path / "xdg" / "toolforge" / "webservice.yaml"
    assert cfg.user_config_path(environ) == str(expected)
    write(expected, "routing: httproute\n")
    config = load_config(environ=environ)
    assert config.routing == "httproute"
    assert config.sources["routing"] == f"config file {expected}"


def test_webservice_config_overrides_the_user_path(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    write(tmp_path / "xdg" / "toolforge" / "webservice.yaml", "routing: httproute\n")
    other = write(tmp_path / "other.yaml", "routing: legacy-path\n")
    environ = {"WEBSERVICE_SITE_CONFIG": str(tmp_path / "none.yaml"), "WEBSERVICE_CONFIG": str(other)}
    assert load_config(environ=environ).routing == "legacy-path"


def test_site_path_default_and_override():
    assert cfg.site_config_path({}) == "/etc/toolforge/webservice.yaml"
    assert cfg.site_config_path({"WEBSERVICE_SITE_CONFIG": ""}) == "/etc/toolforge/webservice.yaml"
    assert cfg.site_config_path({"WEBSERVICE_SITE_CONFIG": "/x/y.yaml"}) == "/x/y.yaml"


def test_uses_os_environ_by_default(files, monkeypatch):
    site, _, environ = files
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("WEBSERVICE_ROUTING", "legacy-path")
    assert load_config().routing == "legacy-path"


@pytest.mark.parametrize(
    "variable, value, key, expected",
    [
        ("WEBSERVICE_PUBLIC_DOMAIN", "beta.toolforge.org", "public_domain", "beta.toolforge.org"),
        ("WEBSERVICE_BUILDSERVICE_REPOSITORY", "harbor.example", "buildservice_repository", "harbor.example"),
        ("WEBSERVICE_ROUTING", "legacy-path", "routing", "legacy-path"),
        ("WEBSERVICE_ROUTING", "httproute", "routing", "httproute"),
        ("WEBSERVICE_LEGACY_HOST", "tools.wmflabs.org", "legacy_host", "tools.wmflabs.org"),
        ("WEBSERVICE_LEGACY_HOST", "", "legacy_host", ""),
        ("WEBSERVICE_LEGACY_SNIPPETS", "true", "legacy_snippets", True),
        ("WEBSERVICE_LEGACY_SNIPPETS", "ON", "legacy_snippets", True),
        ("WEBSERVICE_LEGACY_SNIPPETS", "0", "legacy_snippets", False),
        ("WEBSERVICE_LEGACY_SNIPPETS", "no", "legacy_snippets", False),
        ("WEBSERVICE_GATEWAY_NAME", "gw", "gateway_name", "gw"),
        ("WEBSERVICE_GATEWAY_NAMESPACE", "gw-system", "gateway_namespace", "gw-system"),
        ("WEBSERVICE_GATEWAY_SECTION", "https", "gateway_section", "https"),
        ("WEBSERVICE_INGRESS_CLASS", "istio", "ingress_class", "istio"),
        ("WEBSERVICE_INGRESS_CLASS", "", "ingress_class", ""),
        ("WEBSERVICE_ROUTING", "ingress", "routing", "ingress"),
        ("WEBSERVICE_PROJECT", "toolsbeta", "project", "toolsbeta"),
        ("WEBSERVICE_CATALOGUE_TTL", "60", "catalogue_ttl", 60),
        ("WEBSERVICE_TIMEOUT", "300", "timeout", 300),
    ],
)
def test_environment_variables(files, variable, value, key, expected):
    _, _, environ = files
    config = load_config(environ={**environ, variable: value})
    assert getattr(config, key) == expected
    assert config.sources[key] == f"environment variable {variable}"


def test_unrelated_environment_is_ignored(files):
    _, _, environ = files
    environ = {**environ, "WEBSERVICE_TOOL": "foo", "WEBSERVICE_PROJECT_FILE": "/x", "WEBSERVICE_NOPE": "1"}
    assert load_config(environ=environ) == Config()


def test_overrides_are_checked(files):
    _, _, environ = files
    with pytest.raises(ConfigError) as info:
        load_config(overrides={"routing": "carrier-pigeon"}, environ=environ)
    assert "command line" in str(info.value) and "'routing'" in str(info.value)


def test_effective_legacy_host():
    assert Config().effective_legacy_host("tools") == "tools.wmflabs.org"
    assert Config().effective_legacy_host("toolsbeta") == "toolsbeta.wmflabs.org"
    assert Config(legacy_host="x.example").effective_legacy_host("tools") == "x.example"


def test_config_is_frozen_and_sources_do_not_compare():
    with pytest.raises(Exception):
        Config().routing = "httproute"  # type: ignore[misc]
    assert Config(sources={"routing": "x"}) == Config()


# --- errors: file problems ------------------------------------------------------------------


def assert_one_line(error: BaseException, *fragments: str) -> None:
    message = str(error)
    assert "\n" not in message, message
    assert isinstance(error, ConfigError) and isinstance(error, InputError)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize("which", ["site", "user"])
@pytest.mark.parametrize(
    "content, fragments",
    [
        ("- a\n- b\n", ["must be a mapping", "not list"]),
        ("just text\n", ["must be a mapping", "not str"]),
        ("42\n", ["must be a mapping", "not int"]),
        ("routing: [unclosed\n", ["not valid YAML", "(line "]),
        ("a: b\n  c: d\n", ["not valid YAML", "(line 2)"]),
        ("routing: ingress\nrouting: : x\n", ["not valid YAML", "(line 2)"]),
        ("!!python/object:os.system {}\n", ["not valid YAML"]),
        ("\tpublic_domain: x\n", ["not valid YAML"]),
        (b"public_domain: \xff\xfe\n", ["not UTF-8"]),
        (b"\x00\x01", ["not valid YAML"]),
        ("x" * (256 * 1024 + 10), ["too large"]),
    ],
    ids=lambda v: repr(v)[:25],
)
def test_bad_files(files, which, content, fragments):
    site, user, environ = files
    path = site if which == "site" else user
    write(path, content)
    with pytest.raises(ConfigError) as info:
        load_config(environ=environ)
    assert_one_line(info.value, str(path), *fragments)


def test_mapping_error_lists_valid_keys(files):
    site, _, environ = files
    write(site, "[1, 2]\n")
    with pytest.raises(ConfigError) as info:
        load_config(environ=environ)
    assert "public_domain" in info.value.hint


def test_directory(files):
    site, _, environ = files
    site.mkdir()
    with pytest.raises(ConfigError) as info:
        load_config(environ=environ)
    assert_one_line(info.value, str(site), "is a directory")


def test_path_through_a_file(files, tmp_path):
    _, _, environ = files
    write(tmp_path / "plain", "x")
    environ = {**environ, "WEBSERVICE_CONFIG": str(tmp_path / "plain" / "webservice.yaml")}
    with pytest.raises(ConfigError) as info:
        load_config(environ=environ)
    assert_one_line(info.value, "cannot read config file", str(tmp_path / "plain"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable(files):
    site, _, environ = files
    write(site, "routing: ingress\n")
    site.chmod(0)
    try:
        with pytest.raises(ConfigError) as info:
            load_config(environ=environ)
    finally:
        site.chmod(0o644)
    assert_one_line(info.value, str(site), "cannot read", "Permission denied")


def test_just_under_the_size_limit_is_read(files):
    site, _, environ = files
    write(site, "# " + "x" * (256 * 1024 - 40) + "\nrouting: httproute\n")
    assert load_config(environ=environ).routing == "httproute"


def test_a_missing_file_is_empty(files):
    _, _, environ = files
    assert load_config(environ=environ) == Config()


# --- errors: keys and values -----------------------------------------------------------------


@pytest.mark.parametrize(
    "content, key",
    [
        ("publicdomain: toolforge.org\n", "publicdomain"),
        ("Public_Domain: toolforge.org\n", "Public_Domain"),
        ("sources: {}\n", "sources"),
        ("routing: ingress\nbogus: 1\n", "bogus"),
        ("1: x\n", "1"),
        ("~: x\n", "None"),
    ],
)
def test_unknown_key(files, content, key):
    _, user, environ = files
    write(user, content)
    with pytest.raises(ConfigError) as info:
        load_config(environ=environ)
    assert_one_line(info.value, str(user), f"unknown key {key!r}")
    assert "public_domain" in info.value.hint and "routing" in info.value.hint


BAD_VALUES = [
    ("public_domain", "Toolforge.org"),
    ("public_domain", "toolforge.org."),
    ("public_domain", ".toolforge.org"),
    ("public_domain", "tool forge.org"),
    ("public_domain", "toolforge.org/evil"),
    ("public_domain", "toolforgе.org"),  # Cyrillic e
    ("public_domain", ""),
    ("public_domain", 42),
    ("public_domain", ["toolforge.org"]),
    ("public_domain", "a" * 64 + ".org"),
    ("buildservice_repository", "https://harbor.example"),
    ("buildservice_repository", "-harbor"),
    ("buildservice_repository", "harbor example"),
    ("buildservice_repository", ""),
    ("buildservice_repository", 5),
    ("routing", "subdomain"),
    ("routing", "Ingress"),
    ("routing", ""),
    ("routing", ["ingress"]),
    ("routing", None),
    ("legacy_host", "Tools.wmflabs.org"),
    ("legacy_host", "tools.wmflabs.org/x"),
    ("legacy_host", 1),
    ("legacy_snippets", "maybe"),
    ("legacy_snippets", 2),
    ("legacy_snippets", None),
    ("gateway_name", "Gateway"),
    ("gateway_name", "gw_1"),
    ("gateway_name", ""),
    ("gateway_name", "-gw"),
    ("gateway_namespace", "a" * 64),
    ("gateway_namespace", None),
    ("gateway_section", "Bad Section"),
    ("ingress_class", "Istio Class"),
    ("project", "tools.beta"),
    ("project", "Tools"),
    ("catalogue_ttl", 0),
    ("catalogue_ttl", -5),
    ("catalogue_ttl", 1.5),
    ("catalogue_ttl", "soon"),
    ("catalogue_ttl", True),
    ("catalogue_ttl", 10**8),
    ("catalogue_ttl", None),
    ("timeout", float("inf")),  # YAML .inf: was an OverflowError traceback
    ("timeout", float("-inf")),
    ("timeout", float("nan")),
    ("timeout", [1]),
    ("timeout", {"a": 1}),
    ("timeout", 0),
    ("timeout", "1e3"),
]


@pytest.mark.parametrize("key, value", BAD_VALUES, ids=lambda v: repr(v)[:20])
def test_bad_value_in_file(files, key, value):
    import yaml

    _, user, environ = files
    write(user, yaml.safe_dump({key: value}))
    with pytest.raises(ConfigError) as info:
        load_config(environ=environ)
    assert_one_line(info.value, str(user), f"key {key!r}", "invalid value", "expected")


@pytest.mark.parametrize(
    "key, value", [(k, v) for k, v in BAD_VALUES if v is not None], ids=lambda v: repr(v)[:20]
)
def test_bad_value_on_command_line(files, key, value):
    _, _, environ = files
    with pytest.raises(ConfigError) as info:
        load_config(overrides={key: value}, environ=environ)
    assert_one_line(info.value, "command line", f"key {key!r}", "invalid value")


@pytest.mark.parametrize("text", ["timeout: .inf\n", "timeout: .nan\n", "timeout: -.inf\n", "catalogue_ttl: 1e400\n"])
def test_yaml_special_floats(files, text):
    _, user, environ = files
    write(user, text)
    with pytest.raises(ConfigError) as info:
        load_config(environ=environ)
    assert_one_line(info.value, str(user), "invalid value")


@pytest.mark.parametrize(
    "variable, value",
    [
        ("WEBSERVICE_ROUTING", "carrier-pigeon"),
        ("WEBSERVICE_ROUTING", ""),
        ("WEBSERVICE_PUBLIC_DOMAIN", ""),
        ("WEBSERVICE_PUBLIC_DOMAIN", "toolforge.org\n"),  # a trailing newline is not a host
        ("WEBSERVICE_PUBLIC_DOMAIN", "toolforge.org.evil.example\nx"),
        ("WEBSERVICE_BUILDSERVICE_REPOSITORY", "harbor\n"),
        ("WEBSERVICE_GATEWAY_NAME", "gw\n"),
        ("WEBSERVICE_PROJECT", "tools\n"),
        ("WEBSERVICE_LEGACY_SNIPPETS", "perhaps"),
        ("WEBSERVICE_TIMEOUT", "ten"),
        ("WEBSERVICE_TIMEOUT", "1.5"),
        ("WEBSERVICE_TIMEOUT", "-1"),
        ("WEBSERVICE_CATALOGUE_TTL", ""),
    ],
)
def test_bad_environment_variable(files, variable, value):
    _, _, environ = files
    with pytest.raises(ConfigError) as info:
        load_config(environ={**environ, variable: value})
    assert_one_line(info.value, f"environment variable {variable}", "invalid value", "expected")


def test_error_message_shortens_long_values(files):
    _, user, environ = files
    write(user, "routing: " + "x" * 5000 + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(environ=environ)
    assert len(str(info.value)) < 400


def test_site_error_is_reported_before_user(files):
    site, user, environ = files
    write(site, "bogus: 1\n")
    write(user, "also_bogus: 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(environ=environ)
    assert str(site) in str(info.value)


@pytest.mark.parametrize(
    "value, expected",
    [(True, True), (False, False), ("yes", True), ("Off", False), ("1", True), ("TRUE", True)],
)
def test_bool_values(files, value, expected):
    _, user, environ = files
    write(user, f"legacy_snippets: {value!r}\n" if isinstance(value, str) else f"legacy_snippets: {value}\n")
    assert load_config(environ=environ).legacy_snippets is expected


@pytest.mark.parametrize("value, expected", [(1, 1), ("30", 30), (2.0, 2), (10**7, 10**7)])
def test_positive_int_values(files, value, expected):
    _, _, environ = files
    assert load_config(overrides={"timeout": value}, environ=environ).timeout == expected


def test_optional_values_accept_empty(files):
    _, user, environ = files
    write(user, "legacy_host: ''\ngateway_section: null\nproject: ''\n")
    config = load_config(environ=environ)
    assert (config.legacy_host, config.gateway_section, config.project) == ("", "", "")


# --- default_type ----------------------------------------------------------------------------


def test_default_type_defaults_to_php74_and_the_site_sets_it(files):
    site, _, environ = files
    assert load_config(environ=environ).default_type == "php7.4"
    write(site, "default_type: php8.4\n")
    config = load_config(environ=environ)
    assert config.default_type == "php8.4" and config.sources["default_type"] == f"config file {site}"


@pytest.mark.parametrize("value", ["'php 8.4'", "[php8.4]", "''", "'-x'"])
def test_bad_default_type_is_one_line_naming_the_key(files, value):
    site, _, environ = files
    write(site, f"default_type: {value}\n")
    with pytest.raises(ConfigError) as info:
        load_config(environ=environ)
    assert_one_line(info.value, str(site), "'default_type'", "webservice type name")


def test_config_files_use_the_shared_bounded_reader(files):
    site, _, environ = files
    write(site, "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n")
    with pytest.raises(ConfigError) as info:  # an alias bomb: refused before it is expanded
        load_config(environ=environ)
    assert_one_line(info.value, str(site), "not valid YAML")
