"""The one atomic writer (`atomic_files`): checks first, stages everything, rolls back failed renames."""

import os

import pytest

from bayesdl4.errors import DataFormatError, DataWriteError
from bayesdl4.utils import fileio
from bayesdl4.utils.fileio import atomic_files, atomic_path, write_files


def _old_set(folder, names):
    for name in names:
        (folder / name).write_text(f"old {name}")
    return {name: f"old {name}" for name in names}


def _contents(folder):
    return {p.name: p.read_text() for p in folder.iterdir()}


def _failing_at(k):
    """A rename that fails on its k-th call (0-based) and renames otherwise."""
    calls = {"n": 0}

    def rename(src, dst):
        calls["n"] += 1
        if calls["n"] - 1 == k:
            raise OSError(f"injected failure at rename {k}")
        os.replace(src, dst)

    return rename


NAMES = ["s.fits", "s_bkg.fits", "s_arf.fits", "s_rmf.fits"]


@pytest.mark.parametrize("k", range(len(NAMES)))
def test_failed_rename_restores_the_old_set(tmp_path, monkeypatch, k):
    """A failure at the k-th rename leaves exactly the old four files, and no temporary file."""
    old = _old_set(tmp_path, NAMES)
    monkeypatch.setattr(fileio, "_rename", _failing_at(k))
    writers = {tmp_path / n: (lambda tmp, n=n: tmp.write_text(f"new {n}")) for n in NAMES}
    with pytest.raises(DataWriteError, match=rf"{NAMES[k]}.*injected failure.*restored"):
        write_files(writers, overwrite=True)
    assert _contents(tmp_path) == old


@pytest.mark.parametrize("k", range(3))
def test_failed_rename_removes_new_files_when_there_was_no_old_set(tmp_path, monkeypatch, k):
    monkeypatch.setattr(fileio, "_rename", _failing_at(k))
    writers = {tmp_path / n: (lambda tmp, n=n: tmp.write_text(n)) for n in NAMES[:3]}
    with pytest.raises(DataWriteError):
        write_files(writers)
    assert list(tmp_path.iterdir()) == []


def test_success_replaces_all_and_leaves_no_backup(tmp_path):
    _old_set(tmp_path, NAMES)
    write_files({tmp_path / n: (lambda tmp, n=n: tmp.write_text(f"new {n}")) for n in NAMES}, True)
    assert _contents(tmp_path) == {n: f"new {n}" for n in NAMES}


def test_directory_at_a_target_is_refused_before_anything_is_written(tmp_path):
    """Even with overwrite=True a directory named like a companion file stops the whole write."""
    old = _old_set(tmp_path, ["s.fits", "s_bkg.fits"])
    (tmp_path / "s_arf.fits").mkdir()
    writers = {tmp_path / n: (lambda tmp, n=n: tmp.write_text("new")) for n in NAMES}
    with pytest.raises(DataWriteError, match=r"s_arf\.fits is a directory"):
        write_files(writers, overwrite=True)
    assert _contents_files(tmp_path) == old
    assert (tmp_path / "s_arf.fits").is_dir()


def _contents_files(folder):
    return {p.name: p.read_text() for p in folder.iterdir() if p.is_file()}


def test_existing_target_without_overwrite(tmp_path):
    old = _old_set(tmp_path, ["b"])
    with pytest.raises(FileExistsError, match="b exists; pass overwrite=True"):
        write_files({tmp_path / "a": lambda t: t.write_text("a"), tmp_path / "b": lambda t: t.write_text("b")})
    assert _contents(tmp_path) == old


def test_duplicate_targets(tmp_path):
    with pytest.raises(DataFormatError, match="share one file name"):
        with atomic_files([tmp_path / "a", tmp_path / "." / "a"]):
            pass


def test_block_that_raises_writes_nothing(tmp_path):
    old = _old_set(tmp_path, ["a"])
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_files([tmp_path / "a", tmp_path / "b"], overwrite=True) as temps:
            for tmp in temps.values():
                tmp.write_text("new")
            raise RuntimeError("boom")
    assert _contents(tmp_path) == old


def test_a_file_left_unstaged_is_an_error(tmp_path):
    with pytest.raises(DataWriteError, match="nothing was staged"):
        with atomic_files([tmp_path / "a", tmp_path / "b"]) as temps:
            temps[tmp_path / "a"].write_text("a")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_single_file(tmp_path):
    with atomic_path(tmp_path / "sub" / "x.txt") as tmp:
        tmp.write_text("x")
    assert (tmp_path / "sub" / "x.txt").read_text() == "x"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["x.txt"]
