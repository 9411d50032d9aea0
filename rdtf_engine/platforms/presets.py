"""Platform presets: each one a data record of the platform's rules, with where each rule comes from.

Byte caps: platforms say "KB" without saying 1000 or 1024, and WhatsApp rejected a 506,190-byte file under
its "500 KB" (docs/platforms.md), so a "KB" cap is N x 1000 bytes and exports aim ``margin`` below it.
Signal states KiB in code (300 * 1024). ``check`` enforces ``max_bytes``; export aims at ``target_bytes``.
Numbers and their public sources: docs/platforms.md (re-check against the platforms before a release).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rdtf_engine.core.errors import InputError


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    container: str  # "webm" | "webp" | "apng" | "png" | "gif"
    animated: bool
    canvas: str  # "exact" (width x height) | "one_side" (one side == width, other <= it) | "square_max" | "box"
    width: int
    height: int
    min_side: int = 1  # "box": the longer side must reach this (LINE: one side >= 270)
    max_bytes: int | None = None
    margin: float = 0.04  # fraction under max_bytes that exports aim for
    max_duration_ms: int | None = None
    min_duration_ms: int | None = None
    whole_seconds: bool = False  # LINE: playback time must be 1, 2, 3 or 4 s exactly
    min_frames: int = 1
    max_frames: int | None = None
    max_fps: float | None = None
    min_frame_ms: int | None = None
    loops: tuple[int, ...] = (0,)  # allowed plays; 0 = forever
    max_playback_x_loops_ms: int | None = None
    first_frame_complete: bool = False
    no_identical_frames: bool = False
    codec: str | None = None
    no_audio: bool = False
    user_sized: bool = False  # plain presets: --size/--fps/--loop/--quality are the user's choice
    sources: tuple[str, ...] = field(default_factory=tuple)
    notes: str = ""

    @property
    def target_bytes(self) -> int | None:
        return None if self.max_bytes is None else int(self.max_bytes * (1.0 - self.margin))

    @property
    def default_loop(self) -> int:
        return self.loops[-1] if 0 not in self.loops else 0


TG = "https://core.telegram.org/stickers"
TG_WEBM = "https://core.telegram.org/stickers/webm-vp9-encoding"
TG_BOT = "https://core.telegram.org/bots/api#addstickertoset"
WA = "https://github.com/WhatsApp/stickers/blob/main/Android/README.md"
WA742 = "https://github.com/WhatsApp/stickers/issues/742 (506,190 B rejected under '500 KB')"
SIG = "signalapp/Signal-Desktop sticker-creator/src/constants.ts + util/processImage.ts"
SIG3S = "laggykiller/sticker-convert resources/compression.json (signal: 3 s)"
LINE = "https://creator.line.me/en/guideline/animationsticker/"
DISCORD = "https://discord.com/developers/docs/resources/sticker#create-guild-sticker"
DISCORD_FAQ = "https://support.discord.com/hc/en-us/articles/4403089981975-Managing-Custom-Stickers-FAQ"

_ALL = [
    Preset("telegram", "Telegram video sticker", "webm", True, "one_side", 512, 512, max_bytes=256_000,
           max_duration_ms=3000, max_fps=30, codec="vp9", no_audio=True, sources=(TG, TG_WEBM),
           notes="VP9 with alpha (yuva420p), no audio, <= 3 s, <= 30 fps, one side exactly 512 px, <= 256 KB; "
                 "Telegram loops it"),
    Preset("telegram-static", "Telegram static sticker (PNG)", "png", False, "one_side", 512, 512,
           max_bytes=512_000, sources=(TG, TG_BOT), notes="PNG, one side exactly 512 px, <= 512 KB (Bot API)"),
    Preset("telegram-webp", "Telegram static sticker (WebP)", "webp", False, "one_side", 512, 512,
           max_bytes=512_000, sources=(TG, TG_BOT),
           notes="static WebP; Telegram has no animated-WebP sticker type (animated = WebM or .tgs)"),
    Preset("whatsapp", "WhatsApp animated sticker", "webp", True, "exact", 512, 512, max_bytes=500_000,
           margin=0.10, max_duration_ms=10_000, min_frame_ms=8, first_frame_complete=True, sources=(WA, WA742),
           notes="animated WebP 512x512, <= 500 KB (aim 450 KB), frames >= 8 ms, <= 10 s, first frame complete"),
    Preset("whatsapp-static", "WhatsApp static sticker", "webp", False, "exact", 512, 512, max_bytes=100_000,
           margin=0.05, sources=(WA,), notes="static WebP 512x512, <= 100 KB"),
    Preset("whatsapp-tray", "WhatsApp tray icon", "png", False, "exact", 96, 96, max_bytes=50_000,
           sources=(WA,), notes="PNG 96x96, <= 50 KB"),
    Preset("signal", "Signal animated sticker", "apng", True, "square_max", 512, 512, min_side=10,
           max_bytes=300 * 1024, margin=0.03, max_duration_ms=3000, sources=(SIG, SIG3S),
           notes="APNG only, square 10-512 px (512 used), <= 300 KiB, loops forever (num_plays 0), <= 3 s"),
    Preset("line", "LINE animated sticker", "apng", True, "box", 320, 270, min_side=270, max_bytes=300_000,
           min_duration_ms=1000, max_duration_ms=4000, whole_seconds=True, min_frames=5, max_frames=20,
           loops=(1, 2, 3, 4), max_playback_x_loops_ms=4000, first_frame_complete=True, no_identical_frames=True,
           sources=(LINE,),
           notes="APNG (.png) <= 320x270 with one side >= 270, 5-20 frames, 1-4 s whole seconds, 1-4 loops "
                 "with playback x loops <= 4 s, <= 300 KB, no identical consecutive frames"),
    Preset("discord", "Discord sticker (APNG)", "apng", True, "exact", 320, 320, max_bytes=500_000,
           max_duration_ms=5000, sources=(DISCORD, DISCORD_FAQ),
           notes="APNG 320x320, <= 512 KB (older API text: 500 KB, so 500 000 B), animated <= 5 s"),
    Preset("discord-gif", "Discord sticker (GIF)", "gif", True, "exact", 320, 320, max_bytes=500_000,
           max_duration_ms=5000, sources=(DISCORD, DISCORD_FAQ), notes="GIF 320x320, <= 512 KB (500 000 B used)"),
    Preset("gif", "GIF", "gif", True, "box", 512, 512, loops=tuple(range(101)), user_sized=True,
           notes="plain GIF: shared palette, 1-bit alpha on a white matte, disposal 2; --loop plays (0 forever)"),
    Preset("apng", "APNG", "apng", True, "box", 512, 512, loops=tuple(range(101)), user_sized=True,
           notes="plain APNG, truecolour lossless unless a byte cap forces a palette"),
    Preset("webp", "Animated WebP", "webp", True, "box", 512, 512, loops=tuple(range(101)),
           user_sized=True, notes="plain animated WebP (lossy, --quality)"),
]

PRESETS: dict[str, Preset] = {p.name: p for p in _ALL}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def canvas_size(preset: Preset, src_w: int, src_h: int, size: int | None = None) -> tuple[int, int, bool]:
    """(width, height, pad) of the output canvas for a source of src_w x src_h."""
    if preset.user_sized:
        # Plain presets keep the aspect ratio; without --size they only ever shrink (to 512 px at most).
        limit = int(size) if size else preset.width
        scale = limit / max(src_w, src_h) if size else min(1.0, limit / max(src_w, src_h))
        return max(1, round(src_w * scale)), max(1, round(src_h * scale)), False
    if preset.canvas == "exact":
        return preset.width, preset.height, True
    if preset.canvas == "one_side":
        side = preset.width
        scale = side / max(src_w, src_h)
        w, h = round(src_w * scale), round(src_h * scale)
        w, h = (side, max(2, h)) if src_w >= src_h else (max(2, w), side)
        if preset.container == "webm":  # 4:2:0 chroma needs even sides
            w, h = w - (w % 2), h - (h % 2)
        return w, h, False
    if preset.canvas == "square_max":
        side = min(preset.width, int(size)) if size else preset.width
        return side, side, True
    # "box": fit inside width x height, the longer side reaching its limit (LINE)
    scale = min(preset.width / src_w, preset.height / src_h)
    w, h = max(1, round(src_w * scale)), max(1, round(src_h * scale))
    if max(w, h) < preset.min_side:
        w, h = preset.width, preset.height
        return w, h, True
    return w, h, False
