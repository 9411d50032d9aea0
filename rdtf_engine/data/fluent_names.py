"""Caption subjects of Fluent Emoji files: a code-point sequence → words ("waving hand, medium skin tone").

Built from ``unicodedata`` names per code point (through :func:`rdtf_engine.data.emoji.emoji_name`, so a
Fluent clip and a Noto clip of the same emoji share the name), plus the rules Unicode uses to read sequences:

- skin-tone modifiers → ", light skin tone" … ", dark skin tone" after the subject;
- ZWJ + ♀ / ♂ → the gendered subject ("runner" + ♀ → "woman runner", "person with ball" → "woman with ball");
- person / man / woman + ZWJ + an object → a role ("woman technologist", "man farmer") or a hair style;
- families, couples and kisses of people → "family: man, woman, girl", "couple with heart: woman, man";
- a few object sequences by name ("rainbow flag", "heart on fire"); keycaps ("keycap 7"); flags ("flag FR").
"""

from __future__ import annotations

import unicodedata

from rdtf_engine.data.emoji import emoji_name

ZWJ, VS16, VS15, KEYCAP, CANCEL_TAG = 0x200D, 0xFE0F, 0xFE0E, 0x20E3, 0xE007F
TONES = {0x1F3FB: "light", 0x1F3FC: "medium-light", 0x1F3FD: "medium", 0x1F3FE: "medium-dark", 0x1F3FF: "dark"}
GENDER = {0x2640: "woman", 0x2642: "man"}
PEOPLE = {0x1F468: "man", 0x1F469: "woman", 0x1F9D1: "person", 0x1F466: "boy", 0x1F467: "girl", 0x1F9D2: "child"}
ROLES = {  # person/man/woman + ZWJ + this → "<gender> <role>"
    0x2695: "health worker", 0x2696: "judge", 0x2708: "pilot", 0x1F33E: "farmer", 0x1F373: "cook",
    0x1F37C: "feeding a baby", 0x1F384: "claus", 0x1F393: "student", 0x1F3A4: "singer", 0x1F3A8: "artist",
    0x1F3EB: "teacher", 0x1F3ED: "factory worker", 0x1F4BB: "technologist", 0x1F4BC: "office worker",
    0x1F527: "mechanic", 0x1F52C: "scientist", 0x1F680: "astronaut", 0x1F692: "firefighter",
    0x1F9AF: "with a white cane", 0x1F9BC: "in a motorised wheelchair", 0x1F9BD: "in a manual wheelchair",
    0x1F9B0: "with red hair", 0x1F9B1: "with curly hair", 0x1F9B3: "with white hair", 0x1F9B2: "bald",
}
OBJECT_SEQUENCES = {  # ZWJ sequences that name a new object (VS16 and tones removed)
    (0x1F3F3, 0x1F308): "rainbow flag", (0x1F3F3, 0x26A7): "transgender flag", (0x1F3F4, 0x2620): "pirate flag",
    (0x1F408, 0x2B1B): "black cat", (0x1F415, 0x1F9BA): "service dog", (0x1F426, 0x2B1B): "black bird",
    (0x1F43B, 0x2744): "polar bear", (0x1F441, 0x1F5E8): "eye in a speech bubble", (0x2764, 0x1F525): "heart on fire",
    (0x2764, 0x1FA79): "mending heart", (0x1F426, 0x1F525): "phoenix", (0x1F34B, 0x1F7E9): "lime",
    (0x1F344, 0x1F7EB): "brown mushroom", (0x26D3, 0x1F4A5): "broken chain", (0x1F62E, 0x1F4A8): "face exhaling",
    (0x1F635, 0x1F4AB): "face with spiral eyes", (0x1F636, 0x1F32B): "face in clouds",
    (0x1F642, 0x2194): "head shaking horizontally", (0x1F642, 0x2195): "head shaking vertically",
    (0x1F9D1, 0x1F91D, 0x1F9D1): "people holding hands", (0x1FAF1, 0x1FAF2): "handshake",
}
NEWER_NAMES = {  # Unicode 15 / 15.1 emoji that older Pythons' unicodedata does not name yet
    0x1F6DC: "wireless", 0x1FA75: "light blue heart", 0x1FA76: "grey heart", 0x1FA77: "pink heart",
    0x1FA87: "maracas", 0x1FA88: "flute", 0x1FAAD: "folding hand fan", 0x1FAAE: "hair pick", 0x1FAAF: "khanda",
    0x1FABB: "hyacinth", 0x1FABC: "jellyfish", 0x1FABD: "wing", 0x1FABF: "goose", 0x1FACE: "moose",
    0x1FACF: "donkey", 0x1FADA: "ginger root", 0x1FADB: "pea pod", 0x1FAE8: "shaking face",
    0x1FAF7: "leftwards pushing hand", 0x1FAF8: "rightwards pushing hand",
}
SUBDIVISIONS = {"gbeng": "England", "gbsct": "Scotland", "gbwls": "Wales"}


def sequence_name(seq: tuple[int, ...]) -> str:
    """Lower-case caption subject of a code-point sequence (see the module docstring)."""
    cps = [c for c in seq if c not in (VS16, VS15)]
    if not cps:
        raise ValueError("empty code-point sequence")
    if KEYCAP in cps:
        return f"keycap {chr(cps[0])}"
    if all(0x1F1E6 <= c <= 0x1F1FF for c in cps):
        return "flag " + "".join(chr(c - 0x1F1E6 + ord("A")) for c in cps)
    if any(0xE0020 <= c <= CANCEL_TAG for c in cps):
        tag = "".join(chr(c - 0xE0000) for c in cps if 0xE0020 <= c < CANCEL_TAG)
        return f"flag of {SUBDIVISIONS.get(tag, tag.upper())}"
    tones = [TONES[c] for c in cps if c in TONES]
    subject = _subject(tuple(c for c in cps if c not in TONES))
    if tones:
        distinct = list(dict.fromkeys(tones))
        subject += ", " + ", ".join(f"{t} skin tone" for t in distinct)
    return subject


def _subject(cps: tuple[int, ...]) -> str:
    """The sequence without skin tones or variation selectors → its subject words."""
    parts = [tuple(p) for p in _split(cps, ZWJ)]
    if len(parts) == 1:
        return " ".join(_name(c) for c in parts[0])  # e.g. handshake's two hands after tones went
    flat = tuple(c for p in parts for c in p)
    if flat in OBJECT_SEQUENCES:
        return OBJECT_SEQUENCES[flat]
    heads = [p[0] for p in parts]
    if len(parts) == 2 and heads[1] in GENDER:
        return _gendered(_name(heads[0]), GENDER[heads[1]])
    if 0x2764 in heads and all(h in PEOPLE or h in (0x2764, 0x1F48B) for h in heads):
        who = ", ".join(PEOPLE[h] for h in heads if h in PEOPLE)
        return f"kiss: {who}" if 0x1F48B in heads else f"couple with heart: {who}"
    if all(h in PEOPLE for h in heads):
        return "family: " + ", ".join(PEOPLE[h] for h in heads)
    if len(parts) == 2 and heads[0] in PEOPLE and heads[1] in ROLES:
        return _role(PEOPLE[heads[0]], ROLES[heads[1]])
    if heads[-1] in GENDER:  # e.g. a role + gender written the long way
        return _gendered(_subject(tuple(c for p in parts[:-1] for c in p + (ZWJ,))[:-1]), GENDER[heads[-1]])
    return " and ".join(_name(h) for h in heads)


def _split(cps: tuple[int, ...], sep: int) -> list[list[int]]:
    out: list[list[int]] = [[]]
    for c in cps:
        if c == sep:
            out.append([])
        else:
            out[-1].append(c)
    return [p for p in out if p]


def _name(cp: int) -> str:
    if cp in PEOPLE and cp not in (0x1F9D1,):
        return PEOPLE[cp]
    if cp in NEWER_NAMES:
        return NEWER_NAMES[cp]
    return emoji_name(cp) if unicodedata.name(chr(cp), None) else "emoji"


def _gendered(name: str, gender: str) -> str:
    """"runner" + woman → "woman runner"; "person with ball" → "woman with ball"; "man in tuxedo" → "woman in
    tuxedo"."""
    words = name.split()
    for i, w in enumerate(words):
        if w in ("person", "man", "woman"):
            words[i] = gender
            return " ".join(words)
    return f"{gender} {name}"


def _role(person: str, role: str) -> str:
    if role == "claus":
        return {"man": "santa claus", "woman": "mrs claus"}.get(person, "mx claus")
    if role == "bald":
        return f"bald {person}"
    if role.startswith(("with ", "in ", "feeding ")):
        return f"{person} {role}"
    return role if person == "person" else f"{person} {role}"
