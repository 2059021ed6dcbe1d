"""Class sets: the class names, in their contractual index order, and how each corpus's
emotion names map onto them. An emotion a class set does not map is dropped from that class set's dataset
(counted in the build report); a name the corpus never uses is an annotation error, reported by name."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ClassSet:
  name: str
  classes: tuple[str, ...]
  mapping: dict[str, str]          # corpus emotion (lower case) → class
  dropped: tuple[str, ...] = ()    # emotions the corpus has that this class set leaves out

  def label(self, emotion: str) -> int | None:
    """The class index of `emotion`, None when the class set drops it; KeyError when it is unknown."""
    if emotion in self.mapping:
      return self.classes.index(self.mapping[emotion])
    if emotion in self.dropped:
      return None
    raise KeyError(emotion)


def _identity(*names: str) -> dict[str, str]:
  return {n: n for n in names}


# Emotion spellings met in the corpora, normalised to one name per corpus before mapping.
ALIASES = {
    'samm': {'others': 'other'},
    'casme3': {'happiness': 'happy', 'sadness': 'sad'},
}

_CASME2_ALL = ('happiness', 'surprise', 'disgust', 'repression', 'others', 'fear', 'sadness')
_SAMM_ALL = ('happiness', 'surprise', 'anger', 'contempt', 'other', 'disgust', 'fear', 'sadness')
_CASME3_NEG = ('disgust', 'fear', 'anger', 'sad')

CLASS_SETS: dict[str, dict[str, ClassSet]] = {
    'casme2': {
        '5class': ClassSet('5class', ('happiness', 'surprise', 'disgust', 'repression', 'others'),
                           _identity('happiness', 'surprise', 'disgust', 'repression', 'others'),
                           dropped=('fear', 'sadness')),
        '3class': ClassSet('3class', ('negative', 'positive', 'surprise'),
                           {'disgust': 'negative', 'repression': 'negative', 'happiness': 'positive',
                            'surprise': 'surprise'}, dropped=('others', 'fear', 'sadness')),
    },
    'samm': {
        '5class': ClassSet('5class', ('happiness', 'surprise', 'anger', 'contempt', 'other'),
                           _identity('happiness', 'surprise', 'anger', 'contempt', 'other'),
                           dropped=('disgust', 'fear', 'sadness')),
        '3class': ClassSet('3class', ('negative', 'positive', 'surprise'),
                           {**{e: 'negative' for e in ('anger', 'contempt', 'disgust', 'fear', 'sadness')},
                            'happiness': 'positive', 'surprise': 'surprise'}, dropped=('other',)),
    },
    'smic': {
        '3class': ClassSet('3class', ('negative', 'positive', 'surprise'),
                           _identity('negative', 'positive', 'surprise')),
    },
    'casme_sq': {
        '4class': ClassSet('4class', ('negative', 'positive', 'surprise', 'others'),
                           _identity('negative', 'positive', 'surprise', 'others')),
    },
    'casme3': {
        '7class': ClassSet('7class', ('happy', 'disgust', 'fear', 'anger', 'sad', 'surprise', 'others'),
                           _identity('happy', 'disgust', 'fear', 'anger', 'sad', 'surprise', 'others')),
        '4class': ClassSet('4class', ('positive', 'negative', 'surprise', 'others'),
                           {'happy': 'positive', **{e: 'negative' for e in _CASME3_NEG},
                            'surprise': 'surprise', 'others': 'others'}),
        '3class': ClassSet('3class', ('positive', 'negative', 'surprise'),
                           {'happy': 'positive', **{e: 'negative' for e in _CASME3_NEG},
                            'surprise': 'surprise'}, dropped=('others',)),
    },
}
# The MEGC 2019 composite labels each part by that corpus's 3-class class_set; its classes are theirs.
COMPOSITE_PARTS = ('casme2', 'samm', 'smic')
CLASS_SETS['megc2019'] = {'3class': ClassSet('3class', ('negative', 'positive', 'surprise'),
                                            _identity('negative', 'positive', 'surprise'))}


def canonical_emotion(corpus: str, emotion: str) -> str:
  return ALIASES.get(corpus, {}).get(emotion, emotion)


def get(corpus: str, name: str) -> ClassSet:
  try:
    return CLASS_SETS[corpus][name]
  except KeyError:
    known = ', '.join(CLASS_SETS.get(corpus, {})) or 'none'
    raise ValueError(f'unknown class_set {name!r} for {corpus}: known {known}') from None
