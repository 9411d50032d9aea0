"""Pack prompts: the text sent for each sticker of a pack, written the way the training captions are.

Training captions read ``"<object name> <participle phrase>"`` ("grinning face waving hello", "the cat jumping
for joy"; ``emoji.py`` and ``motion.py``), and the model learnt motion only from those phrases. A pack mood is
often not one of them ("laughing", "heart eyes"), so the prompt keeps the creator's words and adds the phrase
of the motion the mood reads as (laughing → bouncing happily): the character still laughs, and it moves.
:func:`motion_class` is that motion, which ``rdtf pack eval`` checks with the motion classifier.
"""

from __future__ import annotations

import re

from rdtf_engine.data.motion import PROGRAMS

# Mood → the model's motion class it reads as. Whole words, longest key first; moods missing here keep only
# their own words (and the eval reports no motion for them).
MOOD_MOTIONS: dict[str, str] = {
    "waving": "wave", "wave": "wave", "hello": "wave", "hi": "wave", "bye": "wave", "goodbye": "wave",
    "laughing": "bounce", "happy": "bounce", "smiling": "bounce", "lol": "bounce", "yay": "bounce",
    "crying": "shake", "sad": "float", "angry": "shake", "mad": "shake", "scared": "shake", "cold": "shake",
    "no": "shake", "surprised": "jump", "shocked": "jump", "excited": "jump", "wow": "jump",
    "jumping": "jump", "jump": "jump", "sleeping": "float", "sleepy": "float", "tired": "float",
    "heart eyes": "heartbeat", "love": "heartbeat", "in love": "heartbeat", "heart": "heartbeat",
    "thumbs up": "nod", "yes": "nod", "ok": "nod", "okay": "nod", "thinking": "wobble", "confused": "wobble",
    "dancing": "wobble", "dance": "wobble", "party": "spin", "celebrating": "spin", "spinning": "spin",
    "clapping": "pulse", "kiss": "pulse", "bouncing": "bounce", "nodding": "nod", "shaking": "shake",
    "floating": "float", "blinking": "blink", "pulsing": "pulse", "wobbling": "wobble",
}
# How a mood reads after the subject in a caption when it is not already a verb phrase.
MOOD_PHRASES: dict[str, str] = {
    "heart eyes": "with heart eyes", "thumbs up": "giving a thumbs up", "party": "partying", "love": "in love",
    "angry": "looking angry", "surprised": "looking surprised", "sad": "looking sad", "happy": "looking happy",
    "shocked": "looking shocked", "excited": "looking excited", "scared": "looking scared",
    "tired": "looking tired", "sleepy": "looking sleepy", "confused": "looking confused", "cool": "looking cool",
    "hello": "saying hello", "hi": "saying hi", "bye": "saying bye", "goodbye": "saying goodbye",
    "yes": "saying yes", "no": "saying no", "ok": "saying ok", "okay": "saying okay", "thanks": "saying thanks",
    "kiss": "blowing a kiss", "lol": "laughing out loud",
}
MAX_SUBJECT_CHARS = 300


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"[a-z]+", text.lower())) + " "


def _lookup(table: dict[str, str], motion: str) -> str | None:
    words = _words(motion)
    for key in sorted(table, key=len, reverse=True):
        if f" {key} " in words:
            return table[key]
    return None


def motion_class(motion: str) -> str | None:
    """The model's motion class a pack mood reads as ("heart eyes" → "heartbeat"), or None."""
    return _lookup(MOOD_MOTIONS, motion)


def sticker_prompt(subject: str, motion: str) -> str:
    """The prompt for one sticker: ``"<subject> <mood phrase>[, <motion phrase>]"``.

    "a cat", "waving" → "a cat waving"; "a cat", "laughing" → "a cat laughing, bouncing"; "a cat", "heart
    eyes" → "a cat with heart eyes, beating". The motion phrase is left out when the mood already says it."""
    subject = " ".join(subject.split()).strip(" .,;:!?")[:MAX_SUBJECT_CHARS] or "a character"
    mood = " ".join(motion.split()).strip(" .,;:!?")
    phrase = MOOD_PHRASES.get(mood.lower(), mood)
    cls = motion_class(mood)
    said = _words(phrase)
    extra = ""
    verbs = {w for p in PROGRAMS[cls].phrases for w in p.split() if w.endswith("ing")} if cls else set()
    if cls is not None and not any(f" {v} " in said for v in verbs):
        extra = f", {PROGRAMS[cls].phrases[0]}"
    return f"{subject} {phrase}{extra}".strip()


__all__ = ["MOOD_MOTIONS", "MOOD_PHRASES", "motion_class", "sticker_prompt"]
