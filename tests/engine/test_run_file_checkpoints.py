"""Which checkpoint a resume starts from (core/run_file.py): shared by the engine's resume and the app's offer."""

from __future__ import annotations

from rdtf_engine.core.run_file import checkpoint_name, latest_checkpoint, resumable_step


def _complete(run, step):
    folder = run / "checkpoints" / checkpoint_name(step)
    folder.mkdir(parents=True)
    (folder / "state.json").write_text("{}")
    return folder


def test_the_pointer_wins_when_it_names_a_complete_checkpoint(tmp_path):
    first, second = _complete(tmp_path, 100), _complete(tmp_path, 200)
    assert latest_checkpoint(tmp_path) == second and resumable_step(tmp_path) == 200  # no pointer: the newest
    (tmp_path / "checkpoints" / "latest").write_text(first.name + "\n")
    assert latest_checkpoint(tmp_path) == first and resumable_step(tmp_path) == 100


def test_incomplete_stale_or_escaping_pointers_fall_back_to_the_newest_complete(tmp_path):
    assert latest_checkpoint(tmp_path) is None and resumable_step(tmp_path) is None  # no checkpoints folder
    (tmp_path / "checkpoints" / "step_0000300").mkdir(parents=True)  # killed before state.json
    (tmp_path / "checkpoints" / ".tmp-abc").mkdir()
    assert resumable_step(tmp_path) is None
    done = _complete(tmp_path, 150)
    for pointer in ("step_0000300", "step_0000999", "../elsewhere", ""):
        (tmp_path / "checkpoints" / "latest").write_text(pointer)
        assert latest_checkpoint(tmp_path) == done and resumable_step(tmp_path) == 150
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "state.json").write_text("{}")
    assert latest_checkpoint(tmp_path) == done  # a pointer never leads out of the checkpoints folder
