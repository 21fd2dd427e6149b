"""An invented sign language and its spoken counterpart: glosses, sentences, translations.

Glosses are upper-case pseudo-Greek lemmas in GSL's style (homonyms suffixed `(1)`, `(2)`,
compounds joined by `_`, numbers as digits). A clause is signed in the order time, subject,
objects (a noun, then its numbers and adjectives), verbs, negation, question. Its spoken
translation reorders it (question first, verbs before their objects, time last), adds words no
gloss carries (articles, the particle `na`, the copula `einai`, `kai` between clauses), inflects
verbs for the subject and adjectives for the noun's gender, drops subject pronouns half the time,
and spells some glosses as several words. The word-to-gloss alignment is kept with each sentence.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np

_ONSETS = ("p", "t", "k", "m", "n", "s", "l", "r", "v", "d", "g", "z", "th", "ch", "f", "x", "")
_VOWELS = ("a", "e", "i", "o", "ou", "y")
_PERSON_ENDINGS = ("o", "eis", "ei", "oume", "ete", "oun")  # 1sg 2sg 3sg 1pl 2pl 3pl
_NOUN_ENDINGS = {"m": "os", "f": "a", "n": "i"}
_ADJECTIVE_ENDINGS = {"m": "os", "f": "i", "n": "o"}
_ARTICLES = {"m": ("o", "ton"), "f": ("i", "tin"), "n": ("to", "to")}  # as subject, as object

# Share of the lexicon per category and the fewest of each; nouns take the rest.
_CATEGORY_SHARES = {"pronoun": (0.02, 1), "verb": (0.3, 2), "adjective": (0.12, 1),
                    "time": (0.05, 0), "question": (0.03, 0), "number": (0.04, 0),
                    "negation": (0.007, 0), "phrase": (0.02, 0)}
# Categories a one-gloss sentence is made of, with their weights.
_SINGLES = {"noun": 4, "verb": 3, "phrase": 2, "question": 1, "time": 1, "adjective": 1}
_SINGLE_ROLES = {"noun": "noun", "verb": "verb", "question": "question", "time": "time"}
# Clause parts besides the first verb: (role, category, chance).
_OPTIONAL = (("subject", "pronoun", 0.45), ("time", "time", 0.2), ("question", "question", 0.2),
             ("negation", "negation", 0.12), ("verb", "verb", 0.2))
_SIGN_ORDER = {"single": 0, "time": 0, "subject": 1, "noun": 2, "modifier": 2, "verb": 3,
               "negation": 4, "question": 5}


@dataclasses.dataclass(frozen=True)
class Gloss:
    """A lexical sign: its gloss and how the spoken language says it."""

    name: str
    category: str
    words: tuple[str, ...]  # the spoken citation form; verbs and adjectives inflect its last letter
    gender: str = "n"  # nouns: m, f or n
    person: int = 2  # pronouns: index into _PERSON_ENDINGS


@dataclasses.dataclass(frozen=True)
class Sentence:
    """Glosses (indices into the lexicon), the spoken translation, and the alignment.

    `alignment[w]` is the position in `glosses` that word w translates, or None for a word that
    no gloss carries.
    """

    glosses: tuple[int, ...]
    text: str
    alignment: tuple[int | None, ...]


def _pseudo_words(rng: np.random.Generator, n: int) -> list[str]:
    out: dict[str, None] = {}
    while len(out) < n:
        syllables = rng.integers(2, 4)
        out["".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables))] = None
    return list(out)


def _category_counts(n: int) -> dict[str, int]:
    counts = {c: max(low, round(share * n)) for c, (share, low) in _CATEGORY_SHARES.items()}
    counts["noun"] = n - sum(counts.values())
    if counts["noun"] < 2:
        raise ValueError(f"{n} glosses are too few for the grammar; use at least 8")
    return counts


def make_glosses(rng: np.random.Generator, n: int) -> list[Gloss]:
    """Draws a lexicon of n glosses with unique names."""
    stems = iter(_pseudo_words(rng, 2 * n))
    glosses = []
    for category, count in _category_counts(n).items():
        for k in range(count):
            stem, gender = next(stems), str(rng.choice(list(_NOUN_ENDINGS)))
            if category == "noun":
                words = (stem + _NOUN_ENDINGS[gender],)
                if rng.random() < 0.06:  # a compound: two signs' worth of meaning, two words
                    words = (next(stems) + _NOUN_ENDINGS[gender],) + words
                name = "_".join(words)
            elif category == "number":
                words, name = (stem,), str(k + 2)
            elif category == "phrase":
                words = (stem, next(stems))
                name = "_".join(words)
            elif category in ("verb", "adjective"):
                words, name = (stem + "o",), stem + "o"
            else:
                words, name = (stem,), stem
            person = k % len(_PERSON_ENDINGS) if category == "pronoun" else 2
            glosses.append(Gloss(name.upper(), category, words, gender, person))
    # Homonyms: a few signs share their spoken word with the sign before them (GSL's X(1), X(2)).
    for i in range(1, n):
        prev = glosses[i - 1]
        if glosses[i].category == prev.category == "verb" and "(" not in prev.name and rng.random() < 0.08:
            glosses[i - 1] = dataclasses.replace(prev, name=prev.name + "(1)")
            glosses[i] = dataclasses.replace(prev, name=prev.name + "(2)")
    return glosses


class _Picker:
    """Draws glosses of a category: unused ones first, then by a Zipf law, like real vocabularies."""

    def __init__(self, rng: np.random.Generator, glosses: list[Gloss]):
        self.rng = rng
        self.ids = collections.defaultdict(list)
        for i, g in enumerate(glosses):
            self.ids[g.category].append(i)
        self.weights = {c: _zipf(len(ids)) for c, ids in self.ids.items()}
        self.unused = set(range(len(glosses)))

    def has(self, category: str) -> bool:
        return bool(self.ids[category])

    def __call__(self, category: str) -> int:
        ids = self.ids[category]
        fresh = [i for i in ids if i in self.unused]
        if fresh:
            choice = fresh[self.rng.integers(len(fresh))]
        else:
            choice = ids[self.rng.choice(len(ids), p=self.weights[category])]
        self.unused.discard(choice)
        return int(choice)


def _zipf(n: int) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** 0.8
    return w / w.sum()


def _clause(rng: np.random.Generator, size: int, pick: _Picker) -> list[tuple[str, int]]:
    """A clause of `size` glosses as (role, gloss) pairs in sign order."""
    if size == 1:
        options = [c for c in _SINGLES if pick.has(c)]
        weights = np.array([_SINGLES[c] for c in options], float)
        category = options[rng.choice(len(options), p=weights / weights.sum())]
        return [(_SINGLE_ROLES.get(category, "single"), pick(category))]
    parts = [("verb", pick("verb"))] if rng.random() < 0.85 else []
    for role, category, chance in _OPTIONAL:
        if len(parts) < size - 1 and pick.has(category) and rng.random() < chance:
            parts.append((role, pick(category)))
    while len(parts) < size:  # noun phrases fill the rest: a noun, then maybe numbers/adjectives
        parts.append(("noun", pick("noun")))
        while len(parts) < size and rng.random() < 0.3:
            adjective = rng.random() < 0.75 or not pick.has("number")
            parts.append(("modifier", pick("adjective" if adjective else "number")))
    return sorted(parts, key=lambda part: _SIGN_ORDER[part[0]])


def _inflect(citation: str, ending: str) -> str:
    return citation[:-1] + ending


def _noun_phrase(phrase: list[tuple[Gloss, int]], is_object: bool) -> list[tuple[str, int | None]]:
    """Article, numbers and adjectives (agreeing with the noun), then the noun."""
    (noun, noun_pos), *modifiers = phrase
    out = [(_ARTICLES[noun.gender][is_object], None)]
    for gloss, pos in modifiers:
        word = gloss.words[0]
        if gloss.category == "adjective":
            word = _inflect(word, _ADJECTIVE_ENDINGS[noun.gender])
        out.append((word, pos))
    return out + [(w, noun_pos) for w in noun.words]


def _spoken(clause: list[tuple[str, int]], glosses: list[Gloss], first: int,
            overt_subject: bool) -> list[tuple[str, int | None]]:
    """The spoken words of one clause, each with the sentence position of its gloss."""
    parts = [(role, glosses[g], first + k) for k, (role, g) in enumerate(clause)]
    by_role = collections.defaultdict(list)
    phrases = []  # each noun with the modifiers signed after it
    for role, gloss, pos in parts:
        by_role[role].append((gloss, pos))
        if role == "noun":
            phrases.append([(gloss, pos)])
        elif role == "modifier":
            phrases[-1].append((gloss, pos))
    has_verb = bool(by_role["verb"])
    person = by_role["subject"][0][0].person if by_role["subject"] else 2
    out = [(g.words[0], pos) for g, pos in by_role["question"]]
    if overt_subject or not has_verb:
        out += [(g.words[0], pos) for g, pos in by_role["subject"]]
    predicate = [("den", pos) for _, pos in by_role["negation"]]
    for k, (gloss, pos) in enumerate(by_role["verb"]):
        predicate += [("na", None)] * (k > 0) + [(_inflect(gloss.words[0], _PERSON_ENDINGS[person]), pos)]
    objects = [_noun_phrase(phrase, has_verb) for phrase in phrases]
    if not has_verb and len(parts) > 1:
        # "X is Y": the copula follows the subject, or else the first noun phrase.
        predicate.append(("einai", None))
        objects.insert(0 if by_role["subject"] or not objects else 1, predicate)
    else:
        objects.insert(0, predicate)
    out += [word for phrase in objects for word in phrase]
    for role in ("single", "time"):
        out += [(w, pos) for gloss, pos in by_role[role] for w in gloss.words]
    return out


def make_sentence(rng: np.random.Generator, length: int, glosses: list[Gloss], pick: _Picker) -> Sentence:
    """One sentence of `length` glosses: clauses of at most six, joined by `kai` when spoken."""
    sizes = []
    while sum(sizes) < length:
        sizes.append(min(length - sum(sizes), int(rng.integers(3, 7)) if length > 6 else length))
    overt = rng.random() < 0.5
    words, order, first = [], [], 0
    for k, size in enumerate(sizes):
        clause = _clause(rng, size, pick)
        words += [("kai", None)] * (k > 0) + _spoken(clause, glosses, first, overt)
        order += [g for _, g in clause]
        first += size
    return Sentence(tuple(order), " ".join(w for w, _ in words), tuple(p for _, p in words))


def make_sentences(rng: np.random.Generator, glosses: list[Gloss], lengths: list[int]) -> list[Sentence]:
    """Distinct sentences, one per requested length, that together use every gloss if they can.

    Longer sentences are drawn first so that the unused glosses spread over many sentences.
    """
    pick = _Picker(rng, glosses)
    seen, out = set(), {}
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        for _ in range(1000):
            sentence = make_sentence(rng, lengths[i], glosses, pick)
            if sentence.glosses not in seen:
                break
        else:
            raise ValueError(f"cannot draw distinct sentences of {lengths[i]} glosses from this lexicon")
        seen.add(sentence.glosses)
        out[i] = sentence
    return [out[i] for i in range(len(lengths))]


def make_novel_sentences(rng: np.random.Generator, glosses: list[Gloss], lengths: list[int],
                         held_out: list[bool]) -> list[Sentence]:
    """One sentence per sample, each a new combination where the grammar allows.

    Training samples (`held_out[i]` False) avoid sentences drawn before when a few tries find
    another; a held-out sample's sentence of two glosses or more never occurs in training nor in
    another held-out sample, so translating it takes recognising its signs, not recalling it.
    One-gloss sentences repeat: a lexicon has only so many.
    """
    pick = _Picker(rng, glosses)
    seen, out = set(), {}
    for i in sorted(range(len(lengths)), key=lambda i: (held_out[i], -lengths[i])):
        tries = 1000 if held_out[i] else 20
        for _ in range(tries):
            sentence = make_sentence(rng, lengths[i], glosses, pick)
            if sentence.glosses not in seen or lengths[i] == 1:
                break
        else:
            if held_out[i]:
                raise ValueError(f"cannot draw an unseen sentence of {lengths[i]} glosses from this lexicon")
        seen.add(sentence.glosses)
        out[i] = sentence
    return [out[i] for i in range(len(lengths))]
