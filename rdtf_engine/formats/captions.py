"""Captions for imported stickers: ``captions.csv`` > file name words > emoji from pack metadata.

File names are the only text most packs carry (``cat_waving.gif`` → "cat waving"), and many packs name files
by emoji (``😀.webp``) or carry emoji in WhatsApp's EXIF JSON / sticker-convert's ``emoji.txt``; emoji are
turned into their Unicode names ("grinning face") so the text encoder sees words.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterable
from pathlib import PurePosixPath

from rdtf_engine.core.errors import FormatError, LimitError

MAX_SIDECAR_BYTES = 4 * 1024 * 1024
_GENERIC = {"sticker", "stickers", "image", "img", "animation", "anim", "animated", "frame", "file", "untitled",
            "copy", "final", "export", "output", "new", "tgs", "webp", "gif", "png", "apng", "webm", "mp4"}
_SKIP_CODEPOINTS = {0x200D, 0xFE0E, 0xFE0F, 0x20E3}  # ZWJ, variation selectors, keycap combiner


def emoji_words(text: str) -> str:
    """"😀👋" → "grinning face waving hand"; skin-tone modifiers and joiners are dropped."""
    words: list[str] = []
    flag = ""  # regional indicator letters: 🇫🇷 → "flag fr"
    for ch in text:
        cp = ord(ch)
        if 0x1F1E6 <= cp <= 0x1F1FF:
            flag += chr(ord("a") + cp - 0x1F1E6)
            continue
        if flag:
            words.extend(_flags(flag))
            flag = ""
        if cp in _SKIP_CODEPOINTS or 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F:
            continue
        if _is_emoji(ch):
            name = unicodedata.name(ch, "")
            if name:
                words.append(name.lower())
    if flag:
        words.extend(_flags(flag))
    return " ".join(words)


def _flags(letters: str) -> list[str]:
    return [f"flag {letters[i : i + 2]}" for i in range(0, len(letters), 2)]


def _is_emoji(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x1F000 <= cp <= 0x1FAFF or 0x2600 <= cp <= 0x27BF or 0x2B00 <= cp <= 0x2BFF or 0x2190 <= cp <= 0x21FF
        or 0x2300 <= cp <= 0x23FF or cp in (0x00A9, 0x00AE, 0x203C, 0x2049, 0x2122, 0x2139, 0x3030, 0x303D)
    )


def words_from_name(name: str) -> str:
    """File name → caption words: emoji to names, separators and camelCase split, numbering dropped."""
    stem = PurePosixPath(name.replace("\\", "/")).name
    stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", stem)
    parts: list[str] = []
    for is_emoji, run in _runs(stem):
        if is_emoji:
            if emoji_words(run):
                parts.append(emoji_words(run))
        else:
            parts.append(run)
    words: list[str] = []
    for part in parts:
        part = re.sub(r"([a-z])([A-Z])", r"\1 \2", part)
        for tok in re.split(r"[\s_\-.+,;()\[\]{}#@!~]+", part):
            tok = tok.strip().lower()
            if tok and not tok.isdigit() and not _looks_like_hash(tok):
                words.append(tok)
    return " ".join(words)


def _runs(text: str) -> list[tuple[bool, str]]:
    """Split into (is_emoji, run) pieces so multi-codepoint emoji (flags, ZWJ sequences) stay together."""
    runs: list[tuple[bool, str]] = []
    for ch in text:
        e = _is_emoji(ch) or ord(ch) in _SKIP_CODEPOINTS or 0x1F3FB <= ord(ch) <= 0x1F3FF
        if runs and runs[-1][0] == e:
            runs[-1] = (e, runs[-1][1] + ch)
        else:
            runs.append((e, ch))
    return runs


def _looks_like_hash(tok: str) -> bool:
    return len(tok) >= 8 and bool(re.fullmatch(r"[0-9a-f]+", tok)) and any(c.isdigit() for c in tok)


def is_meaningful(caption: str) -> bool:
    return any(w not in _GENERIC for w in caption.split())


def caption_for(name: str, metadata_emoji: str = "", table: dict[str, str] | None = None) -> str:
    """The caption rule: a table row (``captions.csv``) wins, then name words, then metadata emoji."""
    if table:
        for key in caption_keys(name):
            if key in table and table[key].strip():
                return table[key].strip()
    from_name = words_from_name(name)
    if is_meaningful(from_name):
        return from_name
    from_meta = emoji_words(metadata_emoji)
    return from_meta or from_name or "sticker"


def caption_keys(name: str) -> list[str]:
    """Names a captions table may use for an entry: full relative path, base name, or stem."""
    norm = name.replace("\\", "/")
    base = PurePosixPath(norm).name
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return [norm, base, stem, norm.lower(), base.lower(), stem.lower()]


def parse_captions_csv(data: bytes) -> dict[str, str]:
    """``file,caption`` rows (a header row is optional; ``id`` works as the first column name too)."""
    if len(data) > MAX_SIDECAR_BYTES:
        raise LimitError(f"captions.csv is over {MAX_SIDECAR_BYTES:,} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FormatError("captions.csv is not UTF-8 text") from None
    table: dict[str, str] = {}
    try:
        rows: Iterable[list[str]] = csv.reader(io.StringIO(text))
        for i, row in enumerate(rows):
            if len(row) < 2:
                continue
            key, caption = row[0].strip(), row[-1].strip()
            if i == 0 and key.lower() in ("file", "filename", "name", "id", "path") and caption.lower() == "caption":
                continue
            if key:
                table[key] = caption
                table.setdefault(key.lower(), caption)
    except csv.Error as exc:
        raise FormatError(f"captions.csv is not valid CSV: {exc}") from None
    return table


def parse_emoji_sidecar(data: bytes) -> dict[str, str]:
    """sticker-convert's ``emoji.txt`` (JSON {file stem: emoji}) → {stem: emoji} for entries holding emoji."""
    if len(data) > MAX_SIDECAR_BYTES:
        raise LimitError(f"emoji sidecar is over {MAX_SIDECAR_BYTES:,} bytes")
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise FormatError("emoji.txt is not a JSON object of file → emoji") from None
    if not isinstance(doc, dict):
        raise FormatError("emoji.txt is not a JSON object of file → emoji")
    return {str(k): str(v) for k, v in doc.items() if emoji_words(str(v))}


def emoji_from_exif(exif: bytes) -> str:
    """WhatsApp stickers carry a JSON blob in EXIF with an ``emojis`` list; returns the emoji as text."""
    start = exif.find(b'{"')
    end = exif.rfind(b"}")
    if start < 0 or end <= start:
        return ""
    try:
        doc = json.loads(exif[start : end + 1].decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return ""
    emojis = doc.get("emojis") if isinstance(doc, dict) else None
    if isinstance(emojis, list):
        return "".join(str(e) for e in emojis[:8])
    return ""
