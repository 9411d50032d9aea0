"""StickerPipeline: validate → encode text / condition frames → denoise loop → decode RGBA.

Sampling uses diffusers schedulers: DPM-Solver++ (~20 steps), UniPC, DDIM (the paper's 50 steps, η = 1), or LCM
for a model with few-step deltas (4 unguided steps; also its refinement alone when the card's ``refine_sampler``
says so). Guidance (docs/method.md §6; the paper leaves the two-scale rule open; we use InstructPix2Pix's):

    no condition frames:  ε = ε(∅) + s_txt·(ε(txt) − ε(∅))
    with frames given:    ε = ε(∅,∅) + s_img·(ε(img,∅) − ε(∅,∅)) + s_txt·(ε(img,txt) − ε(img,∅))

A model samples at the size it was trained at (``card.size``): a UNet run on a latent grid it never saw composes
badly (duplicated or broken objects), so another requested size is generated at the native size and resampled
(premultiplied Lanczos, ``formats.timing.fit_canvas``); given frames are resampled to the native size to condition on.
A model trained at a smaller draft size too (``card.draft_size``) makes text → video in two stages: the clip at the
draft size, where the small latent grid lays the figure out, then enlarged and refined at the native size from
``card.refine_strength`` of the schedule (img2img), at ``card.refine_guidance`` when the card sets one; with frames
given (at the sample's own guidance), the frames carry the layout unless the card says ``draft_given`` (then they
are given, downscaled, to the draft too, and locked in both stages).

Clips longer than the model's window (``num_frames``, 8) are generated window by window: each next window
gets the last ``OVERLAP`` generated frames as given frames (the forward-prediction task of the condition
mask), so one model trained on 8-frame windows makes 24-frame stickers. Locked frames come back unchanged.

With frames given, sampling starts from the forward process at the first timestep t₀ applied to a prior clip
(``condition_prior``: every frame a copy of, or a blend between, the nearest given frames) instead of from pure
noise: x_t₀ = √ᾱ_t₀·prior + √(1−ᾱ_t₀)·ε, which is what training showed the network at t₀ (ᾱ_t₀ > 0). On held-out
emoji it raised image&text→video motion accuracy and lowered FD and flicker; identity was unchanged in total
(docs/results.md, round 5: 48 held-out it2v clips).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from rdtf_engine.core.errors import Cancelled, InputError
from rdtf_engine.core.requests import (
    DEFAULT_GUIDANCE_IMAGE,
    DEFAULT_GUIDANCE_TEXT,
    DEFAULT_STRENGTH,
    model_few_steps,
)
from rdtf_engine.diffusion.schedule import sampling_scheduler
from rdtf_engine.diffusion.step_runtime import StepFunctions
from rdtf_engine.model.autoencoder import decode_latents, encode_frames, rgba_to_tensor, tensor_to_rgba
from rdtf_engine.model.size_deltas import few_step_on, freeze_deltas, set_few_step, set_style, style_on
from rdtf_engine.model.text import NULL_PROMPT

OVERLAP = 2


@dataclass
class SampleParams:
    """Everything one sampling run depends on (its output is a pure function of these and the weights).

    ``cond_frames[i]``: an RGBA (size, size, 4) uint8 frame given for slot i, or None (condition mask 0).
    ``strength`` (0, 1]: with frames given, the share of ``steps`` that is run, starting from the given frames'
    prior noised to that point (diffusers' img2img ``strength``); 1 = from the first timestep. Lower keeps more
    of the given picture and allows less motion. Without given frames it is ignored.
    ``preview_every``: with a ``preview`` hook, hand it the current clean-frame estimate every N steps."""

    prompt: str
    frames: int = 8
    size: int = 256
    steps: int = 20
    seed: int = 0
    guidance_text: float = DEFAULT_GUIDANCE_TEXT
    guidance_image: float = DEFAULT_GUIDANCE_IMAGE
    strength: float = DEFAULT_STRENGTH
    scheduler: str = "dpm"  # requests.SCHEDULERS; "lcm": the model's few-step deltas, unguided (guidance baked in)
    cond_frames: Sequence[np.ndarray | None] = field(default_factory=list)
    preview_every: int = 0


@dataclass
class _Window:
    """One window of the clip being denoised: what ``_denoise`` needs besides the run's ``SampleParams``."""

    cond: torch.Tensor  # (W, 4, h, w) clean latents of the given / already generated frames, zero elsewhere
    mask: list[bool]  # (W,) which frames are given
    run: int  # how many of the schedule's last timesteps to take (img2img strength)
    on_step: Callable[[int], None]  # after each step, with the step's number in this window (1-based)
    peek: Callable[[int, torch.Tensor], None] | None = None  # (step, x̂₀ (W, 4, h, w)) for the live preview
    init: torch.Tensor | None = None  # (W, 4, h, w) a draft to refine: start from it noised to the run's first step


@dataclass
class _Stage:
    """What every window of one sampling run shares: the request, text states, noise and the caller's hooks."""

    p: SampleParams
    text: tuple[torch.Tensor, torch.Tensor]  # (2, L, D) states of (∅, prompt), (2, L) mask
    gen: torch.Generator
    should_stop: Callable[[], bool] | None
    callback: Callable[[int, int], None] | None
    total: int  # steps over all windows and stages
    preview: Callable[[int, np.ndarray], None] | None
    out_size: int


class StickerPipeline:
    def __init__(self, unet, vae, card, text, device: torch.device, cuda_graphs: bool = True,
                 cpu_runtime: str | None = None, cpu_precision: str | None = None):
        """``cuda_graphs``: on a CUDA device, replay each denoiser step as a captured CUDA graph (the same maths as
        eager, without the per-kernel launch cost; falls back to eager by itself if capture fails).
        ``cpu_runtime``: on the CPU, "auto" / "onnx" (ONNX Runtime when installed) / "openvino" / "torch"; None =
        ``$RDTF_CPU_RUNTIME`` or auto; ``cpu_precision``: "auto" / "fp32" / "bf16"; None = ``$RDTF_CPU_PRECISION``
        or auto (bf16 where the processor has it; ``diffusion.cpu_runtime``)."""
        self.unet, self.vae, self.card, self.text, self.device = unet.eval(), vae.eval(), card, text, device
        self.scale = float(card.latent_scale)
        self.step_fns = StepFunctions(self.unet, device, cuda_graphs, cpu_runtime, cpu_precision)
        self._styled = False  # this sample is drawn with the style deltas (__call__), on the steps below style_below_t

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "auto") -> StickerPipeline:
        from rdtf_engine.model.store import load_model_folder
        from rdtf_engine.model.text import get_text_encoder

        dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                           ("cpu" if device == "auto" else device))
        if dev.type == "cuda":
            from rdtf_engine.core.device import configure_cuda

            configure_cuda()
        unet, vae, card = load_model_folder(path, device=dev)
        freeze_deltas(unet)  # loaded to sample: its weights never change, so each merged weight is built once
        return cls(unet, vae, card, get_text_encoder(card.text, dev), dev)

    @torch.no_grad()
    def __call__(self, p: SampleParams, *, callback: Callable[[int, int], None] | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 preview: Callable[[int, np.ndarray], None] | None = None) -> np.ndarray:
        """→ uint8 RGBA (frames, size, size, 4).

        ``callback(i, total)`` is called with i = 0 before the first step, then after each step.
        ``preview(step, frames)`` gets the current clean-frame estimate of the window being denoised every
        ``p.preview_every`` steps (one extra decode each time: the app's live preview) — of the draft only, when
        the sample is drafted small and refined."""
        known = [f is not None for f in (p.cond_frames or [])]
        if p.scheduler == "lcm":
            self.check_few_step(int(p.steps))
        self._styled = self.styled(p.prompt, any(known))  # a styled prompt's draft: the style deltas (_steps)
        was_on, was_few = style_on(self.unet), few_step_on(self.unet)  # a style run's network has them on
        set_style(self.unet, False)  # off unless this sample is styled: _steps switches them per step then
        try:
            return self._sample(p, callback, should_stop, preview)
        finally:  # whatever uses the network next (a held-out loss, the next training step) finds it as it was
            self._styled = False
            set_style(self.unet, was_on)
            set_few_step(self.unet, was_few)

    def check_few_step(self, steps: int) -> None:
        """The few-step sampler needs the model's few-step deltas, and at most the distillation grid's steps."""
        from rdtf_engine.diffusion.schedule import LCM_GRID

        if getattr(self.unet, "few_step_deltas", None) is None:
            raise InputError("the few-step sampler (lcm) needs a model distilled for it (few-step deltas); this "
                             "model has none: pick another sampler, or distil it (rdtf train --objective consistency)")
        if not 1 <= steps <= LCM_GRID:
            raise InputError(f"the few-step sampler takes 1 to {LCM_GRID} steps, got {steps}")

    def _sample(self, p: SampleParams, callback, should_stop, preview) -> np.ndarray:
        from rdtf_engine.formats.timing import fit_canvas

        num_frames, out_size, size = int(p.frames), int(p.size), int(self.card.size) or int(p.size)
        cond_frames = list(p.cond_frames) if p.cond_frames else [None] * num_frames
        known = [f is not None for f in cond_frames]
        gen = torch.Generator(device="cpu").manual_seed(int(p.seed))
        text = self.text.encode([NULL_PROMPT, p.prompt])
        n_win = len(self._window_starts(num_frames))
        draft = self._draft_size(known, size)
        first = sampled_steps(p.steps, p.strength if any(known) else 1.0)
        rp = self._refining(p, any(known)) if draft else p  # the refinement stage's request
        runs = [first, sampled_steps(rp.steps, self.card.refine_strength)] if draft else [first]
        total = n_win * sum(runs)
        if callback is not None:
            callback(0, total)  # the real total (windows × the steps strength leaves) before the first step
        stage = _Stage(p, text, gen, should_stop, callback, total, preview, out_size)
        given = self._given_latents(cond_frames, size)  # (F, 4, h, w)
        init = None
        if draft:  # text → video drafted on the small grid, then refined from it (ModelCard.draft_size)
            set_few_step(self.unet, p.scheduler == "lcm")  # each stage draws with the deltas if its sampler does
            sketch = self._windows(self._given_latents(cond_frames, draft), known, runs[0], stage, None, 0)
            pix = fit_canvas(tensor_to_rgba(self._decode(sketch)), size, size)
            init = self._encode(rgba_to_tensor(pix)).to(self.device)  # (F, 4, h, w)
        # the live preview follows the draft alone: its estimates already show the sticker, and a refinement
        # preview's full-size decode cost ≈ 1 s of an ≈ 7.7 s sticker on 2 CPU cores (docs/performance.md)
        refine = replace(stage, p=rp, preview=None if draft else stage.preview)
        set_few_step(self.unet, rp.scheduler == "lcm")  # (also for a refinement the card gives the deltas)
        out = self._windows(given, known, runs[-1], refine, init, n_win * runs[0] if draft else 0)
        frames = fit_canvas(tensor_to_rgba(self._decode(out)), out_size, out_size)
        for i, f in enumerate(cond_frames):
            if f is not None:
                frames[i] = f  # a locked frame stays exactly what the user locked
        return frames

    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(F, 4, h, w) latents → (F, 4, 8h, 8w) pixels; on the CPU at bf16 precision under bf16 autocast."""
        return decode_latents(self.vae, latents, self.scale, bf16=self.step_fns.cpu_bf16)

    def _encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return encode_frames(self.vae, pixels, self.scale, bf16=self.step_fns.cpu_bf16)

    def _refining(self, p: SampleParams, given: bool) -> SampleParams:
        """The refinement stage's request: the draft's, with the card's ``refine_guidance`` for text → video (with
        frames given the image scale is what holds the given character: at 1, two more of 48 held-out characters
        drifted, docs/performance.md), and drawn by the few-step deltas when the card's ``refine_sampler`` is
        "lcm" (the card's ``few_step_steps``, of which ``refine_strength`` runs)."""
        g = float(getattr(self.card, "refine_guidance", 0.0) or 0.0)
        if g > 0 and not given:
            # both scales: a longer clip's later windows are given the frames carried over from the window before
            p = replace(p, guidance_text=g, guidance_image=g)
        if getattr(self.card, "refine_sampler", "") == "lcm" and p.scheduler != "lcm":
            steps = model_few_steps(self.card)
            self.check_few_step(steps)
            p = replace(p, scheduler="lcm", steps=steps)
        return p

    def styled(self, prompt: str, given: bool = False) -> bool:
        """Whether the style deltas draw this sample: ``prompt`` carries the card's style tag (case aside), and no
        frame is ``given`` unless the card says ``style_given``."""
        tag = str(getattr(self.card, "style_tag", "") or "").strip().lower()
        return bool(tag) and tag in prompt.lower() and (not given or bool(getattr(self.card, "style_given", False)))

    def _draft_size(self, known: list[bool], size: int) -> int:
        """The size this sample is drafted at before it is refined at ``size`` (0: none): the card's draft size,
        for text → video, and with frames given too when the card says ``draft_given`` (never when all are)."""
        draft = int(getattr(self.card, "draft_size", 0) or 0)
        if all(known) or (any(known) and not getattr(self.card, "draft_given", False)):
            return 0
        return draft if 0 < draft < size else 0

    def _windows(self, given: torch.Tensor, known: list[bool], run: int, st: _Stage, init: torch.Tensor | None,
                 offset: int) -> torch.Tensor:
        """Denoise the clip window by window: ``given`` (F, 4, h, w) latents of the given frames (zero elsewhere)
        → (F, 4, h, w). ``init``: latents to start from, noised to the first of the ``run`` steps (a refinement);
        ``offset``: steps already reported by an earlier stage."""
        num_frames = len(known)
        win = min(num_frames, int(self.card.num_frames))
        out = torch.zeros_like(given)
        done = [False] * num_frames
        for wi, s in enumerate(self._window_starts(num_frames)):
            idx = list(range(s, s + win))
            mask = [known[i] or done[i] for i in idx]
            cond = torch.stack([given[i] if known[i] else out[i] for i in idx])  # (W, 4, h, w)
            cond = cond * torch.tensor(mask, device=self.device, dtype=cond.dtype)[:, None, None, None]
            at = offset + wi * run
            window = _Window(cond, mask, run, lambda i, at=at: st.callback and st.callback(at + i, st.total),
                             self._peeker(st.preview, st.p.preview_every, at, run, st.out_size),
                             None if init is None else init[idx])
            z = self._denoise(window, st.p, st.text, st.gen, st.should_stop)
            for j, i in enumerate(idx):
                if not known[i] and not done[i]:
                    out[i] = z[j]
                    done[i] = True
        return out

    def _given_latents(self, cond_frames: list[np.ndarray | None], size: int) -> torch.Tensor:
        """Given RGBA frames → (F, 4, h, w) latents at the model's native ``size``, zero where none is given."""
        from rdtf_engine.formats.timing import fit_canvas

        h = size // 8
        given = torch.zeros(len(cond_frames), 4, h, h, device=self.device)
        known = [f is not None for f in cond_frames]
        if any(known):
            pix = rgba_to_tensor(fit_canvas(np.stack([f for f in cond_frames if f is not None]), size, size))
            given[torch.tensor(known)] = self._encode(pix).to(self.device)
        return given

    def _window_starts(self, num_frames: int) -> list[int]:
        """First frame of each window: windows of ``card.num_frames`` overlapping by ``OVERLAP``, the last one
        flush with the clip's end."""
        win = min(num_frames, int(self.card.num_frames))
        starts = list(range(0, max(num_frames - win, 0) + 1, max(win - OVERLAP, 1)))
        if starts[-1] + win < num_frames:
            starts.append(num_frames - win)
        return starts

    def _peeker(self, preview, every: int, offset: int, run: int, out_size: int):
        """The window's live-preview hook: decode x̂₀ every ``every`` steps and hand it to ``preview``."""
        if preview is None or every <= 0:
            return None
        from rdtf_engine.formats.timing import fit_canvas

        def peek(i: int, x0: torch.Tensor) -> None:
            if i % every == 0 and i < run:
                rgba = tensor_to_rgba(self._decode(x0))
                preview(offset + i, fit_canvas(rgba, out_size, out_size))

        return peek

    def _denoise(self, w: _Window, p: SampleParams, text: tuple[torch.Tensor, torch.Tensor],
                 gen: torch.Generator, should_stop: Callable[[], bool] | None) -> torch.Tensor:
        """One window: ``w.cond`` (W, 4, h, w) masked clean latents → denoised latents (W, 4, h, w)."""
        sched, timesteps, x = self._start(w, p, gen)
        ts = timesteps.to(self.device, torch.long)  # (S,) one copy before the loop; ts[i] is a device scalar
        return self._steps(sched, (timesteps, ts), x, w, p, self._branches(w, p, text), gen, should_stop)

    def _start(self, w: _Window, p: SampleParams, gen: torch.Generator):
        """→ (scheduler, the timesteps this window runs (CPU), the starting latents x (1, 4, W, h, w))."""
        steps = int(p.steps)
        sched = sampling_scheduler(self.card.diffusion, p.scheduler)
        # Timesteps stay on the host: the scheduler's own bookkeeping (index lookups, σ tables) then never waits
        # for the GPU inside the loop; the denoiser gets them from one device copy (``_steps``).
        sched.set_timesteps(steps, device="cpu")
        has_img = any(w.mask) or w.init is not None
        skip = max(0, steps - w.run) if has_img and w.run else 0  # (a window never runs more than all steps)
        timesteps = sched.timesteps[skip:]
        if skip and hasattr(sched, "set_begin_index"):  # multistep solvers count their steps; DDIM needs only t
            sched.set_begin_index(skip)
        shape = (1, 4) + tuple(w.cond.shape[:1]) + tuple(w.cond.shape[2:])
        x = torch.randn(shape, generator=gen).to(self.device) * sched.init_noise_sigma
        if has_img:  # start where training's forward process would be at t₀ for a clip like the prior
            if w.init is None:
                prior = condition_prior(w.cond, w.mask)  # (W, 4, h, w)
            else:  # a refinement: the draft, except frames an earlier window already refined
                given = torch.tensor(w.mask, device=w.cond.device)[:, None, None, None]
                prior = torch.where(given, w.cond, w.init)
            x = sched.add_noise(prior.permute(1, 0, 2, 3)[None], x, timesteps[:1])  # (1, 4, W, h, w)
        return sched, timesteps, x

    def _branches(self, w: _Window, p: SampleParams, text: tuple[torch.Tensor, torch.Tensor]):
        """The guidance branches as one batch → (txt (n, L, D), tmask (n, L), conds (n, 4, W, h, w), g (2,)):
        n = 2 rows (∅, txt) on the window's condition, or n = 3 (∅∅, img∅, img·txt) with frames given and an
        image scale ≠ 1; n = 1, the prompt's row alone, when every scale that applies is 1 (the guided ε̂ is then
        that row exactly, at a half or a third of the work). g = [text scale, image scale] as a device tensor, so
        a captured step serves any scale. The few-step sampler ("lcm") always runs the one row: its deltas learnt the
        guided drawing."""
        states, tmask = text
        c = w.cond.permute(1, 0, 2, 3)[None]  # (1, 4, W, h, w)
        unguided = p.scheduler == "lcm"  # the few-step deltas learnt the guided drawing: one row draws it
        if unguided or (p.guidance_text == 1.0 and (not any(w.mask) or p.guidance_image == 1.0)):
            conds, txt, tm = c, states[1:], tmask[1:]
        elif any(w.mask) and p.guidance_image != 1.0:
            conds = torch.cat([torch.zeros_like(c), c, c])
            txt, tm = states[[0, 0, 1]], tmask[[0, 0, 1]]
        else:
            conds = torch.cat([c, c])
            txt, tm = states, tmask
        g = torch.tensor([p.guidance_text, p.guidance_image], dtype=torch.float32, device=self.device)
        return txt, tm, conds, g

    def _steps(self, sched, timesteps: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor, w: _Window,
               p: SampleParams, branches: tuple, gen: torch.Generator,
               should_stop: Callable[[], bool] | None) -> torch.Tensor:
        """The denoising loop over ``timesteps`` = (on the host, the same on the device). Nothing in it reads a
        device tensor back to the host: the denoiser gets the device timestep, the scheduler's maths uses
        host-side σ tables, and no branch depends on a tensor's value, so on a GPU every step is queued without
        waiting (and replayed as a CUDA graph)."""
        timesteps, ts = timesteps
        step = self.step_fns.get((x, ts[0], *branches))
        # a CPU generator keeps η=1 DDIM and LCM (fresh noise between its steps) seed-deterministic
        extra = {"ddim": {"eta": 1.0, "generator": gen}, "lcm": {"generator": gen}}.get(p.scheduler, {})
        below = int(getattr(self.card, "style_below_t", 1000) or 1000) if self._styled else 0  # 0: never on
        for i, t in enumerate(timesteps):
            if should_stop is not None and should_stop():
                raise Cancelled("generation stopped")
            if below and set_style(self.unet, int(t) < below):  # the base lays out, the style deltas shade
                step = self.step_fns.get((x, ts[0], *branches))  # (a graph / ONNX network per branch)
            e = step(sched.scale_model_input(x, t), ts[i], *branches)  # guided ε̂ (1, 4, W, h, w)
            if w.peek is not None:
                # x̂₀ = (x_t − √(1−ᾱ_t)·ε̂) / √ᾱ_t: the model's current guess of the clean window (1, 4, W, h, w)
                a = sched.alphas_cumprod[int(t)].to(x.device)
                w.peek(i + 1, ((x - (1 - a).sqrt() * e) / a.sqrt())[0].permute(1, 0, 2, 3))
            x = sched.step(e, t, x, **extra).prev_sample
            w.on_step(i + 1)
        return x[0].permute(1, 0, 2, 3)  # (W, 4, h, w)


def sampled_steps(steps: int, strength: float) -> int:
    """How many of ``steps`` timesteps a sampling run with img2img ``strength`` takes (at least one)."""
    return max(1, min(int(steps), round(int(steps) * float(strength))))


def condition_prior(cond: torch.Tensor, mask: Sequence[bool]) -> torch.Tensor:
    """(W, …) given latents + which frames are given → (W, …) prior: a given frame is itself, a frame between
    two given ones their linear blend by position, one before the first / after the last a copy of it."""
    given = [i for i, m in enumerate(mask) if m]
    if not given:
        return torch.zeros_like(cond)
    out = torch.empty_like(cond)
    for i in range(len(mask)):
        lo = max((g for g in given if g <= i), default=None)
        hi = min((g for g in given if g >= i), default=None)
        if lo is None or hi is None or lo == hi:
            out[i] = cond[lo if hi is None else hi if lo is None else lo]
        else:
            w = (i - lo) / (hi - lo)
            out[i] = (1 - w) * cond[lo] + w * cond[hi]
    return out
