"""Property-based fuzzing of the CLI: random argv for each subcommand, run in-process through
``rdtf_engine.cli.main.main``. Whatever the arguments: no traceback, no uncaught exception; exit 0 (or 1 for a
check that fails), or 2 with exactly one ``error:`` line; argparse usage errors count as exit 2.

Real generation and training never run here: models are names that do not exist and training data is always
bad, so every request is validated and refused (or, for import/export/check, handled on tiny files).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from rdtf_engine.cli.main import main
from rdtf_engine.platforms.presets import PRESETS

NASTY = ["", " ", "-1", "0", "1", "2", "7", "64", "1000", "nan", "-nan", "inf", "-inf", "1e309", "1e-310", "3.5",
         "99999999999999999999999", "-99999999999999999999999", "0x10", "abc", "..", "/", "💥", "a" * 2000,
         "=cmd|' /C calc'!A0", "\u202eevil", "{}", "[]", "null", '{"a": NaN}', '{"prompt": "x"}', "--", "-"]
FUZZ = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """Files and folders the fuzzer picks paths from: junk, missing, empty, a tiny valid GIF, a frames folder."""
    root = tmp_path_factory.mktemp("fuzz-cli")
    (root / "junk.gif").write_bytes(b"GIF89a" + bytes(range(200)))
    (root / "text.txt").write_text("not a sticker")
    (root / "empty").mkdir()
    frames = [Image.new("RGBA", (16, 16), (80 * i, 0, 0, 255)) for i in range(2)]
    frames[0].save(root / "ok.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    (root / "frames").mkdir()
    for i, f in enumerate(frames):
        f.save(root / "frames" / f"{i:03d}.png")
    (root / "out").mkdir()
    inputs = [str(root / n) for n in ("junk.gif", "text.txt", "empty", "ok.gif", "frames", "missing.gif")]
    outs = [str(root / "out" / n) for n in ("a.gif", "b.webm", "c.png", "d.webp", "e", "f.txt", "")]
    return {"in": inputs, "out": outs + [str(root / "text.txt")], "root": root}


def _value(kind: str, pool: dict):
    if kind == "path":
        return st.sampled_from(pool["in"] + NASTY[:3])
    if kind == "out":
        return st.sampled_from(pool["out"])
    if kind == "model":  # never the default model: nothing may start a real generation or the demo training
        return st.sampled_from(["no-such-model", pool["in"][0], pool["in"][2], "../x", ""])
    if kind == "data":  # never usable data: nothing may start a real training run
        return st.sampled_from([*pool["in"][:3], pool["in"][5], "builtin:nope", ""])
    if kind == "preset":
        return st.sampled_from([*PRESETS, "nope", ""])
    if kind in CHOICES:
        return st.sampled_from([*CHOICES[kind], "nope"])
    if kind == "int":
        return st.one_of(st.integers(-3, 64).map(str), st.integers(-2**70, 2**70).map(str), st.sampled_from(NASTY))
    if kind == "float":
        return st.one_of(st.floats(-2, 40).map(repr), st.floats().map(repr), st.sampled_from(NASTY))
    return st.one_of(st.sampled_from(NASTY), st.text(max_size=30).filter(lambda t: "\x00" not in t))


CHOICES = {"scheduler": ("dpm", "unipc", "ddim"), "curriculum": ("none", "linear", "adaptive"), "temporal": ("sti", "conv3d"),
           "refattn": ("on", "off", "all"), "tpreset": ("tiny", "small", "paper"),
           "device": ("auto", "cpu", "cuda", "cuda:1", "tpu:7", "mps", "", "cpu:0"),
           "mp": ("auto", "no", "bf16", "fp16")}


SPECS: dict[str, dict[str, str]] = {
    "generate": {"--prompt": "str", "--model": "model", "--frames": "int", "--size": "int", "--steps": "int",
                 "--seed": "int", "--guidance": "float", "--image-guidance": "float", "--strength": "float",
                 "--scheduler": "scheduler", "--duration": "int", "--init": "path", "--keep": "str",
                 "--from": "path", "--out": "out", "--device": "device"},
    "train": {"--data": "data", "--out": "out", "--preset": "tpreset", "--steps": "int", "--batch-size": "int",
              "--lr": "float", "--size": "int", "--seed": "int", "--resume": "flag", "--curriculum": "curriculum",
              "--temporal": "temporal", "--reference-attention": "refattn", "--autoencoder": "path",
              "--ae-steps": "int", "--init-from": "model", "--grad-accum": "int", "--checkpoint-every": "int",
              "--max-minutes": "float", "--max-clips": "int", "--device": "device", "--mixed-precision": "mp",
              "--draft-size": "int", "--size-delta-rank": "int"},
    "train-autoencoder": {"--data": "data", "--out": "out", "--preset": "tpreset", "--steps": "int",
                          "--size": "int", "--batch-size": "int", "--lr": "float", "--max-frames": "int",
                          "--device": "device", "--draft-size": "int"},
    "import": {"_path": "path", "--out": "out", "--size": "int", "--max-frames": "int", "--json": "flag"},
    "export": {"_path": "path", "--preset": "preset", "--out": "out", "--fps": "float", "--loop": "int",
               "--size": "int", "--quality": "int", "--colors": "int", "--max-kb": "float", "--recipe": "str",
               "--json": "flag"},
    "check": {"_path": "path", "--preset": "preset", "--json": "flag"},
}
REQUIRED = {"generate": ("--prompt", "--out"), "train": ("--out",), "train-autoencoder": ("--data", "--out"),
            "import": ("_path", "--out"), "export": ("_path", "--preset", "--out"), "check": ("_path", "--preset")}


@st.composite
def argv_for(draw, command: str, pool: dict) -> list[str]:
    spec = SPECS[command]
    chosen = set(REQUIRED[command]) if draw(st.integers(0, 7)) or command == "generate" else set()
    chosen |= set(draw(st.lists(st.sampled_from(sorted(spec)), max_size=6)))
    argv = [command]
    for opt in sorted(chosen):
        kind = spec[opt]
        if kind == "flag":
            argv.append(opt)
            continue
        value = draw(_value(kind, pool))
        if opt == "_path":
            argv.insert(1, value)
        else:
            argv += [opt, value] if not value.startswith("-") else [f"{opt}={value}"]
    if command == "generate" and "--model" not in chosen:
        argv += ["--model", "no-such-model"]
    if command == "train" and "--data" not in chosen:
        argv += ["--data", pool["in"][1]]
    return argv


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    usage = False
    try:
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse: a usage error (2) or --help (0)
            rc, usage = int(exc.code or 0), True
    finally:
        for sig, h in handlers.items():  # the CLI installs Ctrl-C handlers; keep pytest's
            signal.signal(sig, h)
    _out, err = capsys.readouterr()
    assert "Traceback" not in err, (argv, err)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    if usage:
        assert rc in (0, 2), (argv, rc, err)
    elif rc == 2:
        assert len(errors) == 1, (argv, err)
    else:
        assert rc == 0 or (rc == 1 and argv[0] == "check"), (argv, rc, err)
        assert not errors, (argv, err)
    return rc, err


@pytest.mark.parametrize("command", ["generate", "import", "export", "check"])
def test_fuzz_subcommand(command, pool, capsys):
    @FUZZ
    @given(argv=argv_for(command, pool))
    def run(argv):
        run_cli(argv, capsys)

    run()


@pytest.mark.parametrize("command", ["train", "train-autoencoder"])
def test_fuzz_training_commands(command, pool, capsys):
    @settings(FUZZ, max_examples=20)
    @given(argv=argv_for(command, pool))
    def run(argv):
        run_cli(argv, capsys)

    run()


@FUZZ
@given(argv=st.lists(st.sampled_from([*SPECS, "models", "--json", "--help", "--version", *NASTY[:12], "--out"]),
                     max_size=5))
def test_fuzz_top_level(argv, capsys):
    if argv[:1] in (["eval"], ["worker"]):
        return
    run_cli(argv, capsys)


def test_known_tracebacks_are_one_line_errors(pool, capsys, tmp_path):
    """The cases found by hand, kept as fixed examples."""
    out = str(tmp_path / "o.gif")
    cases = [
        ["generate", "--prompt", "x", "--seed", "99999999999999999999999", "--out", out, "--model", "no-such-model"],
        ["generate", "--prompt", "x", "--device", "tpu:7", "--out", out, "--model", "no-such-model"],
        ["generate", "--prompt", "x" * 10_000, "--out", out, "--model", "no-such-model"],
        ["generate", "--prompt", "x", "--init", str(tmp_path / "missing-folder"), "--out", out],
        ["train", "--data", pool["in"][3], "--out", str(tmp_path / "r"), "--checkpoint-every", "0"],
        ["train", "--data", pool["in"][3], "--out", str(tmp_path / "r"), "--ae-steps", "0"],
        ["train", "--data", pool["in"][3], "--out", str(tmp_path / "r"), "--seed", "-3"],
        ["export", pool["in"][3], "--preset", "gif", "--out", out, "--max-kb", "nan"],
        ["export", pool["in"][3], "--preset", "gif", "--out", out, "--max-kb", "inf"],
        ["export", pool["in"][3], "--preset", "gif", "--out", out, "--recipe", '{"a": NaN}'],
        ["export", pool["in"][3], "--preset", "gif", "--out", out, "--recipe", "[1, 2]"],
        ["check", pool["in"][1], "--preset", "telegram"],
        ["import", pool["in"][1], "--out", str(tmp_path / "ds")],
        ["import", pool["in"][1], "--max-frames=--", "--out", str(tmp_path / "ds")],  # argparse: [] for an int
    ]
    import torch

    if not torch.cuda.is_available():
        cases.append(["generate", "--prompt", "x", "--device", "cuda", "--out", out, "--model", "no-such-model"])
    for argv in cases:
        rc, err = run_cli(argv, capsys)
        assert rc == 2, (argv, err)
    assert not (tmp_path / "r").exists() and not (tmp_path / "ds").exists()  # nothing left behind
    assert not Path(out).exists()


def test_import_of_only_rejected_files_is_an_error(pool, capsys, tmp_path):
    rc, err = run_cli(["import", pool["in"][0], "--out", str(tmp_path / "ds")], capsys)
    assert rc == 2 and "could be imported" in err
    assert not (tmp_path / "ds").exists()


def test_the_pool_holds_a_valid_sticker(pool):
    """Guard for the fuzzers themselves: the valid GIF really is valid, so accepted paths get exercised."""
    from rdtf_engine.formats.loader import load_clip

    assert load_clip(pool["in"][3]).num_frames == 2
