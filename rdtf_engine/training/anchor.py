"""An anchor: hold a fine-tune to a reference model's predictions where it must not forget (``TrainConfig.anchor``).

A model fine-tuned at a larger size on new data keeps training at its old size as a draft (``draft_size``), but
with only a share of the steps there it drifts from what it drew well: the 256 px continuations of the shipped
128 px model lost its text → video drawings of held-out emoji lease by lease (docs/results.md). The anchor adds a
distillation term on the batches at the reference's own size, for the clips the reference learnt from:

    L = masked_mse(ε̂, ε) + weight · masked_mse(ε̂, ε_ref, valid · rows)

where ε_ref is the frozen reference's prediction for the same noisy latents, timestep, caption and condition
frames, and ``rows`` (B,) picks the clips of the sources the reference was trained on (its card's built-in
``data``; the shipped model: ``builtin:emoji``, so the procedural emoji clips, by their ``source`` label). Clips
of other sources (Fluent's real ones in ``builtin:mixed``, a pack) are never pulled towards a model that never
saw them. The reference's target is the conditional mean of ε that the plain loss only reaches
on average, so it holds the old behaviour with far less noise than replaying its data alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rdtf_engine.core.errors import TrainingError
from rdtf_engine.training.masks import masked_mse


@dataclass
class Anchor:
    model: torch.nn.Module  # the frozen reference DFGN (eval, no gradients) on the run's device
    weight: float
    latent_size: int  # the latent grid (h = w) of the reference's own size: the batches it applies to
    name: str
    sources: frozenset[str]  # the ``source`` labels of the clips it learnt from (reference_sources)

    def rows(self, labels: Sequence[dict], ids: Sequence[int]) -> torch.Tensor:
        """(B,) 1.0 for the batch's clips of the reference's sources, else 0.0 (a cache without labels: all 0)."""
        if not labels:
            return torch.zeros(len(ids))
        return torch.tensor([1.0 if labels[i].get("source") in self.sources else 0.0 for i in ids])

    def applies(self, z0: torch.Tensor) -> bool:
        """z0: (B, 4, F, h, w) — the batch is at the reference's own size."""
        return int(z0.shape[-1]) == self.latent_size and int(z0.shape[-2]) == self.latent_size

    def loss(self, eps: torch.Tensor, model_inputs: dict[str, Any], valid: torch.Tensor,
             rows: torch.Tensor, autocast) -> torch.Tensor | None:
        """weight · masked MSE between ``eps`` (B, 4, F, h, w) and the reference's prediction for the same
        ``model_inputs`` (the DFGN's keyword arguments), over the valid frames of the anchored rows; None when no
        row is anchored (no reference forward is paid)."""
        if not bool(rows.any()):
            return None
        with torch.no_grad(), autocast():
            ref = self.model(**model_inputs)
        mask = valid * rows.to(valid.device, valid.dtype)[:, None]  # (B, F)
        return self.weight * masked_mse(eps.float(), ref.float(), mask)


def load_anchor(name: str, weight: float, vae, scale: float, device: torch.device) -> Anchor:
    """The reference model ``name`` (a model folder or name), frozen on ``device``. Its latent space must be the
    run's — the same encoder and latent scale — or its predictions would be about other latents: a clear
    TrainingError."""
    from rdtf_engine.model.store import load_model_folder
    from rdtf_engine.training.finetune import resolve_init

    unet, ref_vae, card = load_model_folder(resolve_init(name), device="cpu")
    mine, theirs = _encoder_state(vae), _encoder_state(ref_vae)
    same = mine.keys() == theirs.keys() and all(
        mine[k].shape == theirs[k].shape and torch.allclose(mine[k].float().cpu(), theirs[k].float(), atol=1e-3)
        for k in mine) and abs(float(card.latent_scale) - float(scale)) <= 1e-4 * max(1.0, abs(float(scale)))
    if not same:
        raise TrainingError(f"--anchor {name}: its autoencoder's encoder or latent scale differs from this run's, so its "
                            "predictions are about other latents; anchor to the model this run was fine-tuned from")
    sources = reference_sources(card.data)
    if not sources:
        raise TrainingError(f"--anchor {name}: it was trained on {card.data or 'unrecorded data'}, not a built-in "
                            "source, so no clip of this run can be told to be its own; anchor to a built-in model")
    factor = 2 ** (len(ref_vae.config.block_out_channels) - 1)
    unet = unet.to(device).eval().requires_grad_(False)
    return Anchor(unet, float(weight), int(card.size) // factor, card.name or str(name), sources)


def reference_sources(data: str) -> frozenset[str]:
    """A card's training data → the ``source`` labels of its clips: "builtin:emoji" (or a split of it such as
    "builtin:emoji-dev") → {"emoji"}; "builtin:mixed" → {"emoji", "fluent"}; anything else (a pack) → {}."""
    if not data.startswith("builtin:"):
        return frozenset()
    name = data.removeprefix("builtin:").split("-")[0]
    return frozenset({"emoji", "fluent"} if name == "mixed" else {name})


def _encoder_state(vae) -> dict[str, torch.Tensor]:
    """The weights that fix the latent space: the encoder and the conv that maps it to the latent moments."""
    return {k: v for k, v in vae.state_dict().items() if k.startswith(("encoder.", "quant_conv."))}


__all__ = ["Anchor", "load_anchor", "reference_sources"]
