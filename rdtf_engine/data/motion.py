"""Motion programs: parametrised, loopable per-frame affine animations for procedural stickers.

A program maps clip time ``t = i / F`` (i = 0..F-1) to per-frame affine parameters (all arrays of shape (F,)):

- ``dx, dy``  translation as a fraction of the canvas side (+dy = down, image convention);
- ``angle``   rotation in degrees, counter-clockwise on screen;
- ``sx, sy``  scale factors (1 = the object's base size);
- ``alpha``   opacity multiplier in [0, 1].

Rotation and scale happen about a pivot (``pivot_y`` in object half-heights below the centre: 0 = centre,
1 = bottom edge), so "wave" rocks on its base and "squash" keeps its feet on the ground.

Every program is periodic in ``t`` with period 1 (integer ``cycles`` per clip), so the frame that would
follow the last frame is exactly frame 0: a rendered clip loops without a seam. ``tests/engine/test_data.py``
checks this by evaluating each program on t in [0, 2) and comparing both halves.

Both ``builtin:shapes`` and ``builtin:emoji`` animate their sprites with :func:`render_motion`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

EASINGS = ("sine", "linear", "quad", "cubic")


@dataclass(frozen=True)
class MotionParams:
    """Random parameters of one motion component, sampled per clip by :func:`sample_motion`."""

    amplitude: float  # 0..1 strength, mapped to a motion-specific range
    cycles: int  # whole cycles per clip (keeps the loop seamless)
    phase: float  # start position within a cycle, 0..1
    easing: str  # one of EASINGS: the waveform shape
    direction: int  # +1 / -1: spin direction, slide direction, nod tilt

    def to_dict(self) -> dict:
        return {"amplitude": round(self.amplitude, 4), "cycles": self.cycles, "phase": round(self.phase, 4),
                    "easing": self.easing, "direction": self.direction}


@dataclass
class MotionFrames:
    """Per-frame affine parameters of one clip (each array has shape (F,))."""

    dx: np.ndarray
    dy: np.ndarray
    angle: np.ndarray
    sx: np.ndarray
    sy: np.ndarray
    alpha: np.ndarray
    pivot_y: float = 0.0
    bounded: bool = True  # False: the object is allowed to leave the frame (slide in/out)

    def stacked(self) -> np.ndarray:
        """(F, 6) array [dx, dy, angle, sx, sy, alpha], for tests and debugging."""
        return np.stack([self.dx, self.dy, self.angle, self.sx, self.sy, self.alpha], axis=1)


# ---------------------------------------------------------------------------------------------- waveforms
def _ease(x: np.ndarray, easing: str) -> np.ndarray:
    """Monotone ease-in-out map [0, 1] → [0, 1] with ease(0)=0, ease(1)=1."""
    if easing == "linear":
        return x
    if easing == "quad":
        return np.where(x < 0.5, 2 * x * x, 1 - 2 * (1 - x) ** 2)
    if easing == "cubic":
        return np.where(x < 0.5, 4 * x**3, 1 - 4 * (1 - x) ** 3)
    return 0.5 - 0.5 * np.cos(np.pi * x)  # "sine"


def osc(u: np.ndarray, easing: str) -> np.ndarray:
    """Periodic oscillator in [-1, 1] with period 1 in ``u``; osc(0) = 0 rising, like sin(2πu)."""
    if easing == "sine":
        return np.sin(2 * np.pi * u)
    # Triangle wave 0 → 1 → 0 → -1 → 0 shaped by the easing on each quarter-less half swing.
    w = np.mod(u + 0.25, 1.0)  # shift so w=0.25 ↔ u=0 (the zero crossing)
    tri = np.where(w < 0.5, w * 2, 2 - w * 2)  # 0..1..0, with w=0 at the trough
    return 2 * _ease(tri, easing) - 1


def bump(u: np.ndarray, easing: str) -> np.ndarray:
    """Periodic 0 → 1 → 0 bump per unit of ``u`` (0 at integer u)."""
    return 0.5 - 0.5 * osc(u + 0.25, easing)


def _wrapped_gauss(w: np.ndarray, centre: float, width: float) -> np.ndarray:
    d = np.mod(w - centre + 0.5, 1.0) - 0.5  # signed distance on the unit circle
    return np.exp(-((d / width) ** 2))


# ---------------------------------------------------------------------------------------------- programs
Arrays = dict[str, np.ndarray]


def _wave(t, p):
    u = p.cycles * t + p.phase
    return {"angle": (15 + 20 * p.amplitude) * osc(u, p.easing)}


def _bounce(t, p):
    w = np.mod(p.cycles * t + p.phase, 1.0)
    h = 1 - (2 * w - 1) ** 2 if p.easing in ("quad", "cubic") else np.sin(np.pi * w)  # 0 on the ground
    contact = (1 - h) ** 4
    sq = 0.12 * p.amplitude * contact
    return {"dy": -(0.12 + 0.1 * p.amplitude) * h, "sx": 1 + sq, "sy": 1 - sq}


def _jump(t, p):
    w = np.mod(p.cycles * t + p.phase, 1.0)
    crouch = np.where(w < 0.2, np.sin(np.pi * np.clip(w / 0.2, 0, 1)), 0.0)
    s = np.clip((w - 0.2) / 0.6, 0, 1)
    air = np.where((w >= 0.2) & (w < 0.8), 4 * s * (1 - s), 0.0)
    land = np.where(w >= 0.8, np.sin(np.pi * np.clip((w - 0.8) / 0.2, 0, 1)), 0.0)
    squash = 0.15 * crouch + 0.08 * land
    stretch = 0.25 * air * (1 - air)  # stretched while rising/falling, round at the apex and on the ground
    return {"dy": -(0.16 + 0.1 * p.amplitude) * air, "sx": 1 + squash - 0.5 * stretch, "sy": 1 - squash + stretch}


def _shake(t, p):
    u = p.cycles * t + p.phase
    return {"dx": (0.04 + 0.05 * p.amplitude) * osc(u, p.easing), "angle": 3 * osc(u + 0.25, p.easing)}


def _spin(t, p):
    u = p.cycles * t + p.phase
    turns = np.floor(u) + _ease(np.mod(u, 1.0), p.easing)  # eased within each turn, continuous across turns
    return {"angle": 360.0 * p.direction * turns}


def _pulse(t, p):
    s = 1 + (0.08 + 0.12 * p.amplitude) * osc(p.cycles * t + p.phase, p.easing)
    return {"sx": s, "sy": s}


def _heartbeat(t, p):
    w = np.mod(p.cycles * t + p.phase, 1.0)
    beat = _wrapped_gauss(w, 0.1, 0.08) + 0.6 * _wrapped_gauss(w, 0.35, 0.08)  # "lub-dub"
    s = 1 + (0.12 + 0.15 * p.amplitude) * beat
    return {"sx": s, "sy": s}


def _nod(t, p):
    b = bump(p.cycles * t + p.phase, p.easing)
    return {"dy": 0.02 * b, "sy": 1 - (0.12 + 0.1 * p.amplitude) * b, "angle": -5 * p.direction * b}


def _wobble(t, p):
    u = p.cycles * t + p.phase
    a = 0.06 + 0.1 * p.amplitude
    o = osc(u, p.easing)
    return {"sx": 1 + a * o, "sy": 1 - a * o, "angle": (4 + 6 * p.amplitude) * osc(u + 0.25, p.easing)}


def _squash(t, p):
    o = osc(p.cycles * t + p.phase, p.easing)
    a = 0.12 + 0.15 * p.amplitude
    return {"sx": 1 + 0.8 * a * o, "sy": 1 - a * o}


def _float(t, p):
    u = p.cycles * t + p.phase
    a = 0.05 + 0.05 * p.amplitude
    return {"dy": a * osc(u, p.easing), "dx": 0.4 * a * osc(2 * u + 0.25, "sine"), "angle": 3 * osc(u + 0.25, "sine")}


def _slide(t, p):
    # One cycle: in from one side [0, .3), hold [.3, .6), out the other side [.6, .9), off-screen [.9, 1).
    # Off-screen at both ends of the cycle, so the jump from +D back to -D happens while invisible.
    w = np.mod(t + p.phase, 1.0)
    d = 1.0 * p.direction  # object centre one canvas side away: fully outside the frame
    x_in = -d * (1 - _ease(np.clip(w / 0.3, 0, 1), p.easing))
    x_out = d * _ease(np.clip((w - 0.6) / 0.3, 0, 1), p.easing)
    return {"dx": np.where(w < 0.3, x_in, np.where(w < 0.6, 0.0, x_out))}


def _fade(t, p):
    return {"alpha": 1 - (0.6 + 0.4 * p.amplitude) * bump(p.cycles * t + p.phase, p.easing)}


def _blink(t, p):
    w = np.round(np.mod(p.cycles * t + p.phase, 1.0), 9) % 1.0  # rounding: identical values across periods
    off = 0.25 + 0.15 * p.amplitude
    return {"alpha": np.where((w >= 0.5) & (w < 0.5 + off), 0.0, 1.0)}


@dataclass(frozen=True)
class MotionProgram:
    name: str
    fn: Callable[[np.ndarray, MotionParams], Arrays]
    phrases: tuple[str, ...]  # participle phrases that follow the object's name in captions
    cycles: tuple[int, int] = (1, 2)  # inclusive range before the frames-per-cycle cap
    min_frames_per_cycle: int = 4  # fewer frames per cycle would alias (e.g. shake at F/2 samples zeros)
    pivot_y: float = 0.0
    bounded: bool = True


PROGRAMS: dict[str, MotionProgram] = {
    m.name: m
    for m in [
        MotionProgram("wave", _wave, ("waving", "rocking side to side", "swaying", "waving hello"), (1, 3), 4, 1.0),
        MotionProgram("bounce", _bounce,
                      ("bouncing", "hopping up and down", "bouncing up and down", "bouncing happily"), (1, 3), 4, 1.0),
        MotionProgram("jump", _jump, ("jumping", "jumping for joy", "leaping up", "doing a big jump"), (1, 2), 6, 1.0),
        MotionProgram("shake", _shake, ("shaking", "trembling", "shivering", "shaking side to side"), (2, 6), 3),
        MotionProgram("spin", _spin, ("spinning", "turning round and round", "rotating", "spinning around"), (1, 2), 4),
        MotionProgram("pulse", _pulse, ("pulsing", "growing and shrinking", "zooming in and out", "throbbing"),
                      (1, 3), 4),
        MotionProgram("heartbeat", _heartbeat, ("beating", "beating like a heart", "thumping", "with a heartbeat"),
                      (1, 2), 8),
        MotionProgram("nod", _nod, ("nodding", "nodding yes", "bowing", "nodding along"), (1, 3), 4, 1.0),
        MotionProgram("wobble", _wobble, ("wobbling", "jiggling like jelly", "wiggling", "wobbling around"), (1, 3), 4),
        MotionProgram("slide", _slide, ("sliding in and out", "sliding across", "passing by", "zipping past"),
                      (1, 1), 4, 0.0, False),
        MotionProgram("fade", _fade,
                      ("fading in and out", "fading away and back", "glowing softly", "appearing and vanishing"),
                      (1, 2), 4),
        MotionProgram("blink", _blink, ("blinking", "flashing on and off", "flickering", "blinking on and off"),
                      (1, 3), 4),
        MotionProgram("squash", _squash,
                      ("squashing and stretching", "squishing", "getting squished", "stretching up and down"),
                      (1, 3), 4, 1.0),
        MotionProgram("float", _float, ("floating", "hovering", "drifting gently", "floating in the air"), (1, 2), 4),
    ]
}

# Combined motions: parameters add (dx, dy, angle) or multiply (sx, sy, alpha).
COMBOS: dict[str, tuple[str, ...]] = {
    "bounce+spin": ("bounce", "spin"),
    "jump+spin": ("jump", "spin"),
    "pulse+spin": ("pulse", "spin"),
    "shake+pulse": ("shake", "pulse"),
    "float+fade": ("float", "fade"),
}

MOTIONS: tuple[str, ...] = tuple(PROGRAMS) + tuple(COMBOS)  # every motion class label
# Sampling weights of MOTIONS for training sources: combos half as often as base motions.
MOTION_WEIGHTS = np.array([2.0 if m in PROGRAMS else 1.0 for m in MOTIONS]) / (2 * len(PROGRAMS) + len(COMBOS))


def components(motion: str) -> tuple[str, ...]:
    if motion in COMBOS:
        return COMBOS[motion]
    if motion in PROGRAMS:
        return (motion,)
    raise KeyError(f"unknown motion {motion!r}; choices: {', '.join(MOTIONS)}")


@dataclass
class MotionSpec:
    """A motion class plus the sampled parameters of each of its components."""

    motion: str
    params: list[MotionParams] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"motion": self.motion, "params": [p.to_dict() for p in self.params]}


def sample_params(name: str, num_frames: int, rng: np.random.Generator) -> MotionParams:
    prog = PROGRAMS[name]
    max_cycles = max(1, num_frames // prog.min_frames_per_cycle)
    lo, hi = prog.cycles
    cycles = int(rng.integers(min(lo, max_cycles), min(hi, max_cycles) + 1))
    phase = float(rng.uniform(0.3, 0.6)) if name == "slide" else float(rng.uniform(0, 1))  # slide: start on screen
    return MotionParams(amplitude=float(rng.uniform(0, 1)), cycles=cycles, phase=phase,
                        easing=str(rng.choice(EASINGS)), direction=int(rng.choice([-1, 1])))


def sample_motion(motion: str, num_frames: int, rng: np.random.Generator) -> MotionSpec:
    return MotionSpec(motion, [sample_params(c, num_frames, rng) for c in components(motion)])


def motion_frames(spec: MotionSpec, num_frames: int, *, t: np.ndarray | None = None) -> MotionFrames:
    """Evaluate a motion at t = i / F (or at the given times, in clip periods) → :class:`MotionFrames`."""
    t = np.arange(num_frames, dtype=np.float64) / num_frames if t is None else np.asarray(t, np.float64)
    out = {"dx": np.zeros_like(t), "dy": np.zeros_like(t), "angle": np.zeros_like(t),
               "sx": np.ones_like(t), "sy": np.ones_like(t), "alpha": np.ones_like(t)}
    names = components(spec.motion)
    for name, p in zip(names, spec.params):
        for key, val in PROGRAMS[name].fn(t, p).items():
            out[key] = out[key] * val if key in ("sx", "sy", "alpha") else out[key] + val
    out["angle"] = np.mod(out["angle"] + 180.0, 360.0) - 180.0  # spins wrap: same pose, same number
    progs = [PROGRAMS[n] for n in names]
    # A rotating combo pivots about the centre (a spinning bounce should not orbit its base).
    pivot = 0.0 if len(progs) > 1 and "spin" in names else max(p.pivot_y for p in progs)
    return MotionFrames(**out, pivot_y=pivot, bounded=all(p.bounded for p in progs))


def motion_phrase(motion: str, rng: np.random.Generator) -> str:
    """A caption phrase with a random synonym per component: "bouncing and spinning"."""
    return " and ".join(str(rng.choice(PROGRAMS[c].phrases)) for c in components(motion))


# ---------------------------------------------------------------------------------------------- rendering
def _premul_resize(sprite: np.ndarray, w: int, h: int) -> Image.Image:
    """Resize straight-alpha RGBA (h0, w0, 4) → premultiplied "RGBa" image (no dark fringes)."""
    return Image.fromarray(sprite, "RGBA").convert("RGBa").resize((max(1, w), max(1, h)), Image.LANCZOS)


def _outline_points(sprite: np.ndarray, grid: int = 32) -> np.ndarray:
    """(P, 2) points enclosing the sprite's visible pixels, in object units (larger half-side = 1).

    Corners of the left/right-most occupied cells of each row and top/bottom-most of each column of a coarse
    ``grid`` occupancy map: a superset of the convex hull's corners, so the extents of any affine image of
    the object are the extents of these points (P ≤ 8 · grid).
    """
    h, w = sprite.shape[:2]
    side = max(h, w)
    cell = -(-side // grid)  # ceil: cells of cell × cell pixels
    a = np.zeros((grid * cell, grid * cell), bool)
    a[:h, :w] = sprite[..., 3] > 8
    occ = a.reshape(grid, cell, grid, cell).any(axis=(1, 3))  # (grid, grid) [row, col]
    rows, cols = np.nonzero(occ)
    if len(rows) == 0:
        return np.zeros((1, 2))
    ext = []
    for r in np.unique(rows):
        cs = cols[rows == r]
        ext += [(cs.min(), r), (cs.max(), r)]
    for c in np.unique(cols):
        rs = rows[cols == c]
        ext += [(c, rs.min()), (c, rs.max())]
    cells = np.array(ext, np.float64) * cell  # top-left corners in pixels
    pts = np.concatenate([cells + [ox * cell, oy * cell] for ox in (0, 1) for oy in (0, 1)])
    pts = np.minimum(pts, [w, h])
    return (pts - [w / 2, h / 2]) / (side / 2)


def _matrices(mf: MotionFrames) -> np.ndarray:
    """(F, 2, 2) linear part R(angle) @ S(sx, sy), with image y pointing down (CCW on screen)."""
    a = np.deg2rad(mf.angle)
    c, s = np.cos(a), np.sin(a)
    rot = np.stack([np.stack([c, s], -1), np.stack([-s, c], -1)], -2)  # (F, 2, 2)
    return rot * np.stack([mf.sx, mf.sy], -1)[:, None, :]  # column scaling = R @ diag(sx, sy)


def render_motion(sprite: np.ndarray, mf: MotionFrames, size: int, *, object_frac: float = 0.62,
                  margin: float = 0.04) -> np.ndarray:
    """Animate a straight-alpha RGBA sprite (h, w, 4) uint8 → (F, size, size, 4) uint8 straight RGBA.

    The object's larger side is ``object_frac`` of the canvas, shrunk where needed so that every frame of a
    bounded motion keeps the object ``margin`` inside the canvas; translations are re-centred so asymmetric
    motions (bounce goes up only) stay centred.
    """
    h0, w0 = sprite.shape[:2]
    side0 = max(h0, w0)
    half_h = h0 / side0  # object half-height in object units
    pivot = np.array([0.0, mf.pivot_y * half_h])
    lin = _matrices(mf)  # (F, 2, 2)
    d = np.stack([mf.dx, mf.dy], 1)  # (F, 2) canvas fractions
    half = object_frac / 2  # object larger half-side as a canvas fraction
    margin = max(margin, 2.5 / size)  # ≥ 2.5 px: the bicubic kernel reaches 2 px beyond the object
    if mf.bounded:
        d = d - (d.max(0) + d.min(0)) / 2
        pts = _outline_points(sprite)  # (P, 2)
        v = np.einsum("fij,pj->fpi", lin, pts - pivot) + pivot  # (F, P, 2) offsets at unit scale
        lim = 0.5 - margin
        room = np.where(v > 0, lim - d[:, None, :], lim + d[:, None, :])  # distance to the wall v points at
        with np.errstate(divide="ignore"):
            fits = np.where(np.abs(v) > 1e-9, room / np.abs(v), np.inf)
        half = float(min(half, max(0.05, fits.min())))
    k = half * size  # pixels per object unit at scale 1
    max_scale = float(max(1.0, np.abs(mf.sx).max(), np.abs(mf.sy).max()))
    # Pre-resize once so the per-frame affine only ever minifies (bicubic would alias when shrinking a lot).
    ppu = k * max_scale  # sprite pixels per object unit
    img = _premul_resize(sprite, round(w0 / side0 * 2 * ppu), round(h0 / side0 * 2 * ppu))
    cp = np.array([img.width / 2, img.height / 2])
    frames = np.zeros((len(mf.dx), size, size, 4), np.uint8)
    for f in range(len(mf.dx)):
        m = lin[f]
        # forward: p = T + k * m @ q, T = centre + d*size + k * (pivot - m @ pivot); q_px = cp + ppu * q
        tr = np.array([size / 2, size / 2]) + d[f] * size + k * (pivot - m @ pivot)
        try:
            inv = np.linalg.inv(m) * (ppu / k)
        except np.linalg.LinAlgError:
            continue  # degenerate scale: an empty frame
        off = cp - inv @ tr
        data = (inv[0, 0], inv[0, 1], off[0], inv[1, 0], inv[1, 1], off[1])
        out = img.transform((size, size), Image.AFFINE, data, resample=Image.BICUBIC, fillcolor=(0, 0, 0, 0))
        frames[f] = np.asarray(out.convert("RGBA"))
    a = frames[..., 3].astype(np.float32) * mf.alpha[:, None, None].astype(np.float32)
    frames[..., 3] = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    frames[..., :3][frames[..., 3] == 0] = 0  # no colour under fully transparent pixels
    return frames


def sample_durations(num_frames: int, rng: np.random.Generator) -> list[int]:
    """Per-frame durations like real stickers: a base of 40–150 ms (GIF-style multiples of 10),
    and a fifth of the clips with uneven timing (held frames)."""
    base = int(rng.choice([40, 50, 60, 70, 80, 90, 100, 120, 150]))
    dur = np.full(num_frames, base)
    if rng.uniform() < 0.2:
        dur = dur + 10 * rng.integers(-2, 5, size=num_frames)
    return [int(x) for x in np.clip(dur, 40, 200)]
