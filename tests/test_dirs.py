"""The user's config and cache directories (webservice.model.dirs), against platformdirs."""

from __future__ import annotations

import os

import pytest

from webservice.model import dirs


@pytest.mark.parametrize(
    "kind", ["config", "cache"])
@pytest.mark.parametrize(
    "xdg",
    [None, "", "ABS", "ABS/nested/", "relative/dir"],
    ids=["unset", "empty", "absolute", "absolute-trailing-slash", "relative"],
)
@pytest.mark.parametrize("home", ["ABS", "ABS/with space"], ids=["home", "home-with-space"])
def test_user_dirs_are_what_platformdirs_finds(tmp_path, monkeypatch, kind, xdg, home):
    """The Linux fast path (no platformdirs import) gives platformdirs' answer; where old and
    new platformdirs differ (a relative XDG_*_HOME), it follows the XDG spec: ignored."""
    platformdirs = pytest.importorskip("platformdirs")
    variable = f"XDG_{kind.upper()}_HOME"
    monkeypatch.setenv("HOME", home.replace("ABS", str(tmp_path)))
    if xdg is None:
        monkeypatch.delenv(variable, raising=False)
    else:
        monkeypatch.setenv(variable, xdg.replace("ABS", str(tmp_path / "xdg")))
    ours = dirs.user_dir(kind, "toolforge")
    if xdg == "relative/dir":
        assert ours == os.path.join(home.replace("ABS", str(tmp_path)), f".{kind}", "toolforge")
    else:
        theirs = getattr(platformdirs, f"user_{kind}_dir")("toolforge")
        assert os.path.normpath(ours) == os.path.normpath(theirs)
    assert os.path.isabs(ours) and ours.endswith(os.sep + "toolforge")


def test_cache_dir_is_the_webservice_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert dirs.cache_dir() == os.path.join(str(tmp_path), "webservice")
