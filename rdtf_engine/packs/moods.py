"""The words of a pack: the default moods, the motion list a creator types, each sticker's emoji and seed.

Pure text (no model): the CLI, the worker and the app's Pack page share these so a pack made in one reopens
the same in the others.
"""

from __future__ import annotations

import hashlib
import re

from rdtf_engine.core.config import MAX_SEED
from rdtf_engine.core.errors import InputError

# What a fresh pack offers: the moods messengers' sticker sets cover most often.
DEFAULT_MOODS = ("waving", "laughing", "crying", "angry", "surprised", "sleeping", "heart eyes", "thumbs up",
                 "dancing", "thinking", "party", "jumping")
MAX_MOTION_CHARS = 200

# Motion word → the emoji every platform's search knows it by. Only obvious ones: a wrong guess is worse than
# none (export asks for the missing ones). Matched on whole words, longest key first ("heart eyes" before "heart").
EMOJI_WORDS: dict[str, str] = {
    "heart eyes": "😍", "thumbs up": "👍", "thumbs down": "👎", "in love": "😍", "blowing a kiss": "😘",
    "waving": "👋", "wave": "👋", "hello": "👋", "hi": "👋", "bye": "👋", "goodbye": "👋",
    "laughing": "😂", "laugh": "😂", "lol": "😂", "crying": "😢", "cry": "😢", "sad": "😢", "tears": "😢",
    "love": "😍", "heart": "😍", "kiss": "😘", "kissing": "😘", "angry": "😠", "mad": "😠", "furious": "😠",
    "sleeping": "😴", "sleepy": "😴", "sleep": "😴", "tired": "😴", "party": "🎉", "celebrating": "🎉",
    "celebrate": "🎉", "surprised": "😮", "shocked": "😮", "wow": "😮", "thinking": "🤔", "hmm": "🤔",
    "dancing": "💃", "dance": "💃", "clapping": "👏", "applause": "👏", "cool": "😎", "happy": "😊",
    "smiling": "😊", "scared": "😱", "afraid": "😱", "sick": "🤒", "ok": "👌", "okay": "👌", "yes": "👍",
    "no": "🙅", "thanks": "🙏", "thank you": "🙏", "please": "🙏", "sorry": "🙏", "jumping": "🤸",
    "eating": "😋", "hungry": "😋", "cold": "🥶", "hot": "🥵", "confused": "😕", "facepalm": "🤦",
    "shrug": "🤷", "excited": "🤩", "star eyes": "🤩", "money": "🤑", "crazy": "🤪", "silly": "🤪",
}


def parse_motions(text: str) -> list[str]:
    """"waving, laughing;crying\\n…" → ["waving", "laughing", "crying"]: comma, semicolon or line separated,
    blanks and repeats dropped, each at most ``MAX_MOTION_CHARS`` characters."""
    out: list[str] = []
    for part in re.split(r"[,;\n]", text or ""):
        m = " ".join(part.split())
        if len(m) > MAX_MOTION_CHARS:
            raise InputError(f"motion {m[:40]!r}… is longer than {MAX_MOTION_CHARS} characters")
        if m and m.lower() not in {o.lower() for o in out}:
            out.append(m)
    return out


def guess_emoji(motion: str) -> tuple[str, ...]:
    """The emoji for a motion where an obvious one exists ("waving" → 👋), else ()."""
    words = " " + " ".join(re.findall(r"[a-z]+", motion.lower())) + " "
    for key in sorted(EMOJI_WORDS, key=len, reverse=True):
        if f" {key} " in words:
            return (EMOJI_WORDS[key],)
    return ()


def derive_seed(base: int, sticker_id: str) -> int:
    """The sticker's seed from the pack's base seed and its id: stable across runs and machines, different per
    sticker, and unchanged when other stickers are added, removed or reordered."""
    digest = hashlib.sha256(f"{int(base)}/{sticker_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (MAX_SEED + 1)


__all__ = ["DEFAULT_MOODS", "EMOJI_WORDS", "derive_seed", "guess_emoji", "parse_motions"]
