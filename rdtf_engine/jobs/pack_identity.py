"""``rdtf pack eval DIR…`` / ``rdtf eval --pack-project DIR…``: identity across packs and motion agreement.

Identity: ``eval.pack_identity`` (every made sticker against the pack's character; with several pack folders,
also the identity accuracy among their characters: is each sticker nearest to its own). Motion: the motion
classifier ``rdtf eval`` uses (the shipped one, trained on real procedural clips) predicts each sticker's
motion; a sticker agrees when the prediction is (or contains) the motion its mood reads as
(``data.pack_prompts.motion_class``). Moods that read as no motion the model knows are not counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rdtf_engine.core.errors import InputError
from rdtf_engine.core.events import Log, null_event


def _load(folder: str | Path) -> tuple[Any, np.ndarray, list, list]:
    """(project, character (H, W, 4) uint8, the made stickers, their clips)."""
    from rdtf_engine.formats.loader import load_clip
    from rdtf_engine.jobs.pack_mode import is_made
    from rdtf_engine.packs.project import inside, load_pack

    project = load_pack(folder)
    char_path = inside(folder, project.character)
    if not char_path.is_file():
        raise InputError(f"the pack's character picture {project.character} is missing")
    character = load_clip(char_path, first_frames=1).frames[0]
    made = [s for s in project.stickers if is_made(folder, s)]
    return project, character, made, [load_clip(inside(folder, str(s.file))) for s in made]


def _motion_classifier(packs: list[tuple], device: str, classifier_path: str | None, on_event):
    """The motion classifier ``rdtf eval`` uses, or None when no made sticker's mood reads as a known motion."""
    from rdtf_engine.core.device import check_device
    from rdtf_engine.data.pack_prompts import motion_class
    from rdtf_engine.jobs.evaluate import _classifier

    dev = check_device(device)  # a device this machine lacks is an error even when nothing needs it
    if not any(motion_class(s.motion) for _, _, made, _ in packs for s in made):
        return None
    return _classifier(classifier_path, "builtin:emoji", dev, on_event)


def evaluate_pack_project(folder: str | Path, device: str = "cpu", classifier_path: str | None = None,
                          on_event=null_event) -> dict[str, Any]:
    """One pack: every sticker's identity to the character (and the floor), and motion agreement."""
    loaded = _load(folder)
    return _pack_report(*loaded, _motion_classifier([loaded], device, classifier_path, on_event), on_event)


def _pack_report(project, character: np.ndarray, made: list, clips: list, clf, on_event) -> dict[str, Any]:
    from rdtf_engine.data.motion import components
    from rdtf_engine.data.pack_prompts import motion_class
    from rdtf_engine.eval.pack_identity import pack_identity

    ident = pack_identity(character, [c.frames for c in clips])
    wanted = [motion_class(s.motion) for s in made]
    preds: list[str | None] = clf.embed(clips)[1] if clf is not None and clips else [None] * len(made)
    rows, agree = [], []
    for i, s in enumerate(made):
        ok = None if wanted[i] is None else wanted[i] in components(str(preds[i]))
        if ok is not None:
            agree.append(ok)
        rows.append({"id": s.id, "motion": s.motion, "identity": round(ident["scores"][i], 4),
                     "identity_kept": bool(ident["kept"][i]), "motion_class": wanted[i],
                     "predicted_motion": preds[i] if wanted[i] else None, "motion_agrees": ok})
    made_ids = {s.id for s in made}
    if len(made) < len(project.stickers):
        on_event(Log("warning", f"{project.title}: {len(project.stickers) - len(made)} stickers are not made yet "
                                "and are left out"))
    return {"pack": project.title, "stickers": rows, "made": len(made), "total": len(project.stickers),
            "identity_mean": _round(ident["mean"]), "identity_min": _round(ident["min"]),
            "identity_floor": round(ident["floor"], 4), "identity_kept_share": _round(ident["kept_share"]),
            "motion_agreement": sum(agree) / len(agree) if agree else None, "motion_checked": len(agree),
            "missing": [s.id for s in project.stickers if s.id not in made_ids]}


def evaluate_pack_projects(folders: list[str | Path], device: str = "cpu", classifier_path: str | None = None,
                           on_event=null_event) -> dict[str, Any]:
    """Several packs, one character each: every pack's own report, and identity accuracy among their characters
    (``eval.pack_identity.identity_accuracy``) with chance, the ceiling and the colour-only control."""
    from rdtf_engine.eval.pack_identity import identity_accuracy

    if len(folders) < 2:
        raise InputError("identity accuracy across packs needs at least two pack folders")
    if len({Path(f).resolve() for f in folders}) < len(folders):
        raise InputError("a pack folder is given twice")
    loaded = [_load(f) for f in folders]
    clf = _motion_classifier(loaded, device, classifier_path, on_event)
    packs = [_pack_report(*ld, clf, on_event) for ld in loaded]
    labels = _labels([p.title for p, *_ in loaded], [Path(f).resolve().name for f in folders])
    names = [(lab, s.id) for lab, (_, _, made, _) in zip(labels, loaded) for s in made]
    acc = identity_accuracy({lab: ch for lab, (_, ch, _, _) in zip(labels, loaded)},
                            [(lab, c.frames) for lab, (*_, clips) in zip(labels, loaded) for c in clips])
    by_id: dict[str, list[float]] = {}
    for (_, sid), credit in zip(names, acc["credits"]):
        by_id.setdefault(sid, []).append(credit)
    agree = [s["motion_agrees"] for p in packs for s in p["stickers"] if s["motion_agrees"] is not None]
    return {"packs": packs, "characters": labels, "stickers": acc["stickers"],
            "identity_accuracy": _round(acc["accuracy"]), "chance": round(acc["chance"], 4),
            "identity_ceiling": _round(acc["ceiling"]), "identity_colour_only": _round(acc["colour_only"]),
            "identity_accuracy_per_character": {k: _round(v) for k, v in acc["per_character"].items()},
            "identity_accuracy_per_sticker": {k: _round(float(np.mean(v))) for k, v in by_id.items()},
            "identity_misses": [{"pack": names[m["index"]][0], "sticker": names[m["index"]][1],
                                 "found": m["found"]} for m in acc["misses"]],
            "motion_agreement": sum(agree) / len(agree) if agree else None, "motion_checked": len(agree)}


def _labels(titles: list[str], names: list[str]) -> list[str]:
    """Each pack's character label: its title, with the folder's name added where titles repeat."""
    return [t if titles.count(t) == 1 else f"{t} ({n})" for t, n in zip(titles, names)]


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


def format_packs_report(r: dict[str, Any]) -> str:
    """Several packs: each pack's table, then identity accuracy among the characters."""
    lines = [format_report(p) + "\n" for p in r["packs"]]
    lines.append(f"{'character':<32} identity accuracy")
    lines += [f"{k:<32} {'-' if v is None else f'{v:.0%}'}" for k, v in r["identity_accuracy_per_character"].items()]
    acc = "-" if r["identity_accuracy"] is None else f"{r['identity_accuracy']:.1%}"
    motion = "-" if r["motion_agreement"] is None else f"{r['motion_agreement']:.0%} of {r['motion_checked']}"
    lines.append(f"identity accuracy among {len(r['characters'])} characters: {acc} of {r['stickers']} stickers "
                 f"(chance {r['chance']:.1%}; the characters' own pictures {r['identity_ceiling']:.0%}, "
                 f"colour alone {r['identity_colour_only']:.0%}); motion agreement {motion}")
    for m in r["identity_misses"]:
        lines.append(f"  {m['pack']} / {m['sticker']}: looks most like {' = '.join(m['found']) or 'nothing'}")
    return "\n".join(lines)


def evaluate_packs(folders: list[str], device: str, classifier_path: str | None, on_event) -> tuple[dict, str]:
    """One pack folder: its report; several: the report across them. (report, the terminal text)."""
    if len(folders) == 1:
        r = evaluate_pack_project(folders[0], device, classifier_path, on_event)
        return r, format_report(r)
    r = evaluate_pack_projects(folders, device, classifier_path, on_event)
    return r, format_packs_report(r)


__all__ = ["evaluate_pack_project", "evaluate_pack_projects", "evaluate_packs", "format_packs_report",
           "format_report"]
