"""Sign forms: the phonological parameters that make each gloss a distinct sign.

A form is one- or two-handed, has a handshape (maybe changing to another), a location on or in
front of the body, a palm orientation, a movement path, a local movement of the wrist or fingers,
and a duration. Parameters are drawn with the skewed frequencies of real sign lexicons: most signs
are made in the neutral space in front of the body with a few unmarked handshapes, so neither a
location nor a handshape alone tells signs apart.
"""

from __future__ import annotations

import dataclasses

import numpy as np

HANDS = {"one": 55, "symmetric": 20, "alternating": 8, "base": 17}
HANDSHAPE_WEIGHTS = {"B": 10, "5": 8, "1": 9, "A": 5, "S": 6, "C": 4, "O": 4, "V": 3, "L": 3, "Y": 2,
                     "I": 2, "W": 1, "F": 2, "X": 2, "H": 2, "bent_B": 3, "claw": 2, "flat_O": 3}
# Opening and closing movements: a handshape and the one it may turn into.
HANDSHAPE_CHANGES = {"5": "S", "S": "5", "B": "flat_O", "flat_O": "5", "1": "X", "O": "5", "C": "S",
                     "L": "A", "V": "H", "claw": "S"}
ORIENTATION_WEIGHTS = {"palm_out": 3, "palm_in": 2, "palm_across": 3, "palm_down": 3, "palm_up": 2,
                       "palm_across_forward": 2, "palm_down_across": 2, "palm_in_across": 2,
                       "palm_up_across": 1}
ONE_HANDED_LOCATIONS = {"neutral": 22, "neutral_high": 8, "neutral_low": 6, "neutral_centre": 6,
                        "neutral_side": 4, "forehead": 6, "eye": 3, "nose": 3, "mouth": 5, "chin": 6,
                        "cheek": 4, "temple": 4, "neck": 3, "chest": 8, "chest_side": 4,
                        "shoulder_other": 3, "stomach": 3}
TWO_HANDED_LOCATIONS = {"neutral": 10, "neutral_high": 4, "neutral_low": 4, "neutral_side": 3,
                        "chest": 3, "stomach": 1, "temple": 1, "cheek": 1}
HEAD_LOCATIONS = ("forehead", "eye", "nose", "mouth", "chin", "cheek", "temple")
PATHS = {"hold": 12, "line": 30, "arc": 18, "circle": 14, "repeat": 26}
LOCAL_MOVEMENTS = {"none": 70, "wiggle": 8, "twist": 12, "nod": 10}
BASE_HANDSHAPES = {"B": 6, "S": 2, "5": 1, "1": 1, "C": 1}
BASE_ORIENTATIONS = {"palm_up": 3, "palm_in_across": 2, "palm_across": 2, "palm_down": 2}
_DIRECTIONS = np.array([(0, -1, 0), (0, 1, 0), (0, 0, -1), (0, 0, 1), (1, 0, 0), (-1, 0, 0),
                        (1, -1, 0), (-1, -1, 0), (1, 1, 0), (-1, 1, 0), (0, -1, -1), (0, 1, -1),
                        (1, 0, -1), (-1, 0, -1)], float)


@dataclasses.dataclass(frozen=True)
class SignForm:
    """The citation form of a sign, for a right dominant hand (see signer.locations)."""

    hands: str  # a key of HANDS; "base": the dominant hand acts on the still other hand
    handshape: str
    end_handshape: str
    location: str  # a key of signer.locations, or "base"
    orientation: str  # a key of hand.ORIENTATIONS
    tilt: tuple[float, float, float]  # rotation vector (radians) applied on top of the orientation
    path: str  # a key of PATHS
    direction: tuple[float, float, float]  # unit vector of the movement
    normal: tuple[float, float, float]  # unit vector across it: an arc's bulge, a circle's plane
    size: float  # metres: a line's length, a circle's radius, a repetition's amplitude
    cycles: int  # repetitions, or turns of a circle
    local: str  # a key of LOCAL_MOVEMENTS
    frames: float  # duration at a speed of 1, 30 frames per second
    base_handshape: str = ""
    base_orientation: str = ""

    @property
    def two_handed(self) -> bool:
        return self.hands != "one"


def _choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], float)
    return keys[rng.choice(len(keys), p=p / p.sum())]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def make_form(rng: np.random.Generator) -> SignForm:
    """Draws one sign form."""
    hands = _choice(rng, HANDS)
    handshape = _choice(rng, HANDSHAPE_WEIGHTS)
    change = handshape in HANDSHAPE_CHANGES and rng.random() < 0.2
    location = ("base" if hands == "base" else
                _choice(rng, ONE_HANDED_LOCATIONS if hands == "one" else TWO_HANDED_LOCATIONS))
    path = _choice(rng, PATHS)
    if hands == "alternating" and path in ("hold", "arc"):
        path = "repeat"
    direction = _unit(_DIRECTIONS[rng.integers(len(_DIRECTIONS))] + rng.normal(0, 0.2, 3))
    normal = np.cross(direction, _unit(rng.normal(size=3)))
    near_face = location in HEAD_LOCATIONS or location == "base"
    size = {"hold": 0.01, "line": rng.uniform(0.06, 0.22), "arc": rng.uniform(0.06, 0.2),
            "circle": rng.uniform(0.03, 0.08), "repeat": rng.uniform(0.03, 0.09)}[path]
    cycles = {"repeat": 2 + (rng.random() < 0.3), "circle": 1 + (rng.random() < 0.3)}.get(path, 1)
    frames = {"hold": 7, "line": 8, "arc": 9, "circle": 4 + 4 * cycles, "repeat": 4 + 3 * cycles}[path]
    return SignForm(
        hands=hands, handshape=handshape,
        end_handshape=HANDSHAPE_CHANGES[handshape] if change else handshape,
        location=location, orientation=_choice(rng, ORIENTATION_WEIGHTS),
        tilt=tuple(rng.normal(0, 0.25, 3)), path=path, direction=tuple(direction),
        normal=tuple(_unit(normal)), size=size * (0.5 if near_face else 1.0), cycles=cycles,
        local=_choice(rng, LOCAL_MOVEMENTS), frames=frames * float(np.exp(rng.normal(0, 0.12))),
        base_handshape=_choice(rng, BASE_HANDSHAPES) if hands == "base" else "",
        base_orientation=_choice(rng, BASE_ORIENTATIONS) if hands == "base" else "",
    )


def _key(form: SignForm) -> tuple:
    return (form.hands, form.handshape, form.end_handshape, form.location, form.orientation,
            form.path, form.local)


def make_lexicon(rng: np.random.Generator, n: int) -> list[SignForm]:
    """n sign forms, no two alike in their discrete parameters (minimal pairs allowed)."""
    forms, seen = [], set()
    while len(forms) < n:
        form = make_form(rng)
        if _key(form) not in seen:
            seen.add(_key(form))
            forms.append(form)
    return forms

