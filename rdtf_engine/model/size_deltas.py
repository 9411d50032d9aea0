"""Size deltas: low-rank weight changes of the DFGN that act only above its draft size (docs/method.md §2.5).

A base model learnt to draw at its draft size (the shipped one at 128 px: a 16 × 16 latent grid) and must also
draw at a larger native size. Fine-tuning all its weights there made it forget the draft size it drafts text →
video at: colours went first, then shapes, lease after lease — an anchor towards the old model's predictions
slowed that, it did not stop it (docs/results.md). Size deltas make the forgetting impossible by construction:
every Conv2d / Conv3d / Linear ``W`` of the network gets a low-rank companion ``Δ(x) = up(down(x))`` — ``down``
the layer's own kernel, stride and padding into ``r`` channels, ``up`` a 1 × 1 (zero at init) back out — and

    layer output = W(x)          on the draft-size latent grid (``off_latent``), exactly the base model's;
                 = W(x) + Δ(x)   on any other grid.

Train only the deltas (``TrainConfig.trainable = "deltas"``) and the draft-size network stays the base model
bit for bit while the native size learns; for the ``small`` preset the deltas are 30 % more weights at rank 32
(61 % at 64; ``count``). The gate is a Python flag set by ``DFGN.forward`` from the latent grid, so a CUDA graph or an
ONNX export, both made per input shape, each capture one branch.

Style deltas (:class:`StyleDeltas`) are the same companions with the other gate: on *only* on the draft-size grid
and only while switched on (``on``; the pipeline does it for a prompt carrying the card's ``style_tag``). A base
whose draft size learnt one art style (flat Noto emoji) learns a second one there (artist-drawn 3-D Fluent clips)
without forgetting the first: with the tag off the network is the base bit for bit, so every plain prompt draws
exactly as before (training the draft on both styles at once overwrote the first, docs/results.md).

Few-step deltas (:class:`FewStepDeltas`) act on every grid while switched on (the pipeline does it for a sample
drawn by the few-step sampler): a consistency-distilled student of the network (training/consistency.py) that
draws in a few unguided steps what the network draws in many guided ones, with the network itself untouched.
They act on top of the size deltas at the native size: their hooks run inside the size deltas' (a merged weight
is W + ΔW_size + ΔW_fast, and each hook puts back what it found).
"""

from __future__ import annotations

import torch
from torch import nn

TARGETS = (nn.Conv2d, nn.Conv3d, nn.Linear)
# state-dict prefixes of the three kinds of deltas (attribute names on the DFGN): none wraps another's layers
PREFIXES = ("size_deltas.", "style_deltas.", "few_step_deltas.")


def _key(name: str) -> str:
    return name.replace(".", "__")  # ModuleDict keys may not contain dots


class LowRankDelta(nn.Module):
    """Δ for one layer: ``down`` (the layer's kernel/stride/padding, in → r) then ``up`` (1 × 1, r → out, zero init).

    Conv2d (N, C_in, H, W) -> (N, C_out, H', W'); Conv3d (N, C_in, D, H, W) -> (N, C_out, D', H', W'); Linear (…, in) -> (…, out).
    """

    def __init__(self, layer: nn.Module, rank: int) -> None:
        super().__init__()
        if isinstance(layer, nn.Linear):
            r = max(1, min(rank, layer.in_features, layer.out_features))
            self.down = nn.Linear(layer.in_features, r, bias=False)
            self.up = nn.Linear(r, layer.out_features, bias=False)
        else:
            conv = nn.Conv2d if isinstance(layer, nn.Conv2d) else nn.Conv3d
            r = max(1, min(rank, layer.in_channels, layer.out_channels))
            self.down = conv(layer.in_channels, r, layer.kernel_size, stride=layer.stride, padding=layer.padding,
                             dilation=layer.dilation, bias=False)
            self.up = conv(r, layer.out_channels, 1, bias=False)
        nn.init.zeros_(self.up.weight)  # Δ = 0 at init: the native size starts as the base model's behaviour there

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))

    def combined(self) -> torch.Tensor:
        """ΔW with ``Δ(x) = conv(x, ΔW)`` (or ``x @ ΔWᵀ``): up is a 1 × 1 and down has the layer's own kernel,
        stride and padding, so the two compose into one kernel of the layer's shape (in float32)."""
        up, down = self.up.weight.float().flatten(1), self.down.weight.float()  # (out, r), (r, in, *kernel)
        return torch.einsum("or,ri...->oi...", up, down)


class DeltaHook:
    """The hooks of one layer. Training (gradients on): output + Δ(input). Sampling (gradients off): the layer runs
    once with its merged weight W + ΔW swapped in before and its own put back after — the same result to rounding
    at no extra convolution (added per layer, 213 more small convolutions made a 256 px sample on 2 CPU cores 36 %
    slower with PyTorch, 19 % with ONNX Runtime). An object, not a closure: ``copy.deepcopy`` of the model (the
    EMA and fp16 copies do that) then points the copy's hooks at the copy's deltas and gate, not at the original's."""

    def __init__(self, owner: SizeDeltas, key: str) -> None:
        self.owner, self.key = owner, key
        self.stash: nn.Parameter | None = None

    def before(self, module: nn.Module, args: tuple) -> None:
        if self.owner.merging:
            self.stash = module._parameters["weight"]
            module._parameters["weight"] = self.owner.merged(self.key, self.stash)

    def __call__(self, module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor | None:
        if self.stash is not None:  # merged: put the layer's own weight back
            module._parameters["weight"], self.stash = self.stash, None
            return None
        if not self.owner.active:
            return None  # the layer's own output, untouched
        return out + self.owner.deltas[self.key](args[0]).to(out.dtype)


class SizeDeltas(nn.Module):
    """The deltas of every target layer of ``model`` (registered as forward hooks) and their on/off gate.

    ``off_latent``: the latent side (draft size / 8) at which every delta is off. ``set_grid(h, w)`` is called by
    the model's forward before its layers run.
    """

    nested = False  # True: hooks run inside the other kinds' (prepended post-hook), so merged weights stack

    def __init__(self, model: nn.Module, rank: int, off_latent: int) -> None:
        super().__init__()
        self.rank, self.off_latent = int(rank), int(off_latent)
        self.active = self.merging = False
        # freeze(): layer key → [(the weight merged into, the merged weight)]; None: merged afresh every forward
        self._frozen: dict[str, list[tuple[torch.Tensor, nn.Parameter]]] | None = None
        layers = [(name, m) for name, m in model.named_modules()
                  if isinstance(m, TARGETS) and getattr(m, "groups", 1) == 1
                  and not any(f"{name}.".startswith(p) for p in PREFIXES)]
        self.deltas = nn.ModuleDict({_key(name): LowRankDelta(m, self.rank) for name, m in layers})
        for name, m in layers:
            hook = DeltaHook(self, _key(name))
            m.register_forward_pre_hook(hook.before)
            # always_call: puts the layer's own weight back even on an error
            m.register_forward_hook(hook, always_call=True, prepend=self.nested)

    def set_grid(self, h: int, w: int) -> None:
        """Called once per forward, before the layers run: on or off by the latent grid; merged when sampling."""
        self.active = not (int(h) == self.off_latent and int(w) == self.off_latent)
        self.merging = self.active and not torch.is_grad_enabled()

    def merged(self, key: str, weight: torch.Tensor) -> nn.Parameter:
        """W + ΔW for layer ``key``, built afresh by every forward that samples unless the deltas are frozen
        (:meth:`freeze`, a model loaded only to sample). No cache otherwise: while training, the weights change in
        ways no cheap stamp sees — a fused AdamW step and the EMA's ``.data`` copies leave ``Tensor._version`` as it
        was, and a cache keyed on it once validated a training run with its step-0 deltas for 400 steps. Building it
        costs ≈ 3 % of a 256 px forward on 2 CPU cores (24 ms for all 213 layers); inside a CUDA graph the merge is
        captured with the layer, so a replay reads the deltas as they are; an ONNX export folds it into constants."""
        frozen = self._frozen
        if frozen is not None:
            for seen, merged in frozen.get(key, ()):
                if seen is weight and merged.device == weight.device:
                    return merged
        delta = self.deltas[key]
        with torch.no_grad():
            w = (weight.float() + delta.combined().to(weight.device)).to(weight.dtype)
        merged = nn.Parameter(w, requires_grad=False)
        if frozen is not None:  # (one entry per weight: a model moved to another device replaces its entries)
            frozen[key] = [e for e in frozen.get(key, []) if e[0] is not weight] + [(weight, merged)]
        return merged

    def freeze(self) -> None:
        """For weights that no longer change (a model loaded to sample, never trained in place): each merged weight
        is built once, on first use, and kept — keyed by the layer and the very weight it merges into, since the
        few-step deltas merge into the size deltas' merged weight at the native size and into the layer's own at the
        draft size. A GPU denoiser step at 256 px then runs no merge kernels (≈ 850 fewer), the CPU's eager one
        ≈ 3 % less work; the result is the same tensor the unfrozen merge builds every step."""
        self._frozen = {}


class StyleDeltas(SizeDeltas):
    """Deltas on the draft-size grid alone, while ``on`` (module docstring): off by default, so a model loaded for
    anything but a styled prompt is its base exactly. ``on_latent``: the draft size's latent side."""

    def __init__(self, model: nn.Module, rank: int, on_latent: int) -> None:
        super().__init__(model, rank, on_latent)
        self.on = False

    def set_grid(self, h: int, w: int) -> None:
        self.active = self.on and int(h) == self.off_latent and int(w) == self.off_latent
        self.merging = self.active and not torch.is_grad_enabled()


class FewStepDeltas(SizeDeltas):
    """Deltas on every latent grid, while ``on`` (module docstring): off by default, so the network samples as itself
    unless the few-step sampler switches them on. Registered after the other kinds with ``nested``: a pre-hook
    swaps in W + ΔW_size + ΔW_fast after the size deltas' W + ΔW_size, and its post-hook runs first, putting back
    W + ΔW_size for theirs to put back W."""

    nested = True

    def __init__(self, model: nn.Module, rank: int) -> None:
        super().__init__(model, rank, 0)
        self.on = False

    def set_grid(self, h: int, w: int) -> None:
        self.active = self.on
        self.merging = self.active and not torch.is_grad_enabled()


def _switch(model: nn.Module, kind: str, on: bool) -> bool:
    """Switch ``model``'s deltas of ``kind`` (the DFGN attribute) on or off; → whether it has any. A deep copy of the
    model keeps its own switch."""
    deltas = getattr(model, kind, None)
    if deltas is not None:
        deltas.on = bool(on)
    return deltas is not None


def set_few_step(model: nn.Module, on: bool) -> bool:
    """Switch ``model``'s few-step deltas on or off; → whether it has any."""
    return _switch(model, "few_step_deltas", on)


def few_step_on(model: nn.Module) -> bool:
    """Whether ``model``'s few-step deltas are switched on."""
    deltas = getattr(model, "few_step_deltas", None)
    return bool(deltas is not None and deltas.on)


def set_style(model: nn.Module, on: bool) -> bool:
    """Switch ``model``'s style deltas on or off (a deep copy keeps its own switch); → whether it has any."""
    return _switch(model, "style_deltas", on)


def style_on(model: nn.Module, grid: tuple[int, int] | None = None) -> bool:
    """Whether ``model``'s style deltas are switched on (and, given a latent ``grid`` (h, w), act on it)."""
    deltas = getattr(model, "style_deltas", None)
    on = bool(deltas is not None and deltas.on)
    return on and (grid is None or tuple(int(g) for g in grid) == (deltas.off_latent, deltas.off_latent))


def freeze_deltas(model: nn.Module) -> int:
    """Freeze every kind of deltas ``model`` has (:meth:`SizeDeltas.freeze`): for a model loaded to sample whose
    weights will not change; → how many kinds it has."""
    kinds = [getattr(model, k.rstrip("."), None) for k in PREFIXES]
    for deltas in kinds:
        if deltas is not None:
            deltas.freeze()
    return sum(d is not None for d in kinds)


def count(model: nn.Module, kind: str = "size_deltas") -> int:
    """Number of delta weights of ``kind`` ("size_deltas" | "style_deltas" | "few_step_deltas") in ``model``."""
    deltas = getattr(model, kind, None)
    return sum(p.numel() for p in deltas.parameters()) if deltas is not None else 0
