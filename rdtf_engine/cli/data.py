"""``rdtf data``: training data that is downloaded or pre-processed rather than shipped.

- ``rdtf data fetch fluent``       download the animated Fluent Emoji with npm, unpack safely, verify, manifest;
- ``rdtf data info fluent``        what the fetched copy (or the shard cache) holds: splits, reserved, frames;
- ``rdtf data pack-cache fluent``  write the compact webdataset shard cache (for hosts without a registry);
- ``rdtf data encode-shards``      encode a training source once into latent shards (``rdtf train --data shards:DIR``
                                   streams them a window at a time: data larger than memory).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rdtf_engine.cli.reporter import Reporter
from rdtf_engine.core.errors import InputError
from rdtf_engine.core.events import Progress
from rdtf_engine.data.fluent_split import PACK_EVAL_SETS

DATASETS = ("fluent",)


def _progress(rep: Reporter, stage: str):
    def say(*args) -> None:
        if len(args) == 3:  # (message, step, total) from the fetch
            rep(Progress(stage, args[1], args[2], args[0]))
        else:
            rep(Progress(stage, args[0], args[1]))
    return say


def _emit(args, rep: Reporter, report: dict, lines: list[str]) -> None:
    if args.json or rep.mode == "jsonl":
        print(json.dumps(report, indent=None if rep.mode == "jsonl" else 2))
    else:
        print("\n".join(lines))


def cmd_fetch(args, rep: Reporter) -> int:
    from rdtf_engine.data.fluent import listing_report
    from rdtf_engine.data.fluent_fetch import fetch_fluent, fluent_dir
    from rdtf_engine.data.fluent_store import FetchedStore

    if args.json:
        rep.stream = sys.stderr
    manifest = fetch_fluent(from_dir=Path(args.from_dir) if args.from_dir else None, workers=args.workers,
                            progress=_progress(rep, "fetch"))
    store = FetchedStore.open(fluent_dir())
    assert store is not None
    listing = listing_report(store)
    c, t = manifest["counts"], manifest["timing"]
    report = {"counts": c, "timing": t, "packages": manifest["packages"], "rejected": manifest["rejected"],
              "listing": listing}
    lines = [(f"fetched {c['files']} Fluent Emoji files ({c['bytes'] / 2**20:.0f} MiB): {c['animated']} animated, "
             f"{c['still']} still, {c['rejected']} rejected; download {t['download_s']} s, verify {t['verify_s']} s"),
             *[f"  {p['name']}@{p['version']}: {p['files']} files, {p['integrity'][:23]}… "
               f"({p['integrity_checked']})" for p in manifest["packages"]],
             f"  usable files per split: {listing['by_split']}",
             "  (Fluent Emoji © Microsoft, MIT licence; stored under the user cache, data/fluent)"]
    _emit(args, rep, report, lines)
    return 0


def cmd_info(args, rep: Reporter) -> int:
    from rdtf_engine.data.fluent import listing_report
    from rdtf_engine.data.fluent_store import find_store

    report = listing_report(find_store())
    lines = [f"{report['files']} files ({report['store']['kind']}); per split: {report['by_split']}",
             f"base code points per split: {report['base_code_points']}",
             f"frames of usable files: {json.dumps(report['frames'])}"]
    _emit(args, rep, report, lines)
    return 0


def cmd_pack_cache(args, rep: Reporter) -> int:
    from rdtf_engine.data.fluent_cache import pack_cache

    if args.json:
        rep.stream = sys.stderr
    splits = tuple(s for s in args.splits.split(",") if s)
    allowed = ("train", "holdout", *(f"pack-{theme}" for theme in PACK_EVAL_SETS))
    bad = [s for s in splits if s not in allowed]
    if bad or not splits:
        raise InputError(f"--splits takes a comma list of {', '.join(allowed)}; got {args.splits!r}")
    try:
        part = tuple(int(v) for v in args.part.split("/"))
        k, n = part
    except ValueError:
        raise InputError(f"--part must be K/N, e.g. 1/2; got {args.part!r}") from None
    index = pack_cache(Path(args.out), size=args.size, every=args.every, quality=args.quality, splits=splits,
                       progress=_progress(rep, "pack"), alpha_quality=args.alpha_quality, part=(k, n),
                       variants=args.variants,
                       workers=args.workers)
    lines = [(f"wrote {index['files']} clips in {len(index['shards'])} shard(s), {index['bytes'] / 2**20:.1f} MiB "
             f"({index['size']} px, every {index['every']} frame(s), quality {index['quality']}, part {index['part']}) in "
             f"{index['seconds']} s; read it with RDTF_FLUENT_CACHE={args.out}")]
    _emit(args, rep, index, lines)
    return 0


def cmd_encode_shards(args, rep: Reporter) -> int:
    import time

    from rdtf_engine.core.config import ModelConfig
    from rdtf_engine.core.device import resolve_device
    from rdtf_engine.data.latent_shards import encode_shards
    from rdtf_engine.data.sources import open_source
    from rdtf_engine.training.autoencoder import load_autoencoder
    from rdtf_engine.training.finetune import folder_model_config, init_model

    if args.json:
        rep.stream = sys.stderr
    device, _ = resolve_device(args.device, "auto")
    folder, card = init_model(args.model)
    # By default the size a fine-tune of the model trains at, so `train --data shards:… --init-from MODEL` takes
    # the shards as they are: the shipped 256 px default is fine-tuned at its 128 px draft size.
    size = args.size or ModelConfig().resolved(folder_model_config(folder, card)).size
    vae, scale = load_autoencoder(folder, device)
    source = open_source(args.data, size, num_clips=args.max_clips, seed=args.seed, training=True)
    t0 = time.perf_counter()
    rep.install_signals()
    index = encode_shards(source, vae, scale, Path(args.out), data=args.data, size=size,
                          clips_per_shard=args.clips_per_shard, progress=_progress(rep, "encode"),
                          should_stop=rep.should_stop)
    index = {**index, "seconds": round(time.perf_counter() - t0, 1)}
    lines = [(f"encoded {index['clips']} clips ({index['frames']} frames, {size} px) with the autoencoder of "
              f"{card.name} into {len(index['train'])} training shard(s) and {1 if index['val'] else 0} held-out "
              f"shard in {index['seconds']} s; train on them with --data shards:{args.out} --init-from {args.model}"
              + (f" --size {size}" if args.size else ""))]
    _emit(args, rep, index, lines)
    return 0


def add_data_parsers(sub) -> None:
    d = sub.add_parser("data", help="download or pre-process training data (Fluent Emoji)")
    dsub = d.add_subparsers(dest="data_command", required=True)

    f = dsub.add_parser("fetch", help="download the animated Fluent Emoji with npm and verify them")
    f.add_argument("dataset", choices=DATASETS)
    f.add_argument("--from", dest="from_dir", default=None,
                   help="folder of already downloaded lobehub-fluent-emoji-anim-N-<version>.tgz (no npm needed)")
    f.add_argument("--workers", type=int, default=0, help="decoder processes for verification (0 = all cores)")
    f.add_argument("--json", action="store_true", help="print the report as JSON")
    f.set_defaults(func=cmd_fetch)

    i = dsub.add_parser("info", help="splits, reserved and frame counts of the fetched data or shard cache")
    i.add_argument("dataset", choices=DATASETS)
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)

    p = dsub.add_parser("pack-cache", help="write the compact webdataset shard cache (≤ 15 MiB per shard)")
    p.add_argument("dataset", choices=DATASETS)
    p.add_argument("--out", required=True, help="folder to create (replaced whole if it exists)")
    p.add_argument("--size", type=int, default=256, help="frame size in pixels (default 256)")
    p.add_argument("--every", type=int, default=8, help="keep every Nth frame (default 8: ≈ 9 of a 72-frame loop)")
    p.add_argument("--quality", type=int, default=70, help="WebP quality 1-100; 100 = lossless (default 70)")
    p.add_argument("--alpha-quality", type=int, default=100, help="alpha plane quality 1-100 (default 100 = "
                   "lossless; 50 saves ≈ 20 %% with soft-edge loss)")
    p.add_argument("--workers", type=int, default=0, help="encoder processes (0 = all cores)")
    p.add_argument("--part", default="1/1", help="K/N: write the K-th of N interleaved parts of the files "
                   "(one part per GPU call when the set does not fit one transfer)")
    p.add_argument("--splits", default="train,holdout", help="comma list: train, holdout, pack-THEME for the "
                   f"pack-evaluation themes ({', '.join(PACK_EVAL_SETS)}); default train,holdout; reserved faces "
                   "are never written")
    p.add_argument("--variants", choices=("all", "base"), default="all", help="base: leave out the skin-tone "
                   "variants (the same animations recoloured), ≈ 45 %% fewer files (default all)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_pack_cache)

    e = dsub.add_parser("encode-shards", help="encode a training source once into latent shards that `rdtf train "
                        "--data shards:DIR` streams a window at a time (data larger than memory)")
    e.add_argument("--data", required=True, help="any training source: builtin:emoji, builtin:mixed, a folder…")
    e.add_argument("--out", required=True, help="folder to create (replaced whole if it exists)")
    e.add_argument("--model", default="default", help="the model whose autoencoder encodes the clips; train with "
                   "--init-from this model (default: default)")
    e.add_argument("--size", type=int, default=None,
                   help="frame size in px (default: the size a fine-tune of --model trains at; the shipped 256 px "
                        "default: 128, its draft size)")
    e.add_argument("--max-clips", type=int, default=0, help="0 = every clip of the source")
    e.add_argument("--clips-per-shard", type=int, default=256)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", default="auto")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_encode_shards)
