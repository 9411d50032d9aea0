"""Write MODEL_CARD.md for a trained model folder from what the run recorded (no hand-copied numbers).

    python tools/model_card.py resources/models/default --metrics metrics.jsonl --eval default.eval.json \
        --grid default-grid.png --gpu "4 × NVIDIA H200" --gpu-minutes 60

Reads the folder's config.json (preset, steps, data summary, latent scale), the run's metrics.jsonl (losses,
step rate, GPU memory), the `rdtf eval --json` report, and copies the eval grid next to the card as
samples.png. Failure modes are listed from the eval numbers against the project's targets (motion ≥ 80 %,
identity ≥ 90 %), not from hope. Notes cite docs of this repository only (e.g. docs/results.md rounds).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from rdtf_engine.core.config import config_reference_mode

TARGETS = {"motion": 0.80, "identity": 0.90}


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def _num(x, nd=4) -> str:
    return "n/a" if x is None else f"{x:.{nd}f}"


def _data_lines(cfg: dict, data: dict) -> list[str]:
    """What the model was trained on, from the run's data summary; a mixed source names both parts."""
    frames = data.get("frame_counts") or data.get("frame_count_histogram") or {"0": 0}
    counts = f"frame counts {min(map(int, frames))}–{max(map(int, frames))}"
    motions = len(data.get("motions") or {})  # a mixed source's summary counts its procedural clips' motions too
    parts = data.get("parts") or {}
    style = data.get("style_deltas") or {}  # the run that trained the style deltas (its own data summary)
    style_line = [(f"- Style deltas: `builtin:{style.get('name', '?')}`, {style.get('clips', '?')} windows of "
                   f"{style.get('files', '?')} Fluent files at {style.get('size', '?')} px, captions ending "
                   f"\", {cfg.get('style_tag') or style.get('style_tag')}\".")] if style else []
    if "fluent" in parts:
        tag = f', captions ending ", {data["fluent_style"]}"' if data.get("fluent_style") else ""
        return [(f"- `{cfg.get('data')}`: {data.get('clips', '?')} clips: {parts['fluent']} windows of Fluent Emoji "
                 f"animated (Microsoft, MIT: artist-animated 3-D stickers, 256 px{tag}) and {parts.get('emoji', '?')} "
                 f"procedural clips of Noto Color Emoji (OFL) with {motions} motion classes; {counts}."),
                ("- Held out and never trained on: the Fluent face code points reserved for independent evaluation "
                 "(excluded by code point in the source), ≈ 10 % of the other Fluent code points "
                 "(`builtin:fluent-holdout`), 55 emoji and 347 (emoji, motion) pairs (`builtin:emoji-holdout`).")
                ] + style_line
    return [(f"- `{cfg.get('data')}`: {data.get('clips', '?')} procedural clips of Noto Color Emoji (OFL) with "
             f"{motions} motion classes, {counts}."),
            "- Held out and never trained on: 55 emoji and 347 (emoji, motion) pairs (`builtin:emoji-holdout`)."]


def real_clip_section(report: dict, sheet: str | None) -> list[str]:
    """The evaluation on held-out real (artist-animated) clips, each generated number beside the real clips'."""
    t2v, it2v = report.get("t2v") or {}, report.get("it2v") or {}

    def both(get, nd=3, pct=False):
        fmt = _pct if pct else (lambda x: _num(x, nd))
        return f"{fmt(get(t2v, 'generated'))} | {fmt(get(it2v, 'generated'))} | {fmt(get(it2v, 'real'))}"

    def spread(key, sub="mean"):
        return lambda part, who: ((part.get(key) or {}).get(who) or {}).get(sub)

    def coherence(key, sub="mean"):
        return lambda part, who: (((part.get("coherence") or {}).get(key) or {}).get(who) or {}).get(sub)

    def count(key):
        return lambda part, who: ((part.get("coherence") or {}).get(key) or {}).get(who)

    def identity(part, who):
        return part.get("identity_accuracy") if who == "generated" else part.get("reference_identity_accuracy")

    def alpha(part, who):
        return (part.get("alpha_semi_share") or {}).get("generated" if who == "generated" else "reference")

    def fd(part, who):
        return part.get("frechet_distance") if who == "generated" else part.get("frechet_distance_reference_halves")

    size = (it2v.get("sharpness") or {}).get("export_size", "?")
    lines = [
        "",
        (f"## Evaluation on held-out real clips (`rdtf eval --data {report.get('data')}`, "
         f"{report.get('clips', '?')} clips, {report.get('sample_steps', '?')} sampling steps, seed "
         f"{report.get('seed', '?')})"),
        "| metric | text→video | image&text→video | real clips |",
        "|---|---|---|---|",
        f"| identity (nearest sprite of the set, first frames) | {both(identity, pct=True)} |",
        f"| Fréchet distance (motion-classifier features; real: one half against the other) | {both(fd, 1)} |",
        f"| frame-to-frame change (mean) | {both(coherence('change'))} |",
        f"| frozen clips | {both(count('frozen'), 0)} |",
        f"| flickering clips | {both(count('flicker'), 0)} |",
        f"| edge sharpness at {size} px export | {both(spread('sharpness'))} |",
        f"| semi-transparent share away from edges | {both(alpha)} |",
    ]
    if sheet:
        lines += ["", (f"![held-out real clips: real clip, text→video, image&text→video per prompt, at {size} px]"
                       f"({sheet})")]
    return lines


def build_card(folder: Path, metrics: list[dict], report: dict, gpu: str, gpu_minutes: float,
               batch: str = "?", notes: str = "", real: dict | None = None, sheet: str = "samples.png",
               real_sheet: str | None = None) -> str:
    """``metrics``: the metrics.jsonl rows of the run that produced the folder (the last one of a chain);
    ``real``: the `rdtf eval --json` report on held-out real clips, if the model was evaluated on them."""
    cfg = json.loads((folder / "config.json").read_text("utf-8"))
    size_mb = sum(p.stat().st_size for p in folder.rglob("*.safetensors")) / 2**20
    train = [m for m in metrics if "loss" in m]
    vals = [m for m in metrics if "val" in m]
    last_val = vals[-1]["val"] if vals else {}
    final_loss = sum(m["loss"] for m in train[-5:]) / max(len(train[-5:]), 1) if train else None
    rate = train[-1].get("steps_per_s") if train else None
    mem = max((m.get("gpu_mem_mb") or 0) for m in train) if train else 0
    t2v, it2v = report.get("t2v", {}), report.get("it2v", {})
    ref = it2v.get("reference_identity_accuracy")  # the metric on real clips (100 % on both test draws)
    id_ref = f"; real clips: {_pct(ref)}" if ref is not None else ""
    data = cfg.get("data_summary", {})
    aug = data.get("augmentation") or {}
    unet_cfg = folder / "unet" / "config.json"
    unet = json.loads(unet_cfg.read_text("utf-8")) if unet_cfg.is_file() else {}
    ref = config_reference_mode(unet)
    ref_text = {"off": "", "on": ", reference attention to the given frame",
                "all": ", reference attention to the given frame at every latent level"}[ref]
    if cfg.get("draft_size"):
        ref_text += f"; text → video drafted at {cfg['draft_size']} px and refined"
    if unet.get("size_delta_rank"):
        ref_text += (f"; rank-{unet['size_delta_rank']} size deltas, off at the draft size (there it is its base "
                     "model exactly)")
    if unet.get("style_delta_rank") and cfg.get("style_tag"):
        below = int(cfg.get("style_below_t") or 1000)
        ref_text += (f"; rank-{unet['style_delta_rank']} style deltas at the draft size, on only for prompts "
                     f"containing \"{cfg['style_tag']}\"" + ("" if cfg.get("style_given") else " without a given frame")
                     + (f", on the draft's steps below t = {below}" if below < 1000 else ""))
    lines = [
        f"# Model card: `{folder.name}`",
        "",
        (f"RDTF DFGN `{cfg['preset']}` preset ({cfg['temporal']} temporal layer"
        f"{ref_text}), dual masks "
        f"{'on' if cfg.get('dual_mask') else 'off'}, curriculum `{cfg.get('curriculum')}`, trained from scratch "
        f"with its own RGBA autoencoder (latent scale {cfg.get('latent_scale', float('nan')):.4f}). "
        f"{cfg['num_frames']} frames at {cfg['size']} px; weights fp16 safetensors, {size_mb:.1f} MiB in all."),
        "",
        "## Data",
        *_data_lines(cfg, data),
        *([(f"- Appearance augmentation (share of clips): mirrored {_pct(aug.get('mirror_p'))}, hue-rotated "
            f"{_pct(aug.get('hue_shift_p'))}, wearing a second emoji {_pct(aug.get('composite_p'))}"
            f"{', spliced with a second emoji ' + _pct(aug['splice_p']) if aug.get('splice_p') else ''}"
            f"{' (smiley halves in ≥ ' + _pct(aug['splice_face_p']) + ' of those)' if aug.get('splice_face_p') else ''}"
            "; extra "
            f"emoji pool {_pct(aug.get('extra_p'))}.")] if aug else []),
        "",
        "## Training",
        (f"- Initialised from `{cfg['base_model']}` ({cfg.get('base_steps', 0)} steps), then {cfg.get('steps')} more "
         f"with a fresh optimizer on the data below: "
         f"**{cfg.get('base_steps', 0) + cfg.get('steps', 0)} optimizer steps in all**." if cfg.get("base_model")
         else f"- Trained from scratch for {cfg.get('steps')} optimizer steps."),
        (f"- Global batch {batch}; on {gpu}, {gpu_minutes:g} GPU-minutes in all (all device time held: "
        f"machine start, autoencoder, data preparation and any GPU evaluation included); last rate "
        f"{_num(rate, 2)} steps/s, peak GPU memory {mem / 1024:.1f} GiB per GPU."),
        f"- Final training loss (mean of the last logged windows): {_num(final_loss)}.",
        "- Held-out validation loss at the last checkpoint: "
        + ", ".join(f"{k} {_num(v)}" for k, v in last_val.items()) + ".",
        "",
        (f"## Evaluation (`rdtf eval`, {report.get('clips', '?')} held-out clips, {report.get('sample_steps', '?')} "
        f"sampling steps, text guidance {report.get('guidance_text', '?')}, image guidance "
        f"{report.get('guidance_image', '?')}, seed {report.get('seed', '?')})"),
        "| metric | text→video | image&text→video | target |",
        "|---|---|---|---|",
        (f"| motion accuracy (classifier on real clips: {_pct(t2v.get('reference_motion_accuracy'))}) | "
        f"{_pct(t2v.get('motion_accuracy'))} | {_pct(it2v.get('motion_accuracy'))} | ≥ {_pct(TARGETS['motion'])} |"),
        f"| identity (nearest emoji{id_ref}) | – | {_pct(it2v.get('identity_accuracy'))} | ≥ {_pct(TARGETS['identity'])} |",
        (f"| Fréchet distance (real-vs-real floor {_num(t2v.get('frechet_distance_reference_halves'), 1)}) | "
        f"{_num(t2v.get('frechet_distance'), 1)} | {_num(it2v.get('frechet_distance'), 1)} | near the floor |"),
        (f"| semi-transparent share away from edges | {_num((t2v.get('alpha_semi_share') or {}).get('generated'), 3)}"
        f" | {_num((it2v.get('alpha_semi_share') or {}).get('generated'), 3)} | as real: "
        f"{_num((t2v.get('alpha_semi_share') or {}).get('reference'), 3)} |"),
        "",
        f"![held-out prompts: real clip, text→video, image&text→video per prompt]({sheet})",
        *(real_clip_section(real, real_sheet) if real else []),
        "",
        "## Known failure modes",
    ]
    per_class = (t2v.get("motion_accuracy_per_class") or {}).items()
    weakest = sorted(((k, v) for k, v in per_class if v < 1.0), key=lambda kv: kv[1])[:4]  # perfect: not weak
    fails = []
    if (t2v.get("motion_accuracy") or 0) < TARGETS["motion"]:
        fails.append(f"- Motion adherence is below target ({_pct(t2v.get('motion_accuracy'))} < "
                     f"{_pct(TARGETS['motion'])}).")
    if weakest:  # per-class numbers rest on a few clips each (see the eval report)
        fails.append("- Weakest motions (text→video): " + ", ".join(f"{k} {_pct(v)}" for k, v in weakest) + ".")
    if (it2v.get("identity_accuracy") or 0) < TARGETS["identity"]:
        fails.append(f"- Image&text→video does not keep the given emoji's identity well enough "
                     f"({_pct(it2v.get('identity_accuracy'))} < {_pct(TARGETS['identity'])}).")
    for split, v in sorted((it2v.get("identity_accuracy_by_split") or {}).items()):
        fails.append(f"- Identity on the `{split}` clips: {_pct(v.get('accuracy'))} of {v.get('clips')}"
                     + (" (emoji never seen in training)." if split == "heldout-emoji" else
                        " (emoji seen in training, in a motion held out)." if split == "heldout-pair" else "."))
    if "fluent" in (data.get("parts") or {}):
        fails.append("- Trained on single characters (Noto emoji with procedural motions, Fluent's animated emoji): "
                     "prompts about scenes, text or several objects fall back to blobs; unknown words are mostly "
                     "ignored (MiniLM, 384-d).")
        if cfg.get("draft_size") and cfg.get("style_tag") and unet.get("style_delta_rank"):
            fails.append(f"- Text → video with \"{cfg['style_tag']}\" draws the 3-D style and its motion, but a "
                         "character never seen in training is not drawn from its name alone (the real-clip table's "
                         "text → video identity); without the tag every prompt is drawn flat, as the Noto emoji.")
        elif cfg.get("draft_size") and unet.get("size_delta_rank"):
            fails.append(f"- Text → video is laid out by the {cfg['draft_size']} px draft, the base network, which "
                         "saw only Noto emoji: Fluent-style prompts come out as Noto-like shapes (the real-clip "
                         "table's text → video identity); a given picture carries its own style.")
    else:
        fails.append("- Trained only on single emoji with procedural motions: prompts about scenes, text or several "
                     "objects fall back to emoji-like blobs; unknown words are mostly ignored (MiniLM, 384-d).")
    extra = ["", "## Notes", notes.strip()] if notes.strip() else []
    return "\n".join(lines + fails + extra) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--metrics", type=Path, required=True)
    ap.add_argument("--eval", type=Path, required=True)
    ap.add_argument("--grid", type=Path, help="the emoji sheet (rdtf eval --grid), copied as samples.<ext>")
    ap.add_argument("--eval-real", type=Path, help="the `rdtf eval --json` report on held-out real clips")
    ap.add_argument("--grid-real", type=Path, help="its sheet, copied as samples-real.<ext>")
    ap.add_argument("--gpu", required=True)
    ap.add_argument("--gpu-minutes", type=float, required=True)
    ap.add_argument("--batch", default="?", help="global batch, e.g. '512 (4 GPUs × 128)'")
    ap.add_argument("--notes", type=Path, help="markdown appended as a Notes section (measured; repo docs only)")
    args = ap.parse_args()
    metrics = [json.loads(x) for x in args.metrics.read_text("utf-8").splitlines() if x.strip()]
    report = json.loads(args.eval.read_text("utf-8"))
    notes = args.notes.read_text("utf-8") if args.notes else ""
    real = json.loads(args.eval_real.read_text("utf-8")) if args.eval_real else None
    sheet = f"samples{args.grid.suffix}" if args.grid else "samples.png"
    real_sheet = f"samples-real{args.grid_real.suffix}" if args.grid_real else None
    card = build_card(args.folder, metrics, report, args.gpu, args.gpu_minutes, args.batch, notes, real, sheet,
                      real_sheet)
    (args.folder / "MODEL_CARD.md").write_text(card, "utf-8")
    for src, name in ((args.grid, sheet), (args.grid_real, real_sheet)):
        if src:
            shutil.copy(src, args.folder / name)
    print(card)


if __name__ == "__main__":
    main()
