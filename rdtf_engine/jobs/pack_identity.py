"""``rdtf pack eval DIR`` / ``rdtf eval --pack-project DIR``: identity across the pack and motion agreement.

Identity: ``eval.pack_identity`` (every made sticker against the pack's character). Motion: the motion
classifier ``rdtf eval`` uses (the shipped one, trained on real procedural clips) predicts each sticker's
motion; a sticker agrees when the prediction is (or contains) the motion its mood reads as
(``data.pack_prompts.motion_class``). Moods that read as no motion the model knows are not counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rdtf_engine.core.errors import InputError
from rdtf_engine.core.events import Log, null_event


def evaluate_pack_project(folder: str | Path, device: str = "cpu", classifier_path: str | None = None,
                          on_event=null_event) -> dict[str, Any]:
    import torch

    from rdtf_engine.data.motion import components
    from rdtf_engine.data.pack_prompts import motion_class
    from rdtf_engine.eval.pack_identity import pack_identity
    from rdtf_engine.formats.loader import load_clip
    from rdtf_engine.jobs.evaluate import _classifier
    from rdtf_engine.jobs.pack_mode import is_made
    from rdtf_engine.packs.project import inside, load_pack

    project = load_pack(folder)
    char_path = inside(folder, project.character)
    if not char_path.is_file():
        raise InputError(f"the pack's character picture {project.character} is missing")
    character = load_clip(char_path, first_frames=1).frames[0]
    made = [s for s in project.stickers if is_made(folder, s)]
    clips = [load_clip(inside(folder, str(s.file))) for s in made]
    ident = pack_identity(character, [c.frames for c in clips])
    wanted = [motion_class(s.motion) for s in made]
    preds: list[str | None] = [None] * len(made)
    if any(wanted):
        dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                           ("cpu" if device == "auto" else device))
        clf = _classifier(classifier_path, "builtin:emoji", dev, on_event)
        _, preds = clf.embed(clips)
    rows, agree = [], []
    for i, s in enumerate(made):
        ok = None if wanted[i] is None else wanted[i] in components(str(preds[i]))
        if ok is not None:
            agree.append(ok)
        rows.append({"id": s.id, "motion": s.motion, "identity": round(ident["scores"][i], 4),
                     "identity_kept": bool(ident["kept"][i]), "motion_class": wanted[i],
                     "predicted_motion": preds[i] if wanted[i] else None, "motion_agrees": ok})
    if len(made) < len(project.stickers):
        on_event(Log("warning", f"{len(project.stickers) - len(made)} stickers are not made yet and are left out"))
    return {"pack": project.title, "stickers": rows, "made": len(made), "total": len(project.stickers),
            "identity_mean": _round(ident["mean"]), "identity_min": _round(ident["min"]),
            "identity_floor": round(ident["floor"], 4), "identity_kept_share": _round(ident["kept_share"]),
            "motion_agreement": sum(agree) / len(agree) if agree else None, "motion_checked": len(agree),
            "missing": [s.id for s in project.stickers if not is_made(folder, s)]}


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


def format_report(r: dict[str, Any]) -> str:
    """The report as a table for the terminal."""
    lines = [f"{'sticker':<24} {'identity':>8}  kept  {'motion':<10} {'seen':<12} agrees"]
    for s in r["stickers"]:
        agrees = "-" if s["motion_agrees"] is None else ("yes" if s["motion_agrees"] else "no")
        lines.append(f"{s['id']:<24} {s['identity']:>8.3f}  {'yes ' if s['identity_kept'] else 'no  '}  "
                     f"{s['motion_class'] or '-':<10} {s['predicted_motion'] or '-':<12} {agrees}")
    mean = "-" if r["identity_mean"] is None else f"{r['identity_mean']:.3f}"
    kept = "-" if r["identity_kept_share"] is None else f"{r['identity_kept_share']:.0%}"
    motion = "-" if r["motion_agreement"] is None else f"{r['motion_agreement']:.0%} of {r['motion_checked']}"
    lines.append(f"pack {r['pack']!r}: {r['made']} of {r['total']} stickers made; identity mean {mean} "
                 f"(colour-only floor {r['identity_floor']:.3f}, kept {kept}); motion agreement {motion}")
    if r["missing"]:
        lines.append(f"not made yet: {', '.join(r['missing'])}")
    return "\n".join(lines)


__all__ = ["evaluate_pack_project", "format_report"]
