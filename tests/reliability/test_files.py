"""Crash-safe writes: leftovers of dead writers are cleaned, replacements are whole, modes follow the umask,
damaged model folders are named with their problem, storage errors are reported without a partial file."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import pytest

import mdlprob
from mdlprob._io import WriteError, atomic_dir, atomic_path
from mdlprob.exceptions import ModelFileError


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_leftovers_of_a_crashed_save_are_cleaned_on_the_next_write(trained, tmp_path):
    pid = _dead_pid()
    (tmp_path / f".m.mdlprob-tmp-{pid}-abc").mkdir()
    (tmp_path / f".m.mdlprob-tmp-{pid}-abc" / "model.pt").write_bytes(b"half")
    (tmp_path / f".other.mdlprob-tmp-{pid}-x").mkdir()  # another target's: left alone
    trained.save(tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".other.mdlprob-tmp-{pid}-x", "m"]


def test_crash_between_the_two_renames_of_overwrite_is_repaired(trained, tmp_path, mdata):
    """A writer died after moving the old folder aside and before moving the new one in."""
    trained.save(tmp_path / "m")
    pid = _dead_pid()
    old = tmp_path / f".m.mdlprob-old-{pid}-q"
    old.mkdir()
    (tmp_path / "m").rename(old / "content")
    (tmp_path / f".m.mdlprob-tmp-{pid}-r").mkdir()
    trained.save(tmp_path / "m", overwrite=True)  # the next save restores, then replaces
    trained.save(tmp_path / "m", overwrite=True)  # and the next-but-one works too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    mdlprob.PoEVAE.load(tmp_path / "m", mdata)


def test_overwrite_onto_a_regular_file_replaces_it_whole(trained, tmp_path, mdata):
    target = tmp_path / "model"
    target.write_text("a user's file")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        trained.save(target)
    assert target.read_text() == "a user's file"
    trained.save(target, overwrite=True)
    assert target.is_dir() and sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    mdlprob.PoEVAE.load(target, mdata)


def test_saved_folder_and_files_follow_the_umask(trained, tmp_path):
    previous = os.umask(0o022)
    try:
        trained.save(tmp_path / "m")
        with atomic_path(tmp_path / "f.txt") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(previous)
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "m" / "model.pt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644


def test_an_error_inside_the_write_leaves_the_target_as_it_was(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "d", overwrite=True) as tmp:
        (tmp / "new").write_text("new")
        raise RuntimeError
    assert [p.name for p in tmp_path.iterdir()] == ["d"] and (tmp_path / "d" / "keep").read_text() == "old"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_full_disk_or_read_only_place_is_one_clear_error(trained, tmp_path, monkeypatch, code):
    original = os.replace

    def failing(src, dst):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(WriteError, match=f"Could not write {tmp_path / 'm'}: .*Nothing was written there"):
        trained.save(tmp_path / "m")
    monkeypatch.setattr(os, "replace", original)
    assert list(tmp_path.iterdir()) == []


def test_read_only_folder_save(trained, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores folder permissions")
    (tmp_path / "ro").mkdir(mode=0o555)
    with pytest.raises(WriteError, match="permission denied"):
        trained.save(tmp_path / "ro" / "m")


@pytest.mark.parametrize(("damage", "error", "message"), [
    (lambda p: (p / "config.json").write_text("{not json"), ModelFileError, "config.json is not valid JSON"),
    (lambda p: (p / "config.json").write_text(json.dumps({"model_class": "PoEVAE"})), ModelFileError, "lacks 'module_kwargs'"),
    (lambda p: (p / "config.json").write_text("[1, 2]"), ModelFileError, "holds a JSON list"),
    (lambda p: (p / "model.pt").write_bytes(os.urandom(4000)), ModelFileError, "model.pt is not a readable mdlprob weights file"),
    (lambda p: (p / "model.pt").write_bytes((p / "model.pt").read_bytes()[:2000]), ModelFileError, "truncated"),
    (lambda p: (p / "model.pt").unlink(), ModelFileError, "model.pt is missing"),
    (lambda p: (p / "config.json").unlink(), FileNotFoundError, "config.json is missing"),
])
def test_damaged_model_folders_name_the_file_and_the_problem(trained, tmp_path, damage, error, message):
    trained.save(tmp_path / "m")
    damage(tmp_path / "m")
    with pytest.raises(error, match=message) as info:
        mdlprob.PoEVAE.load(tmp_path / "m")
    assert "weights_only=False" not in str(info.value).replace("never load such a file with weights_only=False", "")


def test_weights_of_another_model_in_the_folder(trained, mdata, tmp_path):
    trained.save(tmp_path / "a")
    other = mdlprob.PoEVAE(mdata, n_latent=6, n_hidden=8)
    other.train(max_epochs=1, progress_bar=False)
    other.save(tmp_path / "b")
    (tmp_path / "a" / "model.pt").write_bytes((tmp_path / "b" / "model.pt").read_bytes())
    with pytest.raises(ModelFileError, match="does not match .*config.json"):
        mdlprob.PoEVAE.load(tmp_path / "a")


def test_loading_a_file_or_a_missing_path(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(FileNotFoundError, match="it is a file"):
        mdlprob.PoEVAE.load(tmp_path / "f")
    with pytest.raises(FileNotFoundError, match="it is missing"):
        mdlprob.PoEVAE.load(tmp_path / "nothing")
