"""Make one pack per held-out emoji character, for measuring identity across packs (docs/packs.md).

The characters come from ``builtin:emoji-holdout``'s held-out emoji (``data.emoji.is_heldout_emoji``: the
sha256 split no training run ever draws from), minus the reserved faces (``data.fluent_split.is_reserved``),
which nothing in this project may use. ``--count K`` of them are taken evenly spaced over the list in code-point
order (no choosing of easy ones). Each character is the emoji's picture (``emoji_sprite``), saved as a PNG and
given to ``rdtf pack new`` with the emoji's name as the pack title (the subject of every sticker's prompt).

    python tools/heldout_packs.py --out /tmp/heldout-packs --count 6 --steps 20
    rdtf pack eval /tmp/heldout-packs/*/ --json      # identity accuracy among the K characters

Running it again resumes (``rdtf pack new`` on an existing pack fills in what is missing).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from rdtf_engine.core.atomic import make_dir
from rdtf_engine.data.emoji import available_codepoints, emoji_name, emoji_sprite, is_heldout_emoji
from rdtf_engine.data.fluent_split import is_reserved

MOODS = "waving, laughing, crying, angry, surprised, sleeping"  # the first six of the app's default twelve


def heldout_characters(count: int) -> list[int]:
    """``count`` held-out, non-reserved code points, evenly spaced over all of them in code-point order."""
    cps = [c for c in available_codepoints() if is_heldout_emoji(c) and not is_reserved((c,))]
    if not 1 <= count <= len(cps):
        raise SystemExit(f"--count must be 1..{len(cps)}")
    return [cps[i * len(cps) // count] for i in range(count)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder that receives one pack folder per character")
    ap.add_argument("--count", type=int, default=6, help="how many characters (K)")
    ap.add_argument("--motions", default=MOODS)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="default")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    out = make_dir(Path(args.out))
    for cp in heldout_characters(args.count):
        name = emoji_name(cp)
        folder = out / f"u{cp:x}-{name.replace(' ', '-')}"
        picture = out / f"u{cp:x}.png"
        if not picture.exists():
            Image.fromarray(emoji_sprite(cp), "RGBA").save(picture)
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "rdtf_engine", "pack", "new", "--character", str(picture),
                        "--title", name, "--motions", args.motions, "--out", str(folder), "--seed", str(args.seed),
                        "--steps", str(args.steps), "--frames", str(args.frames), "--model", args.model,
                        "--device", args.device], check=True)
        print(f"U+{cp:04X} {name}: {time.monotonic() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
