"""Small helpers for messages people read.

>>> with_article("ecs target"), with_article("ECSRun"), with_article("UniversalRun")
('an ecs target', 'an ECSRun', 'a UniversalRun')
>>> with_article("kubernetes target"), with_article("LocalRun")
('a kubernetes target', 'a LocalRun')
"""

from __future__ import annotations

# Written with a vowel, said with a consonant ("a UniversalRun", "a user").
_SAID_WITH_A_CONSONANT = ("uni", "use", "usu", "eu", "one")
# An initialism whose first letter is said with a vowel ("an S3 location", "an MSK cluster").
_VOWEL_SOUNDING_LETTERS = set("AEFHILMNORSX")


def with_article(phrase: str) -> str:
    """``phrase`` after "a" or "an", as it is said."""
    first_word = phrase.split(" ", 1)[0]
    letters = first_word.rstrip("0123456789")
    initialism = len(first_word) > 1 and first_word[:2].isupper()
    if initialism:
        vowel_sound = first_word[0] in _VOWEL_SOUNDING_LETTERS
    else:
        lower = letters.lower()
        vowel_sound = lower[:1] in set("aeiou") and not lower.startswith(_SAID_WITH_A_CONSONANT)
    return f"{'an' if vowel_sound else 'a'} {phrase}"
