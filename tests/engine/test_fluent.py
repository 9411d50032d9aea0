"""Fluent sources: reserved faces never listed, deterministic split by base code point, captions, windows, the
shard cache and ``builtin:mixed`` (tiny fake packages, see fluent_fixtures.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fluent_fixtures import RESERVED, STEMS, install_fake_npm, make_tarballs

from rdtf_engine.cli.main import main
from rdtf_engine.core.errors import DependencyError, InputError
from rdtf_engine.data.fluent import WINDOW, FluentSource, listing_report, window, window_durations
from rdtf_engine.data.fluent_cache import pack_cache
from rdtf_engine.data.fluent_names import sequence_name
from rdtf_engine.data.fluent_split import code_points
from rdtf_engine.data.fluent_store import FetchedStore, find_store, split_of
from rdtf_engine.data.sources import open_source


@pytest.fixture(scope="module")
def fetched(tmp_path_factory):
    """A home with the fake packages fetched (RDTF_HOME set for the module's tests)."""
    tmp = tmp_path_factory.mktemp("fluent")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RDTF_HOME", str(tmp / "home"))
        mp.delenv("RDTF_FLUENT_CACHE", raising=False)
        install_fake_npm(tmp, make_tarballs(tmp / "npm"), mp)
        assert main(["data", "fetch", "fluent", "--workers", "1"]) == 0
        yield tmp


def test_reserved_sequences_are_dropped_by_any_code_point():
    listing = ["1f600", "1f64f-1f3fb", "1f645-200d-2640-fe0f", "1f926-1f3fd-200d-2642-fe0f", "1f970",
               "1f9d1-200d-1f91d-200d-1f9d1", "1f44b-1f600", "1f97a", "1f910",  # all reserved
               "1f5ff", "1f650", "1f97b", "1f44b-1f3fd", "1f9d1-200d-1f4bb", "1f469-200d-2764-fe0f-200d-1f468"]
    assert [s for s in listing if split_of(s) is None] == listing[:9]


def test_split_is_by_base_code_point_and_matches_the_emoji_holdout():
    from rdtf_engine.data.emoji import is_heldout_emoji

    bases = range(0x1F300, 0x1F5FF)
    held = [b for b in bases if split_of(f"{b:x}") == "holdout"]
    assert 0.06 < len(held) / len(bases) < 0.14 and all(is_heldout_emoji(b) for b in held)
    for b in held[:10]:  # every variant of a held-out base is held out
        assert {split_of(f"{b:x}-1f3fd"), split_of(f"{b:x}-200d-2640-fe0f")} == {"holdout"}
    assert split_of("1f980-1f3fd") == "pack-animals" and split_of("1f680") == "pack-vehicles"


@pytest.mark.parametrize(("stem", "name"), [
    ("1f44b-1f3fd", "waving hand, medium skin tone"), ("1f469-200d-1f4bb", "woman technologist"),
    ("1f3c3-200d-2640-fe0f", "woman runner"), ("1f468-200d-1f469-200d-1f467", "family: man, woman, girl"),
    ("1f469-1f3fb-200d-2764-fe0f-200d-1f468-1f3ff", "couple with heart: woman, man, light skin tone, dark skin tone"),
    ("26f9-fe0f-200d-2640-fe0f", "woman with ball"), ("1f9d1-1f3fe-200d-2696-fe0f", "judge, medium-dark skin tone"),
    ("1f468-200d-1f9b0", "man with red hair"), ("2764-fe0f-200d-1f525", "heart on fire"), ("0037-fe0f-20e3", "keycap 7"),
    ("1f1eb-1f1f7", "flag FR"), ("1f3f4-e0067-e0062-e0073-e0063-e0074-e007f", "flag of Scotland"),
    ("2764-fe0f", "red heart"), ("1fae8", "shaking face"),
])
def test_captions_name_the_subject(stem, name):
    assert sequence_name(code_points(stem)) == name


def test_windows_span_a_meaningful_part_of_the_loop():
    rng = np.random.default_rng(0)
    for n in (4, 9, 24, 72, 150):
        for _ in range(50):
            start, stride, length = window(n, rng)
            assert length == min(n, length) and min(n, WINDOW[0]) <= length <= WINDOW[1]
            last = start + (length - 1) * stride
            assert 0 <= start and last < n
            if n >= 24:
                assert (last - start + stride) >= 0.4 * n - stride
    durs = window_durations([40] * 10, 1, 3, 3)  # frames 1, 4, 7 stand for 1-3, 4-6, 7-9
    assert durs == [120, 120, 120] and window_durations([40] * 10, 2, 4, 2) == [160, 160]


def test_source_yields_windows_of_the_training_split_only(fetched):
    src = open_source("builtin:fluent", 32, seed=3)
    assert isinstance(src, FluentSource) and len(src) == 8 * len(src.files)
    stems = {it.stem for it in src.files}
    expected = {s for s in STEMS if split_of(s) == "train" and STEMS[s] >= 4}
    assert stems == expected and not stems & RESERVED
    seen = set()
    for i in range(0, len(src), 3):
        c = src[i]
        n = c.labels["window"][2]
        assert c.frames.shape == (n, 32, 32, 4) and min(STEMS[c.labels["object"]], 8) <= n <= 16
        assert sum(c.durations_ms) == 40 * n * c.labels["window"][1] or c.durations_ms[-1] < 40 * c.labels["window"][1]
        assert c.caption.endswith(c.labels["name"]) and "motion" not in c.labels
        seen.add(c.labels["object"])
    assert seen == stems
    assert np.array_equal(src[7].frames, open_source("builtin:fluent", 32, seed=3)[7].frames)
    d = src.describe()
    assert d["splits"]["reserved"] == len(RESERVED) and d["clips"] == len(src) and d["motions"] == {}


def test_training_windows_are_mirrored_and_rescaled_the_held_out_ones_never(fetched):
    from rdtf_engine.data.fluent import MIRROR_P, SCALE_RANGE
    from rdtf_engine.data.pack_windows import jitter_frames
    from rdtf_engine.formats.timing import fit_canvas

    src = open_source("builtin:fluent", 32, seed=3)
    plans = [src.plan(i).labels for i in range(len(src))]
    mirrored = [p["mirror"] for p in plans]
    assert 0 < sum(mirrored) < len(plans) and abs(sum(mirrored) / len(plans) - MIRROR_P) < 0.2
    assert all(SCALE_RANGE[0] <= p["scale"] <= SCALE_RANGE[1] for p in plans)
    # clip i is the plain window, mirrored and rescaled as its labels say (the fixture's disc moves left → right)
    i = mirrored.index(True)
    c = src[i]
    start, stride, n = c.labels["window"]
    plain = fit_canvas(src.decode(c.labels["object"]).frames[[start + k * stride for k in range(n)]], 32, 32)
    assert np.array_equal(c.frames, jitter_frames(plain, True, 0.0, c.labels["scale"]))
    xs = [np.nonzero(f[..., 3].any(0))[0].mean() for f in c.frames]
    assert xs[0] > xs[-1]  # mirrored: it now moves right → left
    assert src.describe()["augmentation"] == {"mirror_p": MIRROR_P, "scale": list(SCALE_RANGE)}
    # a name with a side in it is never mirrored: a mirrored "left arrow" would be a right arrow
    from rdtf_engine.data import fluent

    named = fluent.sequence_name
    try:
        fluent.sequence_name = lambda cps: "left arrow"
        assert not any(src.plan(k).labels["mirror"] for k in range(len(src)))
    finally:
        fluent.sequence_name = named
    # held-out and pack-evaluation clips are what the artist drew
    for spec in ("builtin:fluent-holdout", "builtin:fluent-pack-animals"):
        other = open_source(spec, 32, seed=3)
        assert all("mirror" not in other.plan(k).labels for k in range(len(other)))
        assert other.describe()["augmentation"] is None


def test_holdout_and_pack_sources_are_disjoint_from_training(fetched):
    hold = open_source("builtin:fluent-holdout", 32)
    assert {it.stem for it in hold.files} == {"1f407", "1f407-200d-2b1b"}
    assert {it.stem for it in open_source("builtin:fluent-pack-animals", 32).files} == {"1f980"}
    bank = hold.identity_sprites()
    assert set(bank) >= {"1f407", "1f44b"} and not set(bank) & RESERVED
    assert all(s.shape[2] == 4 and s[..., 3].any() for s in bank.values())
    with pytest.raises(InputError):
        open_source("builtin:fluent-pack-sky", 32)  # this copy holds no sky theme
    with pytest.raises(InputError):
        open_source("builtin:fluent-nope", 32)


def test_pack_cache_round_trip_is_what_the_source_reads_without_the_packages(fetched, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RDTF_HOME", str(fetched / "home"))
    out = tmp_path / "cache"
    assert main(["data", "pack-cache", "fluent", "--out", str(out), "--size", "32", "--every", "2",
                 "--splits", "train,holdout,pack-animals", "--json"]) == 0
    index = json.loads(capsys.readouterr().out)
    assert index["files"] == sum(1 for s in STEMS if split_of(s) and STEMS[s] >= 4)
    assert all(s["bytes"] <= 15 * 2**20 for s in index["shards"])
    assert "waving hand, medium skin tone" in (out / "captions.txt").read_text().splitlines()
    half = pack_cache(tmp_path / "half", size=16, every=4, alpha_quality=50, part=(2, 2))
    assert half["files"] == sum(1 for s in STEMS if split_of(s) in ("train", "holdout") and STEMS[s] >= 4) // 2
    monkeypatch.setenv("RDTF_HOME", str(tmp_path / "bare-home"))  # no fetched packages here
    monkeypatch.setenv("RDTF_FLUENT_CACHE", str(out))
    store = find_store()
    assert store.kind == "packed" and not set(store.items) & RESERVED
    assert store.items["1f44b"].frames == 12 and store.items["1f44b"].frame_ms == (80,) * 12
    src = open_source("builtin:fluent", 24, seed=1)
    c = src[0]
    assert c.frames.shape[1:] == (24, 24, 4) and 8 <= c.num_frames <= 12 and c.durations_ms[0] % 80 == 0
    assert listing_report(store)["by_split"] == {"holdout": 2, "pack-animals": 1, "train": len(src.files)}
    monkeypatch.setenv("RDTF_FLUENT_CACHE", str(tmp_path / "nothing"))
    with pytest.raises(DependencyError, match="rdtf data fetch fluent"):
        open_source("builtin:fluent", 32)


def test_mixed_source_draws_both_parts(fetched):
    pytest.importorskip("PIL")
    from rdtf_engine.data.emoji import find_font

    if find_font() is None:
        pytest.skip("no emoji font")
    src = open_source("builtin:mixed", 32, num_clips=200, seed=0)
    kinds = [src.labels(i)["source"] for i in range(len(src))]
    share = kinds.count("fluent") / len(kinds)
    assert 0.3 < share < 0.5 and kinds.count("emoji") + kinds.count("fluent") == len(kinds)
    i = kinds.index("fluent")
    assert src[i].labels["source"] == "fluent" and src[i].frames.shape[1:] == (32, 32, 4)
    assert src.describe()["parts"]["fluent"] == kinds.count("fluent")
    # the Fluent part's captions carry the style tag, in the plan (text caching) and the clip alike
    fluent_caps = {src[k].caption for k in range(len(src)) if kinds[k] == "fluent"}
    emoji_caps = {src.plan(k).caption for k in range(len(src)) if kinds[k] == "emoji"}
    assert all(c.endswith(", in 3d style") and c.count("3d") == 1 for c in fluent_caps)
    assert src.plan(i).caption == src[i].caption
    assert not any("3d style" in c for c in emoji_caps)


def test_fetched_store_detects_changed_files(fetched, monkeypatch):
    monkeypatch.setenv("RDTF_HOME", str(fetched / "home"))
    store = FetchedStore.open()
    path = store.folder / "assets" / "2764-fe0f.webp"
    original = path.read_bytes()
    try:
        path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        with pytest.raises(Exception, match="changed since"):
            store.read("2764-fe0f")
    finally:
        path.write_bytes(original)


def test_info_command(fetched, monkeypatch, capsys):
    monkeypatch.setenv("RDTF_HOME", str(fetched / "home"))
    assert main(["data", "info", "fluent", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["by_split"]["reserved"] == len(RESERVED) and report["store"]["kind"] == "fetched"


def test_eval_on_real_fluent_clips(fetched, tiny_run, tmp_path):
    """`rdtf eval --data builtin:fluent-holdout`: real clips without motion labels — no motion accuracy, but the
    Fréchet distance in the procedural classifier's feature space, identity against the Fluent sprites, and
    coherence / sharpness at export beside the real clips."""
    from rdtf_engine.eval.classifier import save_classifier, train_motion_classifier
    from rdtf_engine.jobs.evaluate import evaluate_model

    clf = train_motion_classifier(open_source("builtin:shapes", 32, num_clips=32, seed=5), 5, batch_size=8,
                                  max_clips=32, input_size=32, width=8)
    folder = save_classifier(clf, tmp_path / "clf")
    rep = evaluate_model(str(tiny_run[0]), "builtin:fluent-holdout", num_clips=2, steps=1, device="cpu",
                         classifier_path=str(folder), val_loss=False)
    assert rep["clips"] == 2 and rep["prompt_suffix"] == ""  # the tiny model never saw the tagged mix
    for part in ("t2v", "it2v"):
        r = rep[part]
        assert r["motion_accuracy"] is None and r["frechet_distance"] >= 0.0
        assert 0.0 <= r["identity_accuracy"] <= 1.0
        c = r["coherence"]
        assert c["change"]["real"]["mean"] > 0.0 and c["frozen"]["real"] == 0  # the fixture's discs move
        assert c["change"]["generated"]["mean"] is not None and 0 <= c["frozen"]["generated"] <= 2
        assert r["sharpness"]["real"]["mean"] > 0.0 and r["sharpness"]["export_size"] == 512


def test_style_tag_follows_the_models_training_mix():
    from types import SimpleNamespace

    from rdtf_engine.data.mixed_source import FLUENT_STYLE
    from rdtf_engine.jobs.evaluate import style_tag

    mixed = SimpleNamespace(data_summary={"fluent_style": FLUENT_STYLE.strip(", ")})
    assert style_tag(mixed, "builtin:fluent-holdout") == FLUENT_STYLE
    assert style_tag(mixed, "builtin:emoji-holdout") == ""
    assert style_tag(SimpleNamespace(data_summary={}), "builtin:fluent-holdout") == ""
    assert style_tag(SimpleNamespace(data_summary=None), "builtin:fluent") == ""
