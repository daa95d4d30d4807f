"""Defect 12: another local user owning or opening up the host-lock folder in the shared temp directory.

The tests run as root, so ``chown`` to ``nobody`` plays the other user.
"""

from __future__ import annotations

import os
import tempfile

import pytest

from airflow_provider_sage200.exceptions import Sage200AuthError
from airflow_provider_sage200.hooks.sage200 import Sage200Hook

NOBODY = 65534
pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="playing another user needs chown (root)")


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    """A temp directory of this test's own, standing in for the host's shared /tmp."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    os.chmod(tmp_path, 0o1777)
    return tmp_path


def our_folder(temp_dir):
    return temp_dir / f"airflow-provider-sage200-{os.getuid()}"


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_the_shared_name_taken_by_another_user_does_not_block_refreshes(consented, temp_dir, kind):
    """Another user taking the shared name made every refresh fail with a bare OSError (root is not stopped by
    a folder's permissions, so the file plays the squatter that stops everyone)."""
    squatted = temp_dir / "airflow-provider-sage200"
    if kind == "file":
        squatted.write_text("")
    else:
        squatted.mkdir(mode=0o755)
    os.chown(squatted, NOBODY, NOBODY)
    status = Sage200Hook().refresh()
    assert status.generation >= 1
    folder = our_folder(temp_dir)
    assert folder.is_dir() and folder.stat().st_mode & 0o777 == 0o700
    assert len(list(folder.iterdir())) == 1  # the lock file


@pytest.mark.parametrize(
    ("prepare", "said"),
    [
        (
            lambda f: (f.mkdir(mode=0o700), os.chown(f, NOBODY, NOBODY)),
            r"belongs to another user \(uid 65534",
        ),
        (lambda f: (f.mkdir(), os.chmod(f, 0o777)), r"writable by other users \(mode 0o777\)"),
        (lambda f: (f.mkdir(), os.chmod(f, 0o770)), r"writable by other users \(mode 0o770\)"),
        (lambda f: os.symlink("/", f), r"is not a directory"),
    ],
    ids=["other-owner", "world-writable", "group-writable", "symlink"],
)
def test_an_unsafe_per_user_folder_is_refused_saying_what_to_do(consented, temp_dir, prepare, said):
    folder = our_folder(temp_dir)
    prepare(folder)
    before = Sage200Hook().token_store.load()
    with pytest.raises(Sage200AuthError, match=said) as raised:
        Sage200Hook().refresh()
    assert str(folder) in str(raised.value) and "remove" in str(raised.value).lower()
    assert Sage200Hook().token_store.load()["refresh_token"] == before["refresh_token"]  # nothing was spent
