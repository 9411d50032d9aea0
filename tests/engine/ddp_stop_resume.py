"""Run by test_train_ddp.py under torchrun (2 CPU processes, gloo): a tiny run that, with ``stop``, stops itself
cooperatively right after its first checkpoint, as Ctrl-C or the app's Pause would.

    python -m torch.distributed.run --standalone --nproc_per_node 2 ddp_stop_resume.py OUT AUTOENCODER STEPS [stop]
"""

from __future__ import annotations

import sys
from pathlib import Path

from rdtf_engine.core.requests import TrainRequest
from rdtf_engine.training.loop import train


def main(out: str, autoencoder: str, steps: str, mode: str = "") -> None:
    req = TrainRequest.of(data="builtin:shapes", out=out, preset="tiny", size=32, steps=int(steps), batch_size=2,
                          max_clips=16, checkpoint_every=2, autoencoder=autoencoder, device="cpu")
    latest = Path(out) / "checkpoints" / "latest"
    train(req, should_stop=lambda: mode == "stop" and latest.exists())


if __name__ == "__main__":
    main(*sys.argv[1:])
