"""Create and Timeline view-models against the FakeEngine: generate, progress, cancel, crash, edits, undo."""

from __future__ import annotations

from fake_engine import FakeEngine

from app.state.sticker import Frame


def generate(qtbot, state):
    with qtbot.waitSignal(state.create.generated, timeout=3000) as blocker:
        state.create.generate()
    return blocker.args[0]


def test_generate_reports_progress_and_opens_timeline(qtbot, state, fake):
    state.create.set_value("prompt", "cat waving hello")
    state.create.set_value("frames", 6)
    progress = []
    state.create.progress_changed.connect(progress.append)
    with qtbot.waitSignal(state.page_requested, timeout=3000) as page:
        sticker = generate(qtbot, state)
    assert page.args == ["timeline"]
    assert len(sticker.frames) == 6 and sticker.prompt == "cat waving hello"
    assert progress[-1] == 1.0 and 0 < progress[0] < 1
    assert not state.create.busy and state.create.status.startswith("Done")
    params = fake.last("generate").params
    assert params["frames"] == 6 and params["frames_dir"].endswith("gen-1") and params["cond_frames"] == []
    assert [f.path for f in state.timeline.frames] == [f.path for f in sticker.frames]
    assert state.timeline.playing
    assert [s.id for s in state.gallery.entries] == [sticker.id]  # history records it, with its recipe
    assert state.store.load(sticker.id).recipe["prompt"] == "cat waving hello"


def test_invalid_form_shows_message_and_sends_nothing(qtbot, state, fake):
    state.create.set_value("prompt", "   ")
    with qtbot.waitSignal(state.message) as msg:
        state.create.generate()
    assert msg.args[0] == "error" and "prompt" in msg.args[1]
    state.create.set_value("prompt", "ok")
    state.create.set_value("start_image", "/does/not/exist.png")
    with qtbot.waitSignal(state.message) as msg:
        state.create.generate()
    assert "does not exist" in msg.args[1]
    assert fake.submitted == []


def test_start_and_end_image_become_condition_frames(qtbot, state, fake, tmp_path):
    from fake_engine import write_png

    a, b = write_png(tmp_path / "a.png", (255, 0, 0)), write_png(tmp_path / "b.png", (0, 0, 255))
    state.create.set_value("frames", 5)
    state.create.set_value("start_image", a)
    state.create.set_value("end_image", b)
    generate(qtbot, state)
    assert fake.last("generate").params["cond_frames"] == [a, None, None, None, b]


def test_cancel_generation(qtbot, state, fake):
    fake.hold.add("generate")
    state.create.generate()
    job = fake.last("generate")
    fake.push(job, {"kind": "progress", "stage": "denoise", "step": 3, "total": 10})
    assert state.create.busy and abs(state.create.progress - 0.3) < 1e-6
    with qtbot.waitSignal(state.create.busy_changed, timeout=2000):
        state.create.cancel()
    assert fake.cancelled == [job] and state.create.status == "Cancelled"
    assert state.gallery.store.all() == []  # a cancelled generation leaves no empty gallery entry


def test_worker_crash_fails_job_with_human_message(qtbot, state, fake):
    fake.hold.add("generate")
    state.create.generate()
    with qtbot.waitSignal(state.message) as msg:
        fake.crash()
    assert msg.args[0] == "error" and "restarted" in msg.args[1]
    assert not state.create.busy


def test_model_picker_lists_shipped_first_and_sends_user_model_path(qtbot, state, fake):
    state.models.refresh()
    qtbot.waitUntil(lambda: len(state.create.models) == 2)
    assert state.create.models[0]["builtin"] is True
    state.create.set_value("model", "my-cats")
    assert state.create.request().model == "/nowhere/my-cats"
    state.create.set_value("model", "default")
    assert state.create.request().model == "default"


def test_a_picked_model_brings_its_own_text_guidance(qtbot, state, fake):
    """A pack model fine-tuned on a CPU is drawn at the guidance its recipe saved; the user may still change it,
    and a refreshed list or the same model picked again does not undo that."""
    state.models.refresh()
    qtbot.waitUntil(lambda: len(state.create.models) == 2)
    state.create.set_value("model", "my-cats")
    assert state.create.guidance == 8.0 and state.create.request().guidance_text == 8.0
    state.create.set_value("guidance", 6.5)
    state.create.set_value("model", "my-cats")
    state.models.refresh()
    qtbot.wait(50)
    assert state.create.request().guidance_text == 6.5
    state.create.set_value("model", "default")
    assert state.create.request().guidance_text == 4.0


def test_the_style_box_adds_and_removes_the_picked_models_style_tag(qtbot, state, fake):
    """A model with style deltas (the shipped one: "in 3d style") gets a Style box that writes its tag into the
    prompt, so the request and what the user reads agree; a model without a tag has no box."""
    from app.widgets.create_page import CreatePage

    page = CreatePage(state.create)
    qtbot.addWidget(page)
    state.models.refresh()
    qtbot.waitUntil(lambda: len(state.create.models) == 2)
    state.create.set_value("model", "my-cats")
    assert state.create.style_tag == "" and not page.form.isRowVisible(page.style)
    state.create.set_value("model", "default")
    assert state.create.style_tag == "in 3d style" and page.form.isRowVisible(page.style)
    state.create.set_value("prompt", "penguin waving.")
    assert not page.style.isChecked()
    page.style.setChecked(True)
    assert state.create.prompt == "penguin waving, in 3d style" and state.create.request().prompt.endswith("3d style")
    state.create.set_value("prompt", "A penguin, IN 3D STYLE, waving")
    assert page.style.isChecked()  # typed by hand: the box follows the prompt
    page.style.setChecked(False)
    assert state.create.prompt == "A penguin, waving" and not state.create.styled()
    assert state.create.request().prompt == "A penguin, waving"


def test_the_fast_box_draws_with_a_models_few_step_deltas(qtbot, state, fake):
    """A model with few-step deltas (my-cats: 4 steps) gets a Fast box; ticked, the request names the few-step
    sampler and leaves its steps to the model unless the form sets them; another model without the deltas hides
    the box and draws with its usual sampler; the choice is remembered, and a recipe drawn fast ticks it."""
    from app.widgets.create_page import CreatePage

    page = CreatePage(state.create)
    qtbot.addWidget(page)
    state.models.refresh()
    qtbot.waitUntil(lambda: len(state.create.models) == 2)
    state.create.set_value("model", "default")
    assert state.create.fast_steps == 0 and not page.form.isRowVisible(page.fast)
    state.create.set_value("model", "my-cats")
    assert state.create.fast_steps == 4 and page.form.isRowVisible(page.fast) and "4 steps" in page.fast.text()
    assert state.create.request().scheduler is None and not page.fast.isChecked()
    page.fast.setChecked(True)
    req = state.create.request()
    assert (req.scheduler, req.steps, req.preview_every) == ("lcm", None, 1)
    assert not page.guidance.isEnabled()  # the few-step sampler draws unguided
    assert state.settings.get("create/fast") is True
    state.create.set_value("steps", 8)
    assert (state.create.request().scheduler, state.create.request().steps) == ("lcm", 8)
    state.create.set_value("steps", 0)
    state.create.set_value("model", "default")  # no deltas: the usual sampler, the box hidden but still ticked
    assert state.create.request().scheduler is None and not page.form.isRowVisible(page.fast)
    assert page.guidance.isEnabled()
    state.create.set_value("model", "my-cats")
    sticker = generate(qtbot, state)
    assert fake.last("generate").params["scheduler"] == "lcm"
    state.create.set_value("fast", False)
    assert state.create.request().scheduler is None
    state.create.use_sticker(sticker)  # its recipe was drawn fast: the box follows
    assert state.create.fast and page.fast.isChecked() and state.create.request().scheduler == "lcm"


def test_timeline_edits_and_undo_redo(qtbot, state):
    sticker = generate(qtbot, state)  # 8 frames
    tl = state.timeline
    paths = [f.path for f in tl.frames]
    tl.select([1, 2])
    tl.delete()
    assert [f.path for f in tl.frames] == [paths[0]] + paths[3:]
    tl.undo_stack.undo()
    assert [f.path for f in tl.frames] == paths
    tl.undo_stack.redo()
    assert len(tl.frames) == 6
    tl.undo_stack.undo()
    tl.select([0])
    tl.duplicate()
    assert [f.path for f in tl.frames][:3] == [paths[0], paths[0], paths[1]]
    tl.undo_stack.undo()
    tl.select([0, 1])
    tl.move(+1)
    assert [f.path for f in tl.frames][:3] == [paths[2], paths[0], paths[1]] and tl.selection == [1, 2]
    tl.move_to(2, 0)
    assert tl.frames[0].path == paths[1]
    tl.select([3])
    for ms in (120, 140, 160):
        tl.set_duration(ms)
    assert tl.frames[3].duration_ms == 160
    tl.undo_stack.undo()  # the three duration ticks merged into one undo step
    assert tl.frames[3].duration_ms == 100
    tl.toggle_lock([0, 5])
    assert [f.locked for f in tl.frames] == [True, False, False, False, False, True, False, False]
    assert state.store.load(sticker.id).frames[5].locked  # autosaved into the gallery


def test_timeline_limits(qtbot, state):
    generate(qtbot, state)
    tl = state.timeline
    with qtbot.waitSignal(state.message) as msg:
        tl.delete(list(range(8)))
    assert "at least one" in msg.args[1] and len(tl.frames) == 8
    tl._apply([Frame("x.png")] * 24)
    with qtbot.waitSignal(state.message) as msg:
        tl.duplicate([0])
    assert "24" in msg.args[1]


def test_playback_loops_and_stops_without_loop(qtbot, state):
    generate(qtbot, state)
    tl = state.timeline
    tl.set_option("speed", 4.0)  # 100 ms frames at 4× → 25 ms a frame
    seen = set()
    tl.current_changed.connect(seen.add)
    qtbot.waitUntil(lambda: 0 in seen and 7 in seen and len(seen) == 8, timeout=3000)
    tl.set_option("loop", False)
    qtbot.waitUntil(lambda: not tl.playing, timeout=3000)
    assert tl.current == 7
    tl.step(+1)
    assert tl.current == 0


def test_lock_and_regenerate_keeps_locked_frames(qtbot, state, fake):
    generate(qtbot, state)
    tl = state.timeline
    before = list(tl.frames)
    tl.toggle_lock([0, 3])
    with qtbot.waitSignal(tl.busy_changed, timeout=2000, check_params_cb=lambda b: not b):
        tl.regenerate_unlocked()
    params = fake.last("generate").params
    assert params["cond_frames"][0] == before[0].path and params["cond_frames"][1] is None
    assert params["frames_dir"].endswith("gen-2")
    after = tl.frames
    assert after[0].path == before[0].path and after[3].path == before[3].path
    assert all(after[i].path != before[i].path for i in (1, 2, 4, 5, 6, 7))
    tl.undo_stack.undo()
    assert [f.path for f in tl.frames] == [f.path for f in before]


def test_regenerate_needs_a_lock(qtbot, state, fake):
    generate(qtbot, state)
    with qtbot.waitSignal(state.message) as msg:
        state.timeline.regenerate_unlocked()
    assert "Lock" in msg.args[1] and len(fake.submitted) == 1


def test_insert_in_between_uses_neighbours(qtbot, state, fake):
    generate(qtbot, state)
    tl = state.timeline
    tl.set_duration(200, [2])
    paths = [f.path for f in tl.frames]
    tl.play(False)
    tl.set_current(2)
    with qtbot.waitSignal(tl.busy_changed, timeout=2000, check_params_cb=lambda b: not b):
        tl.insert_between()
    params = fake.last("generate").params
    assert params["frames"] == 3 and params["cond_frames"] == [paths[2], None, paths[3]]
    assert len(tl.frames) == 9 and tl.frames[3].duration_ms == 150 and tl.current == 3
    tl.set_current(8)
    with qtbot.waitSignal(tl.busy_changed, timeout=2000, check_params_cb=lambda b: not b):
        tl.insert_between()  # last frame: its neighbour is the first (stickers loop)
    assert fake.last("generate").params["cond_frames"][2] == paths[0]


def test_regenerate_failure_changes_nothing(qtbot, state, fake):
    generate(qtbot, state)
    tl = state.timeline
    tl.toggle_lock([0])
    before = list(tl.frames)
    fake.hold.add("generate")
    tl.regenerate_unlocked()
    with qtbot.waitSignal(state.message) as msg:
        fake.fail(fake.last("generate"), "OutOfMemory", "CUDA out of memory")
    assert msg.args[0] == "error" and "fewer frames" in msg.args[1]
    assert tl.frames == before and not tl.busy


def test_recipe_carries_every_field_into_remake_redraw_and_create(qtbot, state, fake, tmp_path):
    """A sticker's recipe is its request: Remake sends it again (same seed, given frames from the sticker
    itself), a partial redraw keeps every setting but the seed, and Create's form takes it over whole."""
    from fake_engine import write_png

    state.create.extra = {"guidance_image": 2.5, "strength": 0.6, "scheduler": "ddim", "duration_ms": 80}
    state.create.set_value("start_image", write_png(tmp_path / "start.png", (200, 0, 0)))
    sticker = generate(qtbot, state)
    first = fake.last("generate").params
    assert sticker.recipe["locked"] == [0] and "cond_frames" not in sticker.recipe
    tl = state.timeline
    with qtbot.waitSignal(tl.busy_changed, timeout=2000, check_params_cb=lambda b: not b):
        tl.regenerate()
    again = fake.last("generate").params
    same = ("prompt", "model", "frames", "size", "steps", "seed", "guidance_text", "guidance_image", "strength",
            "scheduler", "duration_ms")
    assert {k: again[k] for k in same} == {k: first[k] for k in same}
    assert again["cond_frames"] == [sticker.frames[0].path] + [None] * 7 and again["model_sha256"] == "f" * 64
    tl.toggle_lock([0, 3])
    with qtbot.waitSignal(tl.busy_changed, timeout=2000, check_params_cb=lambda b: not b):
        tl.regenerate_unlocked()
    redraw = fake.last("generate").params
    assert {k: redraw[k] for k in same if k != "seed"} == {k: first[k] for k in same if k != "seed"}
    state.create.extra = {}
    state.create.use_sticker(sticker)
    req = state.create.request()
    assert {k: getattr(req, k) for k in same} == {k: first[k] for k in same}
    assert req.cond_frames[0] == sticker.frames[0].path


def test_fake_engine_is_a_drop_in(qtbot):
    """The FakeEngine exposes what the view-models use from EngineClient."""
    from app.jobs import EngineClient

    for name in ("submit", "cancel", "shutdown", "stop_now", "restart", "crashed", "state_changed", "busy"):
        assert hasattr(EngineClient, name) and hasattr(FakeEngine, name)


def test_steps_auto_leaves_the_sampler_to_the_engine(state, tmp_path):
    """The form's Steps start at Auto (0): the request names no steps or sampler, so the engine runs the task's
    own (10 UniPC steps for a prompt alone, 20 DPM-Solver++ steps with a start image); a number is sent as is."""
    from fake_engine import write_png

    req = state.create.request()
    assert state.create.steps == 0 and req.steps is None and req.scheduler is None and req.preview_every == 2
    state.create.set_value("start_image", write_png(tmp_path / "start.png", (200, 0, 0)))
    assert state.create.request().preview_every == 5  # a quarter of the 20 steps a start image gets
    state.create.set_value("steps", 12)
    req = state.create.request()
    assert req.steps == 12 and req.scheduler is None and req.preview_every == 3


def test_the_engine_gets_ready_for_the_picked_model_before_the_first_sticker(qtbot, state, fake):
    """When the model list arrives (the app opening) the engine is asked to prepare the picked model at the form's
    frames and size; picking another model replaces a preparation still running; the same model is not prepared
    twice; Generate stops an unfinished one (the sticker loads what it needs itself)."""
    fake.hold.add("prepare")
    state.models.refresh()
    qtbot.waitUntil(lambda: any(j.op == "prepare" for j in fake.submitted))
    first = fake.last("prepare")
    assert first.params == {"model": "default", "frames": 8, "size": 256, "given": False, "scheduler": None,
                            "device": "auto"}
    state.create.set_value("model", "my-cats")
    second = fake.last("prepare")
    assert second is not first and second.params["model"] == "/nowhere/my-cats" and fake.cancelled == [first]
    state.create.set_value("model", "my-cats")  # picked again: nothing new to prepare
    state.create.set_value("prompt", "a cat")
    assert fake.last("prepare") is second
    fake.finish(second, {"model": "my-cats", "graphs": 2})
    state.create.set_value("fast", True)  # the few-step sampler has its own graphs
    third = fake.last("prepare")
    assert third.params["scheduler"] == "lcm" and third.params["model"] == "/nowhere/my-cats"
    with qtbot.waitSignal(state.create.generated, timeout=3000):
        state.create.generate()
    assert fake.cancelled == [first, third]
    qtbot.waitUntil(lambda: third.ended)
    assert state.create.prepare_job is None


def test_a_preparation_that_fails_says_nothing_and_is_tried_again(qtbot, state, fake):
    fake.scripts["prepare"] = lambda p: [{"kind": "failed", "error_type": "ModelError", "message": "broken"}]
    messages = []
    state.message.connect(lambda level, text: messages.append(text))
    state.models.refresh()
    qtbot.waitUntil(lambda: any(j.op == "prepare" for j in fake.submitted))
    qtbot.waitUntil(lambda: state.create.prepare_job is None)
    state.create.set_value("model", "my-cats")
    state.create.set_value("model", "default")
    assert [j.params["model"] for j in fake.submitted if j.op == "prepare"] == ["default", "/nowhere/my-cats",
                                                                                  "default"]
    assert messages == []  # Generate reports a model that does not load, not the background preparation


def test_any_other_engine_job_stops_a_preparation_still_running(qtbot, state, fake, tmp_path):
    """Preparing never holds up what the user asked for: a check (or an import, an export…) sent to the engine
    stops it (the loading under way, which that job may need too, is not undone); the next model picked, even the
    same one again, is prepared."""
    fake.hold.add("prepare")
    state.models.refresh()
    qtbot.waitUntil(lambda: any(j.op == "prepare" for j in fake.submitted))
    first = fake.last("prepare")
    state.export.check_file(str(tmp_path / "a.webm"), "telegram")  # the Export page's Check… on a file
    assert fake.cancelled == [first] and state.create.prepare_job is None
    state.create.set_value("model", "default")
    assert fake.last("prepare") is not first and fake.last("prepare").params["model"] == "default"
