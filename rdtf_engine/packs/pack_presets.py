"""Pack presets: each platform's rules for a whole sticker pack, as data records beside the single-file presets.

A pack preset names the single-sticker preset every sticker file meets (``platforms/presets.py``: canvas,
codec, byte cap, timing) and adds what only a pack has: how many stickers, emoji per sticker, title and author,
the pack images (tray icon, cover, main/tab images) with their own file rules, and the archive layout. The
numbers and their public sources are listed in docs/platforms.md ("Packs"); re-check them before a release.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rdtf_engine.core.errors import InputError
from rdtf_engine.platforms.presets import DISCORD, DISCORD_FAQ, LINE, PRESETS, SIG, TG, TG_BOT, WA, Preset

WA_FORMAT = "laggykiller/sticker-convert src/sticker_convert/uploaders/compress_wastickers.py (.wastickers zip)"
WA_ASSETS = "https://github.com/WhatsApp/stickers/tree/main/Android/app/src/main/assets (contents.json)"
TG_BOT_SET = "https://core.telegram.org/bots/api#createnewstickerset (title 1-64 characters)"
TG_THUMB = "https://core.telegram.org/bots/api#setstickersetthumbnail (100x100; PNG/WebP <= 128 KB, WebM <= 32 KB)"
SIG_STATE = "signalapp/Signal-Desktop sticker-creator pack state (one emoji per sticker, title, author, cover)"
LINE_DETAIL = "https://creator.line.me/en/guideline/animationsticker/detail/"

# Pack images with their own file rules. Not in PRESETS: they are parts of a pack, not stickers to export alone.
TELEGRAM_ICON = Preset("telegram-icon", "Telegram set icon", "png", False, "exact", 100, 100, max_bytes=32_000,
                       sources=(TG, TG_THUMB), notes="PNG 100x100; 32 KB, the cap of an animated icon, fits every "
                                                   "thumbnail kind")
SIGNAL_COVER = Preset("signal-cover", "Signal pack cover", "png", False, "exact", 512, 512, max_bytes=300 * 1024,
                      margin=0.03, sources=(SIG,), notes="a still sticker-sized PNG, <= 300 KiB like a sticker")
LINE_MAIN = Preset("line-main", "LINE main image", "apng", True, "exact", 240, 240, max_bytes=300_000,
                   min_duration_ms=1000, max_duration_ms=4000, whole_seconds=True, min_frames=5, max_frames=20,
                   loops=(1, 2, 3, 4), max_playback_x_loops_ms=4000, first_frame_complete=True,
                   no_identical_frames=True, sources=(LINE, LINE_DETAIL),
                   notes="APNG 240x240 with the animated stickers' timing rules, <= 300 KB")
LINE_TAB = Preset("line-tab", "LINE chat tab image", "png", False, "exact", 96, 74, max_bytes=300_000,
                  sources=(LINE,), notes="PNG 96x74, <= 300 KB")


@dataclass(frozen=True)
class PackImage:
    """One picture of the pack besides the stickers (tray icon, cover...), written as ``name``."""

    name: str  # archive entry, e.g. "tray.png"
    what: str  # human name, e.g. "tray icon"
    preset: Preset  # the file rules it meets
    source: str = "character"  # "character" (the pack's character picture) | "first_sticker" (animated images)


@dataclass(frozen=True)
class PackPreset:
    name: str
    title: str
    sticker: str  # the single-sticker preset (platforms/presets.py) every sticker file meets
    layout: str  # "whatsapp" | "telegram" | "signal" | "line" | "discord": which listing files are written
    outputs: tuple[str, ...]  # allowed output suffixes: ".wastickers", ".zip", "" (a folder)
    min_stickers: int = 1
    max_stickers: int = 120
    counts: tuple[int, ...] = ()  # LINE: a set has exactly 8, 16 or 24 stickers
    min_emoji: int = 0
    max_emoji: int = 3  # more are refused; Signal and Discord take the first (emoji_used)
    emoji_used: int = 3
    title_max: int = 128
    author_required: bool = False
    name_len: tuple[int, int] | None = None  # Discord: sticker names 2-30 characters
    images: tuple[PackImage, ...] = ()
    max_archive_bytes: int | None = None  # LINE: the ZIP <= 20 MB
    sources: tuple[str, ...] = field(default_factory=tuple)
    notes: str = ""

    @property
    def sticker_preset(self) -> Preset:
        return PRESETS[self.sticker]

    def count_text(self) -> str:
        if self.counts:
            return ", ".join(str(c) for c in self.counts[:-1]) + f" or {self.counts[-1]}"
        return f"{self.min_stickers}-{self.max_stickers}"


_ALL = [
    PackPreset("whatsapp-pack", "WhatsApp sticker pack (.wastickers)", "whatsapp", "whatsapp", (".wastickers",),
               min_stickers=3, max_stickers=30, min_emoji=1, max_emoji=3, title_max=128, author_required=True,
               images=(PackImage("tray.png", "tray icon", PRESETS["whatsapp-tray"]),),
               sources=(WA, WA_FORMAT, WA_ASSETS),
               notes="3-30 animated WebP 512x512 <= 500 KB, 1-3 emoji each, tray icon 96x96 PNG <= 50 KB, "
                     "title and author <= 128 characters"),
    PackPreset("telegram-pack", "Telegram video sticker set", "telegram", "telegram", ("", ".zip"),
               min_stickers=1, max_stickers=120, min_emoji=1, max_emoji=3, title_max=64,
               images=(PackImage("icon.png", "set icon", TELEGRAM_ICON),), sources=(TG, TG_BOT, TG_BOT_SET),
               notes="1-120 WebM VP9 stickers (one side 512 px, <= 3 s, <= 256 KB), emoji each, a 100x100 set "
                     "icon, title <= 64 characters; upload through the @Stickers bot"),
    PackPreset("signal-pack", "Signal sticker pack", "signal", "signal", ("", ".zip"),
               min_stickers=1, max_stickers=200, min_emoji=1, max_emoji=3, emoji_used=1, author_required=True,
               images=(PackImage("cover.png", "cover", SIGNAL_COVER),), sources=(SIG, SIG_STATE),
               notes="1-200 APNG 512x512 <= 300 KiB looping forever, one emoji each, a cover, title and author"),
    PackPreset("line-pack", "LINE animation sticker set", "line", "line", (".zip",),
               counts=(8, 16, 24), min_stickers=8, max_stickers=24,
               images=(PackImage("main.png", "main image", LINE_MAIN, "first_sticker"),
                       PackImage("tab.png", "chat tab image", LINE_TAB)),
               max_archive_bytes=20_000_000, sources=(LINE, LINE_DETAIL),
               notes="8, 16 or 24 APNG <= 320x270 (1-4 s, <= 300 KB) named 01.png..., main.png 240x240 (APNG), "
                     "tab.png 96x74, the ZIP <= 20 MB"),
    PackPreset("discord-pack", "Discord server stickers", "discord", "discord", ("", ".zip"),
               min_stickers=1, max_stickers=60, min_emoji=1, max_emoji=3, emoji_used=1, name_len=(2, 30),
               sources=(DISCORD, DISCORD_FAQ),
               notes="APNG 320x320 <= 500 KB each, a name of 2-30 characters and a related emoji each; a server "
                     "holds 5 stickers without boosts, 15 / 30 / 60 at boost level 1 / 2 / 3"),
]

PACK_PRESETS: dict[str, PackPreset] = {p.name: p for p in _ALL}


def get_pack_preset(name: str) -> PackPreset:
    try:
        return PACK_PRESETS[name]
    except KeyError:
        raise InputError(f"unknown pack preset {name!r}; choose one of {', '.join(PACK_PRESETS)}") from None


def list_pack_presets() -> list[dict]:
    return [{"name": p.name, "title": p.title, "sticker_preset": p.sticker, "stickers": p.count_text(),
             "outputs": [o or "folder" for o in p.outputs], "notes": p.notes, "sources": list(p.sources)}
            for p in PACK_PRESETS.values()]
