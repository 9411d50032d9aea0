"""Dual masks of docs/method.md §4.1-4.2: the per-frame condition mask (which clean latents are given) and the
validity (loss) mask (which frame slots hold real frames rather than zero padding).

Masks are plain ``list[int]`` of 0/1 with one entry per frame slot (length ``num_frames``, 8 in the paper), so
datasets, the curriculum and the app can build them without torch. The torch helpers at the bottom apply them
to latents of shape (B, C, F, H, W) and compute the masked ε-MSE; torch is imported lazily there so that the
pure functions (and ``curriculum.py``, which imports ``TASKS`` from here) stay cheap to import.

Conventions: 1 in a condition mask = the clean latent of that frame is given to the denoiser; padded slots
(index >= n_valid) are always 0 in every mask.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rdtf_engine.core.errors import InputError

if TYPE_CHECKING:  # annotations only; the real import is lazy (see module docstring)
    import torch

# Our names; the authors' names for the two prediction tasks are in PAPER_TASK_NAMES.
TASKS = ("t2v", "i2v", "it2v", "interpolation", "pred_forward", "pred_backward")
PAPER_TASK_NAMES = {
    "pred_forward": "post_frame_prediction",  # first frames given, later frames predicted
    "pred_backward": "pre_frame_prediction",  # later frames given, earlier frames predicted
}
# Curriculum groups (docs/method.md §5 difficulty order: interpolation easy, prediction middle, generation hard).
TASK_GROUPS: dict[str, tuple[str, ...]] = {
    "generation": ("t2v", "i2v", "it2v"),
    "interpolation": ("interpolation",),
    "prediction": ("pred_forward", "pred_backward"),
}
GROUP_OF: dict[str, str] = {t: g for g, ts in TASK_GROUPS.items() for t in ts}

# The three interpolation patterns of Table 7 as predicates on the frame index:
# [0 1 0 1 ...], [1 0 1 0 ...], [1 0 0 1 0 0 ...].
INTERPOLATION_PATTERNS: tuple[str, ...] = ("odd", "even", "every_third")


def check_task(task: str) -> str:
    """Return ``task`` if it is one of TASKS (the authors' two prediction names are accepted too)."""
    for ours, theirs in PAPER_TASK_NAMES.items():
        if task == theirs:
            return ours
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return task


def _check_frames(n_valid: int, num_frames: int) -> None:
    if int(num_frames) < 1:
        raise InputError(f"num_frames must be >= 1, got {num_frames}")
    if not 1 <= int(n_valid) <= int(num_frames):
        raise InputError(f"n_valid must be between 1 and num_frames={num_frames}, got {n_valid}")


def uses_text(task: str) -> bool:
    """Whether the caption is fed for ``task``: every task but i2v (its text embeddings are zeroed, §2.3)."""
    return check_task(task) != "i2v"


def validity_mask(n_valid: int, num_frames: int) -> list[int]:
    """Loss mask of §3.2: ``[1] * n_valid + [0] * (num_frames - n_valid)``."""
    _check_frames(n_valid, num_frames)
    return [1] * n_valid + [0] * (num_frames - n_valid)


def interpolation_mask(pattern: str, n_valid: int, num_frames: int) -> list[int]:
    """One of the Table 7 interpolation patterns, restricted to the valid slots."""
    _check_frames(n_valid, num_frames)
    keep = {"odd": lambda i: i % 2 == 1, "even": lambda i: i % 2 == 0, "every_third": lambda i: i % 3 == 0}
    if pattern not in keep:
        raise InputError(f"unknown interpolation pattern {pattern!r}; expected one of {INTERPOLATION_PATTERNS}")
    return [int(i < n_valid and keep[pattern](i)) for i in range(num_frames)]


def condition_mask(task: str, n_valid: int, num_frames: int, rng: random.Random) -> list[int]:
    """Sample the condition mask of ``task`` for a clip with ``n_valid`` real frames in ``num_frames`` slots.

    Follows the authors' ``make_condition`` (docs/method.md §4.1), with these guarantees for n_valid >= 2: every
    task but t2v gives at least one frame, and no task gives every valid frame (something is left to generate).
    - t2v: nothing given.
    - i2v / it2v: one frame, uniform in [0, n_valid - 1].
    - interpolation: uniform among the three Table 7 patterns (odd / even / every third slot); each leaves
      slot 1 free and gives slot 0 or 1, so both guarantees hold without a fallback.
    - pred_backward (pre_frame_prediction): start = randint(1, n_valid // 2 + 1), clipped to n_valid - 1;
      mask[start:n_valid] = 1 (later frames given, the first ``start`` predicted).
    - pred_forward (post_frame_prediction): end = randint(max(1, n_valid // 2), n_valid - 1); mask[:end] = 1.

    n_valid == 1: there is no way to both give and generate a frame, so every task returns all zeros. Giving
    the single frame would make the sample a copy task (the loss also covers given frames, §3.2) and teach
    nothing; all zeros turns it into text→image (or, for i2v, an unconditional sample, like the CFG null branch).
    """
    task = check_task(task)
    _check_frames(n_valid, num_frames)
    mask = [0] * num_frames
    if n_valid == 1 or task == "t2v":
        return mask
    if task in ("i2v", "it2v"):
        mask[rng.randint(0, n_valid - 1)] = 1
    elif task == "interpolation":
        mask = interpolation_mask(
            INTERPOLATION_PATTERNS[rng.randrange(len(INTERPOLATION_PATTERNS))], n_valid, num_frames
        )
    elif task == "pred_backward":
        start = min(rng.randint(1, n_valid // 2 + 1), n_valid - 1)  # clip: at least one frame predicted
        mask[start:n_valid] = [1] * (n_valid - start)
    else:  # pred_forward
        end = rng.randint(max(1, n_valid // 2), n_valid - 1)
        mask[:end] = [1] * end
    return mask


def lock_mask(locked: Sequence[int], num_frames: int) -> list[int]:
    """Generation-time mask for "lock frames, regenerate the rest": 1 on every index in ``locked``.

    Any set of indices is allowed (duplicates are harmless, all frames locked gives all ones: the caller decides
    whether that is an error). Out-of-range, negative or non-integer indices raise ``InputError``.
    """
    if int(num_frames) < 1:
        raise InputError(f"num_frames must be >= 1, got {num_frames}")
    mask = [0] * num_frames
    for raw in locked:
        if isinstance(raw, bool):
            raise InputError(f"locked frame index must be an integer, got {raw!r}")
        try:
            i = raw.__index__()  # ints and numpy integers, not floats or strings
        except (AttributeError, TypeError):
            raise InputError(f"locked frame index must be an integer, got {raw!r}") from None
        if not 0 <= i < num_frames:
            raise InputError(f"locked frame {i} is outside 0..{num_frames - 1}")
        mask[i] = 1
    return mask


def infer_task(cond_mask: Sequence[int], has_text: bool, n_valid: int | None = None) -> str:
    """The training task that a generation-time mask most resembles (for logging and guidance choices).

    Only the first ``n_valid`` slots are looked at (default: all). Rules, in order:
    no frame given → t2v (also without text: there is no "unconditional" task); one frame → it2v, or i2v
    without text; a contiguous run from slot 0 that stops before the end → pred_forward; a contiguous run that
    ends at the last slot → pred_backward; anything else (gaps, a run in the middle, every slot) → interpolation.
    """
    n = len(cond_mask) if n_valid is None else int(n_valid)
    if not 1 <= n <= len(cond_mask):
        raise InputError(f"n_valid must be between 1 and {len(cond_mask)}, got {n_valid}")
    given = [i for i in range(n) if cond_mask[i]]
    if not given:
        return "t2v"
    if len(given) == 1:
        return "it2v" if has_text else "i2v"
    contiguous = given[-1] - given[0] + 1 == len(given)
    if contiguous and given[0] == 0 and given[-1] < n - 1:
        return "pred_forward"
    if contiguous and given[-1] == n - 1 and given[0] > 0:
        return "pred_backward"
    return "interpolation"


# ---------------------------------------------------------------------------------------------- torch helpers


def _frame_weights(frame_mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B, F) mask → (B, 1, F, 1, 1) in ``like``'s dtype/device, checked against like = (B, C, F, H, W)."""
    import torch

    m = torch.as_tensor(frame_mask, device=like.device)
    if like.ndim != 5 or m.shape != (like.shape[0], like.shape[2]):
        raise ValueError(
            f"expected latents (B, C, F, H, W) and mask (B, F); got {tuple(like.shape)} and {tuple(m.shape)}"
        )
    return m.to(like.dtype)[:, None, :, None, None]


def apply_frame_mask(latents: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """latents (B, C, F, H, W) * mask (B, F) broadcast over C, H, W: zero the latents of unmasked frames."""
    return latents * _frame_weights(mask, latents)


def per_sample_masked_mse(
    eps_hat: torch.Tensor, eps: torch.Tensor, frame_mask: torch.Tensor, renormalize: bool = False
) -> torch.Tensor:
    """Per-sample masked ε-MSE → (B,).

    renormalize=False: mean over all C·F·H·W elements of (M⊙ε̂ − M⊙ε)², padded frames included (they add
    zeros), exactly the paper's code; its batch mean equals ``masked_mse(..., renormalize=False)``.
    renormalize=True: the same sum divided by that sample's valid elements C·H·W·ΣM (0 for an all-zero mask).
    """
    if eps_hat.shape != eps.shape:
        raise ValueError(f"eps_hat {tuple(eps_hat.shape)} and eps {tuple(eps.shape)} differ")
    m = _frame_weights(frame_mask, eps)
    sq = (m * eps_hat - m * eps).pow(2).flatten(1)  # (B, C·F·H·W)
    if not renormalize:
        return sq.mean(dim=1)
    c, h, w = eps.shape[1], eps.shape[3], eps.shape[4]
    valid = m.flatten(1).sum(dim=1) * (c * h * w)  # (B,) number of valid elements per sample
    return sq.sum(dim=1) / valid.clamp_min(1)


def masked_mse(
    eps_hat: torch.Tensor, eps: torch.Tensor, frame_mask: torch.Tensor, renormalize: bool = False
) -> torch.Tensor:
    """Scalar masked ε-MSE of docs/method.md §4.2: L = mean_{b,c,f,h,w} (M⊙ε̂ − M⊙ε)².

    eps_hat, eps: (B, C, F, H, W); frame_mask: (B, F) validity mask (1 = real frame). Condition frames are not
    excluded (the paper's code uses only validity). renormalize=False is the paper (short clips weigh less);
    renormalize=True divides the batch sum by the number of valid elements in the batch, so every real frame
    weighs the same whatever its clip length. docs/curriculum.md says which the trainer uses.
    """
    if eps_hat.shape != eps.shape:
        raise ValueError(f"eps_hat {tuple(eps_hat.shape)} and eps {tuple(eps.shape)} differ")
    m = _frame_weights(frame_mask, eps)
    sq = (m * eps_hat - m * eps).pow(2)
    if not renormalize:
        return sq.mean()
    valid = m.sum() * (eps.shape[1] * eps.shape[3] * eps.shape[4])
    return sq.sum() / valid.clamp_min(1)


def masked_motion_mse(eps_hat: torch.Tensor, eps: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Scalar MSE of the frame-to-frame differences: mean over the pairs of consecutive valid frames of
    ((ε̂_{f+1} − ε̂_f) − (ε_{f+1} − ε_f))².

    eps_hat, eps: (B, C, F, H, W); frame_mask: (B, F). A pair counts when both its frames are valid (padding never
    pairs with a real frame); the sum is divided by the pairs' elements C·H·W·Σ pairs (0 when there is none).
    Why: a model that draws every frame alike (a still clip) misses the data's motion, a small share of the plain
    ε-MSE (real stickers change little between frames); the differences weigh frame-to-frame errors more than
    errors shared by all frames (``TrainConfig.motion_weight``). Measured on the 256 px base: the network's errors
    are nearly independent between frames (this term ≈ 2.3× the ε-MSE, 2× for independent ones), so it re-weighted
    almost every error alike and left the real clips' stillness as it was (docs/results.md).
    """
    if eps_hat.shape != eps.shape:
        raise ValueError(f"eps_hat {tuple(eps_hat.shape)} and eps {tuple(eps.shape)} differ")
    m = _frame_weights(frame_mask, eps)  # (B, 1, F, 1, 1)
    pair = m[:, :, 1:] * m[:, :, :-1]  # (B, 1, F-1, 1, 1): 1 where frames f and f+1 are both real
    err = eps_hat - eps
    sq = (pair * (err[:, :, 1:] - err[:, :, :-1])).pow(2)  # (B, C, F-1, H, W)
    n = pair.sum() * (eps.shape[1] * eps.shape[3] * eps.shape[4])
    return sq.sum() / n.clamp_min(1)
