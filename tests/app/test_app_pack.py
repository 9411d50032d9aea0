"""Pack page: make a pack through the (fake) engine, edit it sticker by sticker, cancel, reopen; the page's grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_app_worker import Wire

from rdtf_engine.packs.moods import DEFAULT_MOODS
from rdtf_engine.packs.project import load_pack


@pytest.fixture
def vm(state):
    return state.pack


def make_pack(qtbot, vm, moods="waving, laughing, heart eyes") -> None:
    vm.set_value("character", "a round orange cat")
    vm.set_value("moods", moods)
    vm.generate()
    qtbot.waitUntil(lambda: not vm.busy, timeout=5000)


def test_default_form_and_a_whole_pack(qtbot, vm, fake):
    assert vm.moods == ", ".join(DEFAULT_MOODS) and len(vm.motions()) == 12
    vm.set_value("title", "Cat moods")
    make_pack(qtbot, vm)
    req = fake.last("pack").request
    assert (req.action, req.character, req.motions) == ("new", "a round orange cat",
                                                         ["waving", "laughing", "heart eyes"])
    project = vm.project
    assert [s.id for s in project.stickers] == ["waving", "laughing", "heart-eyes"]
    assert all(vm.is_made(s.id) for s in project.stickers) and vm.progress == 1.0
    assert "Done: 3 made" in vm.status and vm.recent == [vm.folder]
    frames = vm.frames("laughing")
    assert len(frames) == 4 and Image.open(frames[0]).size == (32, 32)
    assert project.sticker("waving").emoji == ("👋",)


def test_edits_write_pack_json(qtbot, vm, state):
    make_pack(qtbot, vm)
    messages = []
    state.message.connect(lambda level, text: messages.append((level, text)))
    assert vm.rename("waving", "Hi!") and vm.set_emoji("waving", "👋🐱") and vm.toggle_lock("laughing")
    assert vm.move("heart-eyes", -1) and vm.move("heart-eyes", -5)
    on_disk = load_pack(vm.folder)
    assert [s.id for s in on_disk.stickers] == ["heart-eyes", "waving", "laughing"]
    assert on_disk.sticker("waving").name == "Hi!" and on_disk.sticker("waving").emoji == ("👋", "🐱")
    assert on_disk.sticker("laughing").locked and vm.project == on_disk
    assert not vm.set_emoji("waving", "not emoji") and messages[-1][0] == "error"
    assert vm.remove("heart-eyes") and load_pack(vm.folder).stickers[0].id != "heart-eyes"


def test_regenerate_one_all_and_add(qtbot, vm, fake):
    make_pack(qtbot, vm)
    seed = vm.project.sticker("waving").seed
    vm.toggle_lock("laughing")
    vm.regenerate("waving")
    qtbot.waitUntil(lambda: not vm.busy, timeout=5000)
    req = fake.last("pack").request
    assert (req.action, req.ids, req.reroll) == ("regen", ["waving"], True)
    assert vm.project.sticker("waving").seed != seed
    vm.regenerate_all()
    qtbot.waitUntil(lambda: not vm.busy, timeout=5000)
    assert fake.last("pack").request.ids == [] and "2 made" in vm.status  # the locked one is skipped
    vm.add_moods("sleeping, party")
    qtbot.waitUntil(lambda: not vm.busy, timeout=5000)
    assert fake.last("pack").request.action == "fill"
    assert [s.id for s in vm.project.stickers][-2:] == ["sleeping", "party"] and vm.is_made("party")


def test_cancel_and_failure_and_missing_character(qtbot, state, dirs, settings):
    from fake_engine import FakeEngine

    from app.state.pack import PackViewModel

    engine = FakeEngine("engine", hold=("pack",))
    vm = PackViewModel(engine, dirs, settings)
    messages = []
    vm.message.connect(lambda level, text: messages.append((level, text)))
    vm.generate()
    assert messages[-1][0] == "error" and not engine.submitted  # no character: nothing sent
    vm.set_value("character", "a cat")
    vm.generate()
    assert vm.busy
    engine.push(engine.last("pack"), {"kind": "progress", "stage": "pack", "step": 1, "total": 4, "message": "x"},
                {"kind": "progress", "stage": "denoise", "step": 5, "total": 10, "message": ""})
    assert vm.progress == pytest.approx(1.5 / 4) and "Sticker 2 of 4" in vm.status
    vm.cancel()
    qtbot.waitUntil(lambda: not vm.busy, timeout=5000)
    assert "Stopped" in vm.status and messages[-1][0] == "info"
    vm.generate()
    engine.fail(engine.last("pack"), "ModelError", "model 'x' is not a model folder")
    assert not vm.busy and messages[-1][0] == "error" and "model folder" in messages[-1][1]


def test_open_recent_and_bad_folder(qtbot, vm, state, settings, tmp_path):
    make_pack(qtbot, vm)
    folder = vm.folder
    assert settings.get("pack/recent") == [folder]
    other = state.__class__(state.engine, state.trainer, state.dirs, settings).pack
    assert other.recent == [folder] and other.open(folder) and other.project == vm.project
    assert other.character == "a round orange cat" and "heart eyes" in other.moods
    messages = []
    other.message.connect(lambda level, text: messages.append((level, text)))
    assert not other.open(str(tmp_path)) and "not a sticker pack folder" in messages[-1][1]
    (tmp_path / "pack.json").write_text('{"format": "rdtf-pack", "version": 1, "title": "x", '
                                        '"stickers": [{"id": "a", "motion": "m", "file": "../../etc/passwd"}]}')
    assert not other.open(str(tmp_path)) and "inside the pack folder" in messages[-1][1]


def test_use_a_picture_or_a_gallery_sticker(qtbot, vm, tmp_path):
    pic = tmp_path / "my_robot.png"
    Image.fromarray(np.full((8, 8, 4), 200, np.uint8), "RGBA").save(pic)
    vm.use_picture(str(pic))
    assert vm.character == str(pic) and vm.title == "my robot"

    from types import SimpleNamespace

    vm.use_gallery_sticker(SimpleNamespace(frames=[SimpleNamespace(path=str(pic))]))
    assert vm.character == str(pic)


def test_page_grid_follows_the_pack(qtbot, state):
    from app.widgets.pack_page import PackPage

    page = PackPage(state.pack)
    qtbot.addWidget(page)
    page.resize(1000, 700)
    page.show()
    assert page.empty.isVisible() and not page.export_btn.isEnabled()
    assert "WhatsApp" in page.export_btn.toolTip()
    page.character.setText("a round orange cat")
    page.moods.setPlainText("waving, laughing, crying")
    page.generate_btn.click()
    qtbot.waitUntil(lambda: not state.pack.busy and len(page.cells) == 3, timeout=5000)
    cell = page.cells["laughing"]
    assert len(cell.player.paths) == 4 and cell.name.text() == "laughing" and cell.emoji.text() == "😂"
    assert not page.cells["waving"].left.isEnabled() and page.cells["crying"].left.isEnabled()
    cell.right.click()
    assert [s.id for s in state.pack.project.stickers] == ["waving", "crying", "laughing"]
    assert page.grid.getItemPosition(page.grid.indexOf(cell))[:2] == (0, 2)
    cell.lock.click()
    assert state.pack.project.sticker("laughing").locked and not cell.regen.isEnabled()
    page.cells["crying"].remove.click()
    qtbot.waitUntil(lambda: "crying" not in page.cells, timeout=2000)
    assert "2 stickers, 2 made" in page.heading.text()
    assert page.export_btn.isEnabled()


def test_drag_a_sticker_onto_another_place(qtbot, state, monkeypatch):
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QDragEnterEvent, QDropEvent, QMouseEvent
    from PySide6.QtWidgets import QApplication

    from app.widgets import pack_page

    drags = []

    class Drag(pack_page.QDrag):  # offscreen there is no window system to drag in: capture what would be dropped
        def exec(self, *_a):
            drags.append(self.mimeData())
            return Qt.DropAction.MoveAction

    monkeypatch.setattr(pack_page, "QDrag", Drag)
    page = pack_page.PackPage(state.pack)
    qtbot.addWidget(page)
    page.resize(1000, 700)
    page.show()
    page.character.setText("a round orange cat")
    page.moods.setPlainText("waving, laughing, crying, sleeping")
    page.generate_btn.click()
    qtbot.waitUntil(lambda: not state.pack.busy and len(page.cells) == 4, timeout=5000)
    source, target = page.cells["sleeping"].player, page.cells["laughing"]
    left, none = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    for kind, at, buttons in ((QMouseEvent.Type.MouseButtonPress, 20, left), (QMouseEvent.Type.MouseMove, 60, left)):
        QApplication.sendEvent(source, QMouseEvent(kind, QPointF(at, at), source.mapToGlobal(QPointF(at, at)),
                                                   left, buttons, none))
    assert len(drags) == 1 and drags[0].hasFormat(pack_page.STICKER_MIME)
    move = Qt.DropAction.MoveAction
    enter = QDragEnterEvent(target.rect().center(), move, drags[0], left, none)
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(target, QDropEvent(QPointF(target.rect().center()), move, drags[0], left, none))
    order = ["waving", "sleeping", "laughing", "crying"]  # sleeping takes laughing's place, the rest shift right
    assert [s.id for s in load_pack(state.pack.folder).stickers] == order
    assert page.grid.getItemPosition(page.grid.indexOf(page.cells["sleeping"]))[:2] == (0, 1)
    # dropping a sticker on itself, or text from elsewhere, changes nothing
    own = QDragEnterEvent(source.rect().center(), move, drags[0], left, none)
    QApplication.sendEvent(page.cells["sleeping"], own)
    assert not own.isAccepted()
    assert [s.id for s in load_pack(state.pack.folder).stickers] == order


def test_export_pack_runs_as_a_worker_job(qtbot, state, tmp_path):
    """The Pack page's export: one PackExportRequest to the worker, named for the platform, status when done."""
    vm = state.pack
    vm.set_value("character", "a round orange cat")
    vm.set_value("moods", "waving, laughing, crying")
    vm.generate()
    qtbot.waitUntil(lambda: not vm.busy and vm.project is not None and all(s.file for s in vm.project.stickers),
                    timeout=5000)
    target = vm.export_pack("whatsapp", str(tmp_path))
    assert target is not None and target.endswith(".wastickers")
    qtbot.waitUntil(lambda: not vm.busy, timeout=5000)
    import zipfile

    assert len(zipfile.ZipFile(target).namelist()) == 3 and "Exported" in vm.status
    folder = vm.export_pack("telegram", str(tmp_path))
    assert folder is not None and folder.endswith("-telegram")
    qtbot.waitUntil(lambda: not vm.busy, timeout=5000)
    assert len(list(Path(folder).iterdir())) == 3
    assert vm.export_pack("myspace", str(tmp_path)) is None


def test_main_window_has_the_pack_page_and_file_menu(qtbot, state, settings):
    from app.main_window import MainWindow

    window = MainWindow(state, settings, ask_before_close=False)
    qtbot.addWidget(window)
    window.show_page("pack")
    assert window.current_page() == "pack"
    titles = [a.text() for a in window.menuBar().actions()]
    assert "&File" in titles
    menu = window.menuBar().actions()[0].menu()
    assert any("Open pack" in a.text() for a in menu.actions())


def test_pack_job_through_a_real_worker_process_cancels_between_stickers(tmp_path):
    """The typed request over the wire: validated on receipt, a progress event per sticker, cancel keeps work."""
    w = Wire(delay=0.2)
    try:
        w.send(id="bad", op="pack", params={"action": "new", "folder": str(tmp_path / "p")})
        assert "needs a character" in w.end("bad")["message"]
        moods = ["waving", "laughing", "crying", "sleeping", "party"]
        w.send(id="p", op="pack", params={"action": "new", "folder": str(tmp_path / "p"), "character": "a cat",
                                          "motions": moods})
        w.wait_for(lambda x: x.get("id") == "p" and x["kind"] == "preview")
        w.send(id="c", op="cancel", params={"target": "p"})
        assert w.end("p")["error_type"] == "Cancelled"
        project = load_pack(tmp_path / "p")
        made = [s.id for s in project.stickers if s.file]
        assert 1 <= len(made) < len(moods) and made == moods[:len(made)]
        stages = {x["stage"] for x in w.lines if x.get("id") == "p" and x["kind"] == "progress"}
        assert stages == {"pack"}
        w.send(id="f", op="pack", params={"action": "fill", "folder": str(tmp_path / "p")})
        assert w.end("f", timeout=30)["result"]["made"] == moods[len(made):]
    finally:
        w.close()
