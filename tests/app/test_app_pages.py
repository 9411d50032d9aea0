"""Every page as a widget, inside the real MainWindow, against the FakeEngine (offscreen Qt)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT
from fake_backend import write_checkpoint
from fake_engine import write_png
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent, QResizeEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from app.main_window import MainWindow


@pytest.fixture
def window(qtbot, state, settings):
    w = MainWindow(state, settings, ask_before_close=False)  # a modal question would hang teardown
    qtbot.addWidget(w)
    w.show()
    state.start()
    qtbot.waitUntil(lambda: len(state.create.models) == 2, timeout=3000)
    return w


def generate_via_button(qtbot, window):
    page = window.pages["create"]
    with qtbot.waitSignal(window.state.create.generated, timeout=3000):
        qtbot.mouseClick(page.generate_btn, Qt.MouseButton.LeftButton)


def test_create_page_generates_and_switches_to_timeline(qtbot, window):
    page = window.pages["create"]
    assert page.model.itemText(0) == "default (shipped)"  # shipped model first
    page.frames.setValue(5)
    page.prompt.setPlainText("star spinning")
    assert window.state.create.frames == 5 and window.state.create.prompt == "star spinning"
    old_seed = page.seed.value()
    qtbot.mouseClick(page.dice, Qt.MouseButton.LeftButton)
    assert page.seed.value() == window.state.create.seed != old_seed
    page.examples.setCurrentIndex(2)
    page.examples.activated.emit(2)
    assert page.prompt.toPlainText() == "cat waving hello"
    generate_via_button(qtbot, window)
    assert window.current_page() == "timeline"
    assert window.pages["timeline"].strip.count() == 5 and len(page.preview.paths) == 5


def test_create_page_progress_and_cancel(qtbot, window, fake):
    fake.hold.add("generate")
    page = window.pages["create"]
    window.show_page("create")
    qtbot.mouseClick(page.generate_btn, Qt.MouseButton.LeftButton)
    assert not page.generate_btn.isEnabled() and page.cancel_btn.isEnabled()
    fake.push(fake.last("generate"), {"kind": "progress", "stage": "denoise", "step": 5, "total": 20})
    assert page.progress.value() == 250 and "5/20" in page.status.text()
    with qtbot.waitSignal(window.state.create.busy_changed, timeout=2000):
        qtbot.mouseClick(page.cancel_btn, Qt.MouseButton.LeftButton)
    assert page.generate_btn.isEnabled() and page.status.text() == "Cancelled"


def test_timeline_keyboard_shortcuts(qtbot, window):
    generate_via_button(qtbot, window)
    page = window.pages["timeline"]
    vm = window.state.timeline
    page.setFocus()
    qtbot.keyClick(page, Qt.Key.Key_Space)  # pause
    assert not vm.playing
    vm.set_current(0)
    qtbot.keyClick(page, Qt.Key.Key_Right)
    assert vm.current == 1
    qtbot.keyClick(page, Qt.Key.Key_L)
    assert vm.frames[1].locked and "🔒" in page.strip.item(1).text()
    qtbot.keyClick(page, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert len(vm.frames) == 9
    qtbot.keyClick(page, Qt.Key.Key_Delete)
    assert len(vm.frames) == 8
    qtbot.keyClick(page, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(vm.frames) == 9 and page.buttons["redo"].isEnabled()
    page.strip.item(2).setSelected(True)
    assert vm.selection == [2]
    page.duration.setValue(250)
    assert vm.frames[2].duration_ms == 250 and "250 ms" in page.strip.item(2).text()
    with qtbot.waitSignal(vm.busy_changed, check_params_cb=lambda b: not b, timeout=3000):
        qtbot.keyClick(page, Qt.Key.Key_R)  # frame 1 is locked: regenerate the others
    page.onion.setChecked(True)
    assert page.player.onion and vm.onion


def test_timeline_drag_reorder_goes_through_undo(qtbot, window):
    generate_via_button(qtbot, window)
    vm = window.state.timeline
    first = vm.frames[0].path
    vm.move_to(0, 3)
    assert vm.frames[3].path == first
    window.pages["timeline"].undo()
    assert vm.frames[0].path == first


def test_train_page_drop_report_captions_and_resume_banner(qtbot, window, state, tmp_path, dirs):
    page = window.pages["train"]
    assert page.banner.isHidden()
    src = tmp_path / "pack"
    names = ("a", "b", "c", "d")  # four: the fewest a pack fine-tune takes
    for i, n in enumerate(names):
        write_png(src / f"{n}.png", (1 + 60 * i, 2, 3))
    state.engine.scripts["import"] = lambda p: [{"kind": "finished", "result": {
        "out": str(src), "imported": [{"file": f"{n}.png"} for n in names],
        "skipped": [{"file": "b.txt", "reason": "not a sticker"}]}}]
    (src / "captions.csv").write_text("file,caption\na.png,a thing\n" + "".join(f"{n}.png,{n}\n" for n in names[1:]))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(src))])
    drop = QDropEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(state.train.captions_changed, timeout=3000):
        page.dropEvent(drop)
    assert "4 sticker(s) imported, 1 skipped" in page.report.text()
    assert page.skipped.item(0).text() == "b.txt: not a sticker"
    assert page.captions.item(0, 2).text() == "a thing" and not page.captions.item(0, 0).icon().isNull()
    page.captions.item(0, 2).setText("a better caption")
    assert "a better caption" in (src / "captions.csv").read_text()
    qtbot.mouseClick(page.start_btn, Qt.MouseButton.LeftButton)
    assert not page.start_btn.isEnabled() and page.pause_btn.isEnabled()
    job = state.trainer.last("train")
    assert page.warning.isHidden()  # the default fine-tunes the shipped model: no from-scratch warning
    state.trainer.push(job, {"kind": "metrics", "step": 3, "loss": 0.4, "curriculum": "adaptive",
                             "task_weights": {"t2v": 1.0}})
    assert page.stage.text() == "Curriculum: adaptive · t2v 100%" and page.bar.value() == 3
    sheet = tmp_path / "step_0000003.png"  # a wide preview: real | drawn now, two captions
    Image.new("RGB", (1200, 214), (200, 30, 30)).save(sheet)
    state.trainer.push(job, {"kind": "preview", "step": 3, "paths": [str(sheet)], "caption": "samples"})
    shown = page.samples.pixmap()
    assert not shown.isNull() and shown.width() <= page.samples.width() and shown.height() <= page.samples.height()
    assert max(shown.width() / page.samples.width(), shown.height() / page.samples.height()) > 0.95  # fills it
    old = page.samples.size()
    page.samples.resize(old.width() // 2, old.height())
    QApplication.sendEvent(page.samples, QResizeEvent(page.samples.size(), old))  # (offscreen: not shown)
    assert page.samples.pixmap().width() <= page.samples.width()  # follows the panel's size
    with qtbot.waitSignal(state.train.state_changed, check_params_cb=lambda s: s == "paused", timeout=2000):
        qtbot.mouseClick(page.pause_btn, Qt.MouseButton.LeftButton)
    assert page.resume_btn.isEnabled()
    # a second window (the app reopened) offers the unfinished run
    write_checkpoint(state.train.run_dir, 3)
    state.train.scan_unfinished()
    assert not page.banner.isHidden() and "did not finish" in page.banner.label.text()
    qtbot.mouseClick(page.banner.resume_btn, Qt.MouseButton.LeftButton)
    assert state.trainer.last("train").params["run"]["resume"] is True and page.banner.isHidden()


def test_export_page_shows_rules(qtbot, window):
    generate_via_button(qtbot, window)
    page = window.pages["export"]
    page.checks["line"].setChecked(True)
    with qtbot.waitSignal(window.state.export.busy_changed, check_params_cb=lambda b: not b, timeout=3000):
        qtbot.mouseClick(page.check_btn, Qt.MouseButton.LeftButton)
    rows = {page.results.topLevelItem(i).text(0): page.results.topLevelItem(i) for i in range(2)}
    line = next(v for k, v in rows.items() if k.startswith("LINE"))
    tg = next(v for k, v in rows.items() if k.startswith("Telegram"))
    assert line.text(1) == "FAIL" and line.isExpanded() and line.child(1).text(1) == "✗"
    assert tg.text(1) == "PASS" and page.save_btn.isEnabled()


def test_models_page_rows_and_protected_builtin(qtbot, window, monkeypatch):
    page = window.pages["models"]
    assert page.table.rowCount() == 2
    names = [page.table.item(r, 0).text() for r in range(2)]
    row = names.index("default")
    page.table.selectRow(row)
    assert page.table.item(row, 1).text() == "shipped" and not page.delete_btn.isEnabled()
    page.table.selectRow(1 - row)
    assert page.rename_btn.isEnabled() and page.table.item(1 - row, 2).text() == "10 params"


def test_gallery_page_reopens(qtbot, window, monkeypatch):
    generate_via_button(qtbot, window)
    page = window.pages["gallery"]
    window.show_page("gallery")
    assert page.grid.count() == 1
    page.grid.setCurrentRow(0)
    assert '"prompt"' in page.recipe.toPlainText() and page.open_btn.isEnabled()
    qtbot.mouseClick(page.open_btn, Qt.MouseButton.LeftButton)
    assert window.current_page() == "timeline"
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.show_page("gallery")
    page.grid.setCurrentRow(0)
    qtbot.mouseClick(page.delete_btn, Qt.MouseButton.LeftButton)
    assert page.grid.count() == 0


def test_worker_crash_shows_message_bar(qtbot, window, fake):
    fake.crash("The engine stopped unexpectedly and was restarted. 1 job(s) did not finish; try again.")
    assert window.bar.isVisible() and window.bar.level == "error" and "restarted" in window.bar.label.text()


def test_close_with_training_asks_then_stops_trainer(qtbot, window, state, monkeypatch, tmp_path):
    window.ask_before_close = True
    state.train._set("dataset", str(tmp_path))
    state.train.start()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    assert not window.close() and state.trainer.busy
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    calls = []
    monkeypatch.setattr(state.trainer, "stop_now", lambda: calls.append("trainer"))
    window.close()
    assert calls == ["trainer"] and not window.isVisible()


def test_gui_modules_never_import_torch():
    code = ("import sys; import app.__main__, app.main_window, app.jobs, app.state.app_state; "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
                         env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "ok", out.stderr


def test_create_page_size_follows_the_view_model(qtbot, window):
    # a recipe reopened from the gallery (or a script) sets the size on the view model: the combo must show it
    page = window.pages["create"]
    window.state.create.set_value("size", 128)
    assert page.size.currentData() == 128
    page.size.setCurrentIndex(page.size.findData(512))
    assert window.state.create.size == 512


def test_the_loss_plot_labels_its_axis_within_a_decade_and_goes_log_across_several(qtbot):
    from app.widgets.loss_plot import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.set_points([(10, 0.0035), (20, 0.0031), (30, 0.0029)])  # a fine-tune: within one decade
    assert not plot.log_y and not plot.getAxis("left").logMode  # linear: its ticks have numbers
    plot.set_points([(10, 2.0), (20, 0.3), (30, 0.02)])  # from scratch: over two decades
    assert plot.log_y and plot.getAxis("left").logMode
    plot.set_points([])
    assert plot.curve.getData()[0] is None or len(plot.curve.getData()[0]) == 0
