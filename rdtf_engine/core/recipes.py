"""Training recipes: named ``ModelConfig`` + ``TrainConfig`` values (and run cadence) that the CLI
(``rdtf train --recipe NAME``) and the app's Train page turn into the same ``TrainRequest``.

``pack`` ("train on my pack") fine-tunes the shipped default model: its autoencoder, resolution, text encoder,
preset and reference attention (every ``model`` field None = the base's; for the 256 px default with size deltas,
its 128 px draft network: ``ModelConfig.resolved``), with a recipe per device: on CUDA the
autoencoder's decoder tuned on the pack first, then a batch that keeps the GPU busy in bf16, ≤ 10 minutes in all;
on CPU the same at batch 2 with a shorter decoder tune, the steps capped at 50 minutes (docs/app.md has the numbers).

``quick`` / ``standard`` / ``long`` train a new network from scratch: an advanced choice, since a model that
draws recognisable characters from scratch needs thousands of clips and GPU hours (``SCRATCH_WARNING``).
``custom`` is the CLI's run driven by its flags alone (from scratch: tiny preset, 64 px, 1,000 steps).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rdtf_engine.core.config import ModelConfig, RunControl, TrainConfig
from rdtf_engine.core.errors import InputError
from rdtf_engine.core.requests import TrainRequest

DEFAULT_RECIPE = "pack"
SCRATCH_WARNING = ("Training from scratch starts from random weights: expect coloured blobs unless you train on "
                   "thousands of stickers for hours on a GPU. To teach the model your characters, use "
                   "“Fine-tune the shipped model”.")


@dataclass(frozen=True)
class Recipe:
    name: str
    label: str
    model: ModelConfig
    train: TrainConfig
    sample_every: int = 0
    checkpoint_every: int = 100
    init_from: str | None = None  # a fine-tune's base model
    mixed_precision: str = "auto"
    max_minutes: float = 0.0  # > 0: the run stops there (checkpoint and model saved) whatever steps remain
    notes: str = ""

    @property
    def from_scratch(self) -> bool:
        return self.init_from is None

    def request(self, data: str, out: str, **run: object) -> TrainRequest:
        """This recipe on ``data`` in the run folder ``out``; ``run``: other RunControl fields (device…)."""
        ctl = RunControl(out=out, sample_every=self.sample_every, checkpoint_every=self.checkpoint_every,
                         mixed_precision=self.mixed_precision, max_minutes=self.max_minutes)
        return TrainRequest(dataclasses.replace(self.model), dataclasses.replace(self.train, data=data),
                            dataclasses.replace(ctl, **run), self.init_from)


def _fine_tune(device: str) -> Recipe:
    if device == "cuda":
        # One GPU: batch 256 of 16 × 16 latents (128 px) is where the small model stops being launch-bound
        # (≈ 214 ms a step on an H200, docs/results.md); 2,000 steps ≈ 7 minutes plus set-up.
        return Recipe("pack", "Fine-tune the shipped model (GPU, about 10 min)", ModelConfig(),
                      TrainConfig(steps=2000, batch_size=256, lr=1e-4, ema_decay=0.995,
                                  decoder_steps=GPU_DECODER_STEPS),
                      sample_every=250, checkpoint_every=250, init_from="default", mixed_precision="bf16",
                      notes="decoder tuned on the pack, then all DFGN weights, batch 256, bf16")
    # CPU (also MPS): all weights at batch 2, a short decoder tune first, the whole run capped at CPU_PACK_MINUTES.
    # Chosen by measurement (docs/results.md, "The CPU recipe"): on 2 idle cores the real loop runs 1.1-1.2 batch-2
    # steps/s and the decoder tune ≈ 1.25 batch-4 steps/s; screened on a tuning pack at equal time (≈ 1,100-1,500
    # steps), all weights drew 5-6 of 24 captions as their own sticker, the attention and temporal layers alone
    # 1-2, the text cross-attention alone 4. At the CPU's real step count (screened the same way to the end):
    # 3,600 steps drew 14-16 of 24 captions as their own sticker against 10-11 at 3,000, and text guidance 8
    # (saved in the model's card, so generate and the app draw with it) 63 % on average over five variants
    # against 55 % at the engine's 4, with more motion and no flicker. A few thousand batch-2 steps give text → video
    # few samples, so the curriculum starts at the base's late, generation-heavy task mix (continue_curriculum) and
    # captions keep their subject word (word_dropout 0): with both, 21 of 24 against 18 on the tuning pack, and on
    # the evaluation packs 22 / 14 / 18 of 24 (GPU screen) against 16 / 12 / 19 before (on this CPU: animals 20 of 24
    # against 16; docs/results.md).
    return Recipe("pack", "Fine-tune the shipped model", ModelConfig(),
                  TrainConfig(steps=CPU_PACK_STEPS, batch_size=2, lr=1e-4, ema_decay=0.995, trainable="all",
                              decoder_steps=CPU_DECODER_STEPS, guidance_text=CPU_PACK_GUIDANCE,
                              continue_curriculum=True, word_dropout=0.0),
                  sample_every=500, checkpoint_every=250, init_from="default", max_minutes=CPU_PACK_MINUTES,
                  notes="decoder tuned briefly, then all DFGN weights, batch 2, about an hour at most")


CPU_PACK_STEPS = 3600  # ≈ 51 min of steps on 2 idle cores (1.18 steps/s); a slower machine stops at the cap
# The step loop's cap; the decoder tune (at most 15 % of it) and encoding come before: ≈ 8.5 min on 2 idle cores,
# so the whole run stays within about an hour on any machine.
CPU_PACK_MINUTES = 50.0
CPU_PACK_GUIDANCE = 8.0
CPU_DECODER_STEPS = 400  # batch 4: ≈ 5.5–6 min on 2 idle cores (and at most 15 % of the time cap)
# GPU: the decoder's tune (batch 32 at 128 px, ≈ 16 passes over a 24-sticker pack's ≈ 3,000 window frames) costs
# about a minute of the ten; it brings back the pack's colours and removes the base decoder's grid texture.
GPU_DECODER_STEPS = 1500

_SCRATCH = {
    "quick": Recipe("quick", "From scratch: quick (try it out)", ModelConfig("tiny", 64),
                    TrainConfig(steps=300, ae_steps=200, batch_size=4), sample_every=50, checkpoint_every=50),
    "standard": Recipe("standard", "From scratch: standard", ModelConfig("small", 64),
                       TrainConfig(steps=3000, ae_steps=800, batch_size=4), sample_every=250, checkpoint_every=250),
    "long": Recipe("long", "From scratch: long (best quality)", ModelConfig("small", 128),
                   TrainConfig(steps=12000, ae_steps=2000, batch_size=8), sample_every=500, checkpoint_every=500),
    "custom": Recipe("custom", "Custom (the command-line flags alone)", ModelConfig(), TrainConfig()),
}

RECIPES = ("pack", *_SCRATCH)
APP_RECIPES = ("pack", "quick", "standard", "long")  # what the Train page offers, the default first


def recipe(name: str, device: str = "cpu") -> Recipe:
    """The recipe ``name`` for a device kind ("cpu" | "cuda" | "mps")."""
    if name == "pack":
        return _fine_tune("cuda" if device.startswith("cuda") else "cpu")
    if name not in _SCRATCH:
        raise InputError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return _SCRATCH[name]


__all__ = ["APP_RECIPES", "DEFAULT_RECIPE", "RECIPES", "SCRATCH_WARNING", "Recipe", "recipe"]
