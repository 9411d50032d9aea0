"""Build the three "train on my pack" test packs from Fluent Emoji animated (Microsoft, MIT licence).

Input: the npm tarballs ``@lobehub/fluent-emoji-anim-1..4`` (``package/assets/<code points>.webp``, 256 px
animated WebP). Output: one folder per theme of ``rdtf_engine.data.fluent_split.PACK_EVAL_SETS`` (animals,
vehicles, sky), each holding ``<name>.webp`` files plus a ``captions.csv`` whose caption is the emoji's Unicode
name in lower case ("crab", "lion face") — what a creator's own pack would look like to the importer.

Tar members are never extracted: only regular files named exactly ``package/assets/<hex>[-<hex>…].webp`` are
read into memory, and the bytes are written under a name we build from the caption, so no member name can
place anything outside the output folder. Reserved faces are refused even if a theme ever listed one.

    python tools/make_test_packs.py --raw /work/fluent-raw --out /work/packs [--every 2]

(the tarballs: ``npm pack @lobehub/fluent-emoji-anim-1`` … ``-4`` in the --raw folder)
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
import tarfile
import unicodedata
from pathlib import Path

from rdtf_engine.core.atomic import make_dir, write_bytes_atomic, write_text_atomic
from rdtf_engine.data.fluent_split import PACK_EVAL_SETS, code_points, is_reserved

_MEMBER = re.compile(r"package/assets/([0-9a-f]{4,6}(?:-[0-9a-f]{4,6})*)\.webp")
MAX_MEMBER_BYTES = 8 * 2**20
# Not an evaluation pack: recipe settings are screened on this one (tools/recipe_sweep.py), so the three
# evaluation packs never choose them. 24 animals, rat … boar (U+1F400–1F417), none of them a reserved face.
TUNING_PACK = {"tune": tuple(range(0x1F400, 0x1F418))}


def wanted_stems() -> dict[str, str]:
    """{file stem in the tarballs: theme}: the plain emoji, with or without the emoji-presentation selector."""
    out = {}
    for theme, cps in {**PACK_EVAL_SETS, **TUNING_PACK}.items():
        for cp in cps:
            out[f"{cp:x}"] = theme
            out[f"{cp:x}-fe0f"] = theme
    return out


def read_members(tarballs: list[Path]) -> dict[str, bytes]:
    """{stem: webp bytes} of the wanted members of all tarballs (first tarball wins on duplicates)."""
    want, found = wanted_stems(), {}
    for tgz in tarballs:
        with tarfile.open(tgz, "r:gz") as tf:
            for m in tf:
                hit = _MEMBER.fullmatch(m.name)
                if not (hit and m.isreg() and hit.group(1) in want and hit.group(1) not in found):
                    continue
                if m.size > MAX_MEMBER_BYTES:
                    raise SystemExit(f"{tgz.name}: {m.name} is over {MAX_MEMBER_BYTES} bytes")
                fh = tf.extractfile(m)
                if fh is not None:
                    found[hit.group(1)] = fh.read(MAX_MEMBER_BYTES + 1)
    return found


def caption_of(stem: str) -> str:
    return unicodedata.name(chr(code_points(stem)[0])).lower()


def every_nth_frame(data: bytes, n: int, quality: int = 85) -> bytes:
    """An animated WebP with every ``n``-th frame kept, each shown as long as the ``n`` frames it stands for (the
    same loop at 1/n of the frame rate), re-encoded lossy at ``quality``: the 12 fps copies (n = 2) that travel to
    a GPU host within its 64 MiB transfer beside the tree and the text encoder."""
    from PIL import Image

    from rdtf_engine.formats.containers import walk_webp

    raw = walk_webp(data).durations_ms  # per frame, from the container (Pillow's info leaves it out)
    frames = []
    with Image.open(io.BytesIO(data)) as im:
        for i in range(0, int(getattr(im, "n_frames", 1)), n):
            im.seek(i)
            frames.append(im.convert("RGBA"))
    durations = [int(sum(raw[i:i + n])) for i in range(0, len(raw), n)]
    buf = io.BytesIO()
    frames[0].save(buf, format="WEBP", save_all=True, append_images=frames[1:], duration=durations, loop=0,
                   lossless=False, quality=quality, method=4)
    return buf.getvalue()


def write_pack(folder: Path, stems: list[str], members: dict[str, bytes], every: int = 1) -> list[tuple[str, str]]:
    """Write one pack (``every`` > 1: every ``every``-th frame, ``every_nth_frame``); returns its (file, caption)
    rows."""
    make_dir(folder)
    rows = []
    for stem in stems:
        if is_reserved(code_points(stem)):
            raise SystemExit(f"{stem} is a reserved face and must never be used")
        caption = caption_of(stem)
        name = re.sub(r"[^a-z0-9]+", "_", caption).strip("_") + ".webp"
        write_bytes_atomic(folder / name, members[stem] if every <= 1 else every_nth_frame(members[stem], every))
        rows.append((name, caption))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", "caption"])
    w.writerows(rows)
    write_text_atomic(folder / "captions.csv", buf.getvalue())
    return rows


def _frame_count(data: bytes) -> int:
    """Frames of a WebP (Fluent's "animated" set holds some stills: the report says how many)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return int(getattr(im, "n_frames", 1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--raw", default="/work/fluent-raw", help="folder with the lobehub-fluent-emoji-anim-*.tgz")
    ap.add_argument("--out", default="/work/packs", help="packs are written to OUT/<theme>")
    ap.add_argument("--themes", default=",".join(PACK_EVAL_SETS),
                    help="comma-separated themes (tune: the tuning pack that recipe screens run on)")
    ap.add_argument("--every", type=int, default=1,
                    help="keep every N-th frame, each shown N times as long (2: the 12 fps copies a GPU call carries)")
    args = ap.parse_args(argv)
    tarballs = sorted(Path(args.raw).glob("*fluent-emoji-anim-*.tgz"))
    if not tarballs:
        print(f"no fluent-emoji-anim tarballs in {args.raw}", file=sys.stderr)
        return 2
    members = read_members(tarballs)
    themes = {**PACK_EVAL_SETS, **TUNING_PACK}
    for theme in args.themes.split(","):
        if theme not in themes:
            print(f"unknown theme {theme!r}; choices: {', '.join(themes)}", file=sys.stderr)
            return 2
        stems, missing = [], []
        for cp in themes[theme]:
            stem = next((s for s in (f"{cp:x}", f"{cp:x}-fe0f") if s in members), None)
            (stems.append(stem) if stem else missing.append(f"{cp:x}"))
        rows = write_pack(Path(args.out) / theme, stems, members, args.every)
        size = sum(len(members[s]) for s in stems)
        moving = sum(_frame_count(members[s]) > 1 for s in stems)
        print(f"{theme}: {len(rows)} stickers ({moving} animated, the rest one still frame), {size / 2**20:.1f} MB "
              f"→ {Path(args.out) / theme}"
              + (f" (missing: {', '.join(missing)})" if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
