"""Pack export: every pack preset round-trips through independent readers (zipfile, Pillow, PyAV), the pack
rules are checked on what was written, broken and hostile packs give every problem as a typed error with
nothing written, and the CLI answers with exit codes and one-line errors."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from rdtf_engine.cli.main import main as cli_main
from rdtf_engine.core.errors import Cancelled, ExportError, InputError, RdtfError
from rdtf_engine.core.events import Progress
from rdtf_engine.core.requests import PackExportRequest, from_wire, to_wire
from rdtf_engine.formats.encoders import encode_apng
from rdtf_engine.jobs.backend import EngineBackend
from rdtf_engine.packs.export import check_pack, export_pack
from rdtf_engine.packs.pack_presets import PACK_PRESETS
from rdtf_engine.packs.project import PackProject, PackSticker, save_pack
from rdtf_engine.platforms.check import check_bytes
from rdtf_engine.platforms.presets import PRESETS
from rdtf_engine.worker import Output, Worker

EMOJI = ("👋", "😀", "🐱", "❤️", "🎉", "😂", "👍", "🙏")


def _frames(n: int, seed: int, side: int = 64) -> np.ndarray:
    """A flat-colour blob that moves across a transparent canvas: (n, side, side, 4) RGBA."""
    out = np.zeros((n, side, side, 4), np.uint8)
    colour = (40 + 25 * seed % 200, 200 - 20 * seed % 150, 90, 255)
    for i in range(n):
        x = 8 + (i * 5) % (side - 30)
        out[i, 16:44, x : x + 20] = colour
        out[i, 50:56, 6:58] = (10, 120, 250, 160)  # semi-transparent edge: premultiplied resampling matters
    return out


def make_pack(folder: Path, n: int, *, emoji: bool = True, author: str = "me", title: str = "Test pack") -> Path:
    """A pack folder of ``n`` short lossless APNG stickers plus a character picture (the app's layout)."""
    (folder / "stickers").mkdir(parents=True, exist_ok=True)
    stickers = []
    for i in range(n):
        sid = f"s{i + 1}"
        recipe = {"prompt": f"a cat, motion {i + 1}", "seed": i, "model_path": str(folder)}  # as the app writes
        data, _ = encode_apng(_frames(6, i), [100] * 6, loop=0, recipe=recipe)  # 0.6 s, lossless
        (folder / "stickers" / f"{sid}.png").write_bytes(data)
        stickers.append(PackSticker(id=sid, motion=f"motion {i + 1}", emoji=(EMOJI[i % 8],) if emoji else (),
                                    file=f"stickers/{sid}.png"))
    Image.fromarray(_frames(1, 99, 80)[0], "RGBA").save(folder / "character.png")
    save_pack(folder, PackProject(title=title, author=author, stickers=tuple(stickers)))
    return folder


@pytest.fixture(scope="module")
def pack3(tmp_path_factory) -> Path:
    return make_pack(tmp_path_factory.mktemp("pack3"), 3)


def _pil_frames(data: bytes) -> tuple[tuple[int, int], int, str]:
    with Image.open(io.BytesIO(data)) as im:
        return im.size, getattr(im, "n_frames", 1), im.format


def test_whatsapp_pack_round_trip(pack3, tmp_path):
    out = tmp_path / "Test.wastickers"
    events = []
    rep = export_pack(pack3, "whatsapp-pack", out, progress=events.append)
    steps = [e.message for e in events if isinstance(e, Progress) and e.stage == "pack"]
    assert steps[0] == "sticker 's1' → 01.webp" and steps[-1].startswith("wrote Test.wastickers")
    assert rep.ok and rep.out == str(out) and rep.bytes == out.stat().st_size
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert sorted(names) == sorted(["01.webp", "02.webp", "03.webp", "tray.png", "title.txt", "author.txt",
                                        "contents.json"])
        assert all("/" not in n and str(tmp_path) not in n for n in names)
        assert zf.read("title.txt").decode() == "Test pack" and zf.read("author.txt").decode() == "me"
        contents = json.loads(zf.read("contents.json"))["sticker_packs"][0]
        assert [s["emojis"] for s in contents["stickers"]] == [["👋"], ["😀"], ["🐱"]]
        for name in ("01.webp", "02.webp", "03.webp"):
            data = zf.read(name)
            size, frames, fmt = _pil_frames(data)
            assert (size, fmt) == ((512, 512), "WEBP") and frames >= 2 and len(data) <= 500_000
        tray = zf.read("tray.png")
        assert _pil_frames(tray) == ((96, 96), 1, "PNG") and len(tray) <= 50_000
        assert str(pack3) not in b"".join(zf.read(n) for n in names).decode("utf-8", "replace")
    assert [s["file"] for s in rep.stickers] == ["01.webp", "02.webp", "03.webp"]
    assert all(c["ok"] for s in rep.stickers for c in s["checks"])
    with zipfile.ZipFile(out) as zf:  # the recipe travels, local paths do not
        recipe = check_bytes(zf.read("02.webp"), PRESETS["whatsapp"])["recipe"]
    assert recipe["prompt"] == "a cat, motion 2" and "model_path" not in recipe


def test_telegram_pack_folder_round_trip(pack3, tmp_path):
    out = tmp_path / "tg"
    rep = export_pack(pack3, "telegram-pack", out)
    assert rep.archive == "folder" and sorted(p.name for p in out.iterdir()) == sorted(
        ["01.webm", "02.webm", "03.webm", "icon.png", "emoji.txt", "stickers.json"])
    for name in ("01.webm", "02.webm", "03.webm"):
        data = (out / name).read_bytes()
        assert len(data) <= 256_000
        with av.open(str(out / name)) as c:  # PyAV: an independent demuxer/decoder
            assert not c.streams.audio and c.streams.video[0].codec_context.name == "vp9"
            v = c.streams.video[0]
            assert max(v.width, v.height) == 512
            n = sum(1 for _ in c.decode(video=0))
            assert n >= 2
    assert _pil_frames((out / "icon.png").read_bytes())[:2] == ((100, 100), 1)
    assert (out / "icon.png").stat().st_size <= 32_000
    assert (out / "emoji.txt").read_text(encoding="utf-8").splitlines() == ["01.webm 👋", "02.webm 😀", "03.webm 🐱"]
    listing = json.loads((out / "stickers.json").read_text(encoding="utf-8"))
    assert listing["icon"] == "icon.png" and [s["file"] for s in listing["stickers"]] == ["01.webm", "02.webm",
                                                                                          "03.webm"]
    assert all(s["duration_ms"] <= 3000 for s in rep.stickers)


def test_signal_and_discord_packs_round_trip(pack3, tmp_path):
    out = tmp_path / "signal.zip"
    export_pack(pack3, "signal-pack", out)
    with zipfile.ZipFile(out) as zf:
        assert {"01.png", "02.png", "03.png", "cover.png", "emoji.txt", "title.txt", "author.txt",
                "stickers.json"} == set(zf.namelist())
        for n in ("01.png", "02.png", "03.png"):
            data = zf.read(n)
            with Image.open(io.BytesIO(data)) as im:
                assert im.size == (512, 512) and im.n_frames >= 2 and im.info.get("loop") == 0
            assert len(data) <= 300 * 1024
    out = tmp_path / "discord"
    rep = export_pack(pack3, "discord-pack", out)
    for s in rep.stickers:
        assert _pil_frames((out / s["file"]).read_bytes())[0] == (320, 320) and s["bytes"] <= 500_000
    assert [s["emoji"] for s in json.loads((out / "stickers.json").read_text("utf-8"))["stickers"]] == [
        ["👋"], ["😀"], ["🐱"]]


def test_line_pack_round_trip(tmp_path):
    pack = make_pack(tmp_path / "p8", 8, emoji=False)  # LINE needs no emoji, and exactly 8, 16 or 24
    out = tmp_path / "line.zip"
    rep = export_pack(pack, "line-pack", out)
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        assert names == {f"{i:02d}.png" for i in range(1, 9)} | {"main.png", "tab.png"}
        for n in sorted(names - {"main.png", "tab.png"}):
            with Image.open(io.BytesIO(zf.read(n))) as im:
                w, h = im.size
                assert w <= 320 and h <= 270 and max(w, h) >= 270 and 5 <= im.n_frames <= 20
                total = 0
                for k in range(im.n_frames):
                    im.seek(k)
                    total += im.info["duration"]
                assert round(total) % 1000 == 0 and 1000 <= total <= 4000
        with Image.open(io.BytesIO(zf.read("main.png"))) as im:
            assert im.size == (240, 240) and im.n_frames >= 5
        assert _pil_frames(zf.read("tab.png"))[:2] == ((96, 74), 1)
    assert out.stat().st_size <= 20_000_000 and rep.ok


def test_every_problem_listed_nothing_written(tmp_path):
    pack = make_pack(tmp_path / "bad", 2, emoji=False, author="")
    (pack / "stickers" / "s2.png").write_bytes(b"GIF89a" + bytes(40))  # a GIF (broken) named .png
    problems = check_pack(pack, "whatsapp-pack")
    texts = [str(p) for p in problems]
    assert any(t.startswith("pack: 2 generated sticker(s)") and "generate 1 more" in t for t in texts)
    assert "pack: no author; WhatsApp sticker pack (.wastickers) shows one — set the pack's author" in texts
    assert "sticker 's1': no emoji — set 1-3 emoji" in texts and "sticker 's2': no emoji — set 1-3 emoji" in texts
    assert any(t.startswith("sticker 's2': stickers/s2.png") for t in texts)
    out = tmp_path / "x.wastickers"
    with pytest.raises(ExportError) as ei:
        export_pack(pack, "whatsapp-pack", out)
    assert len(ei.value.problems) == len(problems) and "\n" not in str(ei.value)
    assert not out.exists() and not any(p.name.startswith(".x.wastickers") for p in tmp_path.iterdir())


def _hostile(tmp_path: Path, kind: str) -> Path:
    pack = make_pack(tmp_path / kind, 3)
    s1 = pack / "stickers" / "s1.png"
    if kind == "missing":
        s1.unlink()
    elif kind == "static-png":
        Image.fromarray(_frames(1, 0)[0], "RGBA").save(s1)  # a plain PNG, not an animated one
    elif kind == "text":
        s1.write_text("not an image")
    elif kind == "tiny":
        s1.write_bytes(encode_apng(_frames(3, 0, 8), [100] * 3)[0])
    elif kind == "symlink":
        secret = tmp_path / "outside.png"
        secret.write_bytes(s1.read_bytes())
        s1.unlink()
        os.symlink(secret, s1)
    return pack


@pytest.mark.parametrize("kind", ["missing", "static-png", "text", "tiny", "symlink"])
def test_hostile_sticker_files_are_problems(tmp_path, kind):
    pack = _hostile(tmp_path, kind)
    problems = check_pack(pack, "discord-pack")
    assert [p.sticker for p in problems] == ["s1"] and problems[0].rule in ("file", "size")
    with pytest.raises(ExportError):
        export_pack(pack, "discord-pack", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_hostile_projects_typed_errors(tmp_path):
    with pytest.raises(InputError):
        check_pack(tmp_path, "whatsapp-pack")  # no pack.json
    pack = make_pack(tmp_path / "p", 3)
    raw = json.loads((pack / "pack.json").read_text())
    raw["stickers"][0]["file"] = "../../etc/passwd"
    (pack / "pack.json").write_text(json.dumps(raw))
    with pytest.raises(InputError):
        check_pack(pack, "whatsapp-pack")
    empty = make_pack(tmp_path / "empty", 0)
    assert [p.rule for p in check_pack(empty, "telegram-pack")] == ["count"]
    with pytest.raises(InputError):
        check_pack(empty, "nope-pack")
    for preset, out in (("whatsapp-pack", "x.zip"), ("line-pack", "folder"), ("telegram-pack", "x.tar")):
        with pytest.raises(InputError):
            export_pack(empty, preset, tmp_path / out)


def test_folder_output_never_replaces_other_files(pack3, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(RdtfError):
        export_pack(pack3, "discord-pack", out)
    assert (out / "holiday.jpg").exists() and len(list(out.iterdir())) == 1
    with pytest.raises(Cancelled):  # a stop mid-pack writes nothing
        export_pack(pack3, "signal-pack", tmp_path / "stopped.zip", should_stop=lambda: True)
    assert not list(tmp_path.glob("*stopped*"))


def test_request_wire_and_backend(pack3, tmp_path):
    req = PackExportRequest(folder=str(pack3), preset="discord-pack", check_only=True)
    op, params = to_wire(req)
    assert op == "export-pack" and from_wire(op, params) == req
    req.validate()
    with pytest.raises(InputError):
        PackExportRequest(folder=str(pack3), preset="discord-pack").validate()  # an export needs out
    rep = EngineBackend().export_pack(req, lambda _e: None, lambda: False)
    assert rep["ok"] and rep["out"] is None and len(rep["stickers"]) == 3
    # through the worker: an export job's problems come back as one Failed event naming ExportError
    bad = make_pack(tmp_path / "bad", 3, emoji=False)
    stream = io.StringIO()
    worker = Worker(EngineBackend(), Output(stream))
    worker.receive("j1", "export-pack", {"folder": str(bad), "preset": "discord-pack", "out": str(tmp_path / "d")})
    worker.run_job(worker.queue.get())
    last = json.loads(stream.getvalue().splitlines()[-1])
    assert last["id"] == "j1" and last["error_type"] == "ExportError" and "no emoji" in last["message"]


def test_cli_pack_export(pack3, tmp_path, capsys):
    assert cli_main(["export", str(pack3), "--preset", "discord-pack", "--check", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["ok"] and {"bytes", "duration_ms", "size", "frames", "checks"} <= set(rep["stickers"][0])
    assert cli_main(["export", str(pack3), "--preset", "whatsapp-pack", "--out", str(tmp_path / "a.zip")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: whatsapp-pack writes NAME.wastickers")
    assert cli_main(["export", str(pack3), "--preset", "discord", "--out", str(tmp_path / "a.png")]) == 2
    assert "pack preset" in capsys.readouterr().err
    bad = make_pack(tmp_path / "bad", 3, emoji=False)
    assert cli_main(["export", str(bad), "--preset", "discord-pack", "--check"]) == 1
    assert "[FAIL] sticker 's1': no emoji" in capsys.readouterr().out
    assert cli_main(["export", str(bad), "--preset", "discord-pack", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sticker 's3': no emoji — set 1-3 emoji" in err[0] and not (tmp_path / "d").exists()


def test_pack_presets_name_their_sticker_presets():
    for pp in PACK_PRESETS.values():
        assert pp.sticker_preset.name == pp.sticker and pp.sources and pp.name.endswith("-pack")


def test_title_name_and_byte_cap_problems(tmp_path, monkeypatch):
    pack = make_pack(tmp_path / "long", 3, title="T" * 70)
    raw = json.loads((pack / "pack.json").read_text())
    raw["stickers"][1]["name"] = "a name far too long for a discord sticker"
    (pack / "pack.json").write_text(json.dumps(raw))
    assert [str(p) for p in check_pack(pack, "telegram-pack")] == [
        "pack: the title is 70 characters, the cap is 64 — shorten the title to 64 characters or fewer"]
    # a cap no sticker can meet after the byte search: each sticker is reported, with the fix
    monkeypatch.setitem(PRESETS, "discord", dataclasses.replace(PRESETS["discord"], max_bytes=300))
    problems = check_pack(pack, "discord-pack")
    assert [(p.sticker, p.rule) for p in problems] == [("s2", "name"), ("s1", "bytes"), ("s2", "bytes"),
                                                       ("s3", "bytes")]
    assert "cannot get the file under" in problems[1].message and "shorten it" in problems[1].fix
