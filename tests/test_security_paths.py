"""Issue 11, replayed: a visitor reaches only the data folders, and is told so alike for every other path.

Paths outside the data roots (listing, reading, other visitors' uploads, the existence
oracle), in the core and in the /transfer page's folder box.

The other findings of the review: tests/test_security_*.py, one file per subject.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.security_util import transfer_page


# ----------------------------------------------------------------------------- confined paths

@pytest.fixture()
def roots(tmp_path, monkeypatch):
    """Two data roots, a cache inside the first one's parent, and things outside."""
    birds_root, cifar_root = tmp_path / "srv" / "birds", tmp_path / "srv" / "cifar"
    (birds_root / "Robin").mkdir(parents=True)
    cifar_root.mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "key.txt").write_text("x")
    (birds_root / "escape").symlink_to(tmp_path / "secret")
    monkeypatch.setenv("DLTL_DATA_ROOTS", os.pathsep.join([str(birds_root), str(cifar_root)]))
    monkeypatch.setenv("DLTL_CACHE_DIR", str(tmp_path / "cache"))
    return birds_root, cifar_root, tmp_path


def test_paths_outside_the_roots_are_refused_with_one_message(roots):
    """Findings: "/ lists bin, boot…", "/usr/share trains on the server's own images"."""
    from dltl_core import paths

    birds_root, cifar_root, tmp = roots
    assert paths.confine(str(birds_root / "Robin")) == birds_root.resolve() / "Robin"
    assert paths.confine("Robin") == birds_root.resolve() / "Robin"  # relative: the first root
    assert paths.confine(cifar_root) == cifar_root.resolve()
    assert paths.confine(birds_root / "not-there-yet") == birds_root.resolve() / "not-there-yet"
    messages = set()
    for bad in ["/", "/usr/share", "/etc/passwd", "/no/such/dir", str(tmp / "secret"),
                str(tmp / "secret" / "key.txt"), str(tmp / "secret" / "missing"),
                str(birds_root / "escape"), str(birds_root / "escape" / "key.txt"),  # symlink out
                str(birds_root / ".." / "cifar"), "../secret", "", "  ", "a\x00b", "x" * 5000,
                str(tmp / "srv" / "birdsX")]:  # a sibling sharing the prefix
        with pytest.raises(paths.PathRefused) as info:
            paths.confine(bad)
        messages.add(str(info.value))
    assert messages == {paths.REFUSED_MESSAGE}, "the message must not reveal whether a path exists"


def test_other_visitors_uploads_are_unreachable(roots, monkeypatch):
    """Finding: "<cache>/uploads lists other visitors' upload folders"."""
    from dltl_core import paths

    _, _, tmp = roots
    mine, theirs = paths.upload_base() / "session-a", paths.upload_base() / "session-b"
    for d in (mine / "u1" / "Robin", theirs / "u2" / "Wren"):
        d.mkdir(parents=True)
    own = paths.data_roots(extra=[mine])
    assert paths.confine(mine / "u1", own) == mine.resolve() / "u1"
    for bad in (theirs, theirs / "u2", paths.upload_base(), tmp / "cache"):
        with pytest.raises(paths.PathRefused):
            paths.confine(bad, own)
    # An operator root that contains the cache (a home folder) does not open the cache.
    monkeypatch.setenv("DLTL_DATA_ROOTS", str(tmp))
    assert paths.confine(tmp / "secret") == (tmp / "secret").resolve()
    with pytest.raises(paths.PathRefused):
        paths.confine(theirs / "u2")


def test_default_roots_and_operator_storage(monkeypatch, tmp_path):
    from dltl_core import paths

    monkeypatch.delenv("DLTL_DATA_ROOTS", raising=False)
    monkeypatch.setenv("DLTL_BIRDS_DIR", str(tmp_path / "b"))
    monkeypatch.setenv("DLTL_CIFAR_DIR", str(tmp_path / "c"))
    roots = paths.data_roots()
    assert roots[0] == (tmp_path / "b").resolve() and (tmp_path / "c").resolve() in roots
    assert all(r != Path("/") for r in paths.data_roots(extra=["/"]))
    monkeypatch.delenv("DLTL_STORAGE", raising=False)
    monkeypatch.delenv("DLTL_RESULTS", raising=False)
    assert paths.operator_storage() == paths.OperatorStorage(None, ())
    secrets = {"dltl": {"storage": "sqlite:////srv/runs.db", "results": ["/srv/a.json", "/srv/b.json"]}}
    got = paths.operator_storage(secrets)
    assert got.storage == "sqlite:////srv/runs.db" and got.results == (Path("/srv/a.json"), Path("/srv/b.json"))
    monkeypatch.setenv("DLTL_RESULTS", os.pathsep.join(["/r/1.json", "/r/2.json"]))
    monkeypatch.setenv("DLTL_STORAGE", "postgresql://u@db/dltl")
    assert paths.operator_storage(secrets) == paths.OperatorStorage(
        "postgresql://u@db/dltl", (Path("/r/1.json"), Path("/r/2.json")))


# ----------------------------------------------------------------------------- the /transfer page

@pytest.mark.slow
def test_folder_box_refuses_server_paths_alike_whether_they_exist_or_not(tmp_path, monkeypatch):
    """Findings: "/ lists bin, boot…", "/usr/share trains on the server's own images",
    "<cache>/uploads lists other visitors' upload folders"."""
    from dltl_core import paths
    from dltl_core.birds import upload

    at = transfer_page(tmp_path, monkeypatch)
    other = upload.session_area("another-visitor-0123456789")  # someone else's upload
    (other / "abc" / "Robin").mkdir(parents=True)
    shown = {}
    for typed in ["/", "/usr/share", "/usr/share/no-such-dir", str(paths.upload_base()), str(other),
                  str(other / "abc"), str(other / "missing"), "/etc/passwd", "../../etc"]:
        at.text_input(key="tl_folder").set_value(typed).run()
        assert not at.exception and not at.error
        warnings = [w.value for w in at.warning]
        assert len(warnings) == 1 and "is not a folder inside this server's data folders" in warnings[0]
        assert warnings[0].startswith(f"`{typed}`")
        shown[typed] = warnings[0][len(typed) + 2:]
        assert not at.metric and not at.dataframe  # nothing listed, nothing trained
    assert len(set(shown.values())) == 1, "the answer must not depend on whether the path exists"
    assert "Robin" not in str([m.value for m in at.markdown])


def test_the_page_names_folders_by_public_names_that_read_back(tmp_path):
    """A visitor sees ``birds/Sparrow``, never ``/srv/...``; typing that name opens the same folder."""
    from dltl_core import paths

    a, b = tmp_path / "one" / "birds", tmp_path / "two" / "birds"
    (a / "Sparrow").mkdir(parents=True)
    b.mkdir(parents=True)
    names = paths.root_names([a, b])
    assert list(names) == ["birds", "birds-2"]  # unique, in order
    assert paths.shown_path(a / "Sparrow", [a, b]) == "birds/Sparrow"
    assert paths.shown_path(b, [a, b]) == "birds-2"
    assert str(tmp_path) not in paths.shown_path(tmp_path / "elsewhere", [a, b])  # outside: the last part only
    assert paths.confine("birds/Sparrow", [a, b]) == (a / "Sparrow").resolve()
    assert paths.confine("birds-2", [a, b]) == b.resolve()
    with pytest.raises(paths.PathRefused):
        paths.confine("birds/../../etc", [a, b])
