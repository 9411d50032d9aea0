"""Offline evaluation built from our own data (see ``metrics.py`` for every definition).

The denoising-loss part of evaluation needs the model and lives with it; this package holds the motion
classifier (motion adherence, Fréchet features), identity, and alpha-quality metrics.
"""

from rdtf_engine.eval.classifier import (
    MotionClassifier,
    load_classifier,
    save_classifier,
    train_motion_classifier,
)
from rdtf_engine.eval.metrics import (
    IdentityBank,
    alpha_semi_share,
    background_flicker,
    evaluate_clips,
    frechet_distance,
    loop_seam,
    reference_identity_accuracy,
)

__all__ = [
    "IdentityBank",
    "MotionClassifier",
    "alpha_semi_share",
    "background_flicker",
    "evaluate_clips",
    "frechet_distance",
    "load_classifier",
    "loop_seam",
    "reference_identity_accuracy",
    "save_classifier",
    "train_motion_classifier",
]
