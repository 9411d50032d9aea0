"""Which torch device and precision a job runs on, and the CUDA settings every engine process needs."""

from __future__ import annotations

import torch

from rdtf_engine.core.errors import InputError


def check_device(device: str) -> torch.device:
    """A device name the user gave ("auto", "cpu", "cuda", "cuda:1", "mps") → the torch device, or InputError when
    the name is unknown or this machine does not have it (checked before any work starts)."""
    if not isinstance(device, str) or not device.strip():
        raise InputError("device must be auto, cpu, cuda, cuda:N or mps")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise InputError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError("CUDA was requested but this PyTorch has no CUDA device (see README: GPU install)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise InputError("device 'mps' was requested but Apple's Metal backend is not available here")
    elif dev.type != "cpu":
        raise InputError(f"unsupported device {device!r}; use auto, cpu, cuda, cuda:N or mps")
    return dev


def resolve_device(device: str, mixed_precision: str) -> tuple[torch.device, str]:
    """"auto" → CUDA if available else CPU; mixed precision "auto" → bf16 on CUDA, fp32 ("no") on CPU."""
    dev = check_device(device)
    mp = mixed_precision
    if mp == "auto":
        mp = "bf16" if dev.type == "cuda" else "no"
    if mp not in ("no", "bf16", "fp16"):
        raise InputError(f"mixed_precision must be auto, no, bf16 or fp16, got {mixed_precision!r}")
    if dev.type == "cpu":
        mp = "no"  # bf16 autocast on CPU is slower than fp32 for these small convs
    else:
        configure_cuda()
        # Training shapes are fixed (batch × frames × latent size), so cuDNN's autotuner pays off after a few
        # steps; TF32 for the fp32 parts (norms, losses) costs nothing visible in a diffusion loss.
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return dev, mp


def configure_cuda() -> None:
    """Backend settings every CUDA process of the engine needs (training, generation, eval).

    cuDNN's fused attention fails ("mha_graph.execute … is_good()", torch 2.11 + CUDA 13 on H200) for STI's
    masked joint attention at training batch sizes (batch 128: 512 sequences of 2,048 tokens); flash and
    memory-efficient attention have no such limit, so the cuDNN backend is switched off.
    """
    torch.backends.cuda.enable_cudnn_sdp(False)
