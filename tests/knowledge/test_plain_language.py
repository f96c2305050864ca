"""Patient summaries: about an 8th-grade reading level, no promises."""

from __future__ import annotations

import re
import statistics

import pytest

from trdnav.knowledge.load import default_knowledge

PROMISES = ("guarantee", "cure", "will make you better", "will get better", "always works", "100 %")


def syllables(word: str) -> int:
    w = re.sub(r"[^a-z]", "", word.lower())
    if not w:
        return 0
    n = len(re.findall(r"[aeiouy]+", w))
    if w.endswith("e") and n > 1 and not w.endswith("le"):
        n -= 1
    return max(n, 1)


def grade(text: str) -> float:
    """Flesch–Kincaid grade level (Kincaid et al. 1975), with a simple syllable count."""
    sentences = max(1, len(re.findall(r"[.!?]+(\s|$)", text)))
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", text)
    per_word = sum(map(syllables, words)) / len(words)
    return 0.39 * len(words) / sentences + 11.8 * per_word - 15.59


def test_the_grade_formula_ranks_texts_sensibly():
    assert grade("The cat sat. The dog ran.") < 2
    long = "Pharmacological augmentation strategies demonstrated heterogeneous effectiveness."
    assert grade(long) > 14


SUMMARIES = {o.id: o.summary_plain for o in default_knowledge().options.options.values()}


@pytest.mark.parametrize("option", sorted(SUMMARIES))
def test_each_summary_reads_at_about_an_8th_grade_level_and_promises_nothing(option):
    text = SUMMARIES[option]
    assert grade(text) <= 9.0, f"{option}: grade {grade(text):.1f}"
    assert not any(p in text.lower() for p in PROMISES)


def test_the_summaries_are_at_or_below_8th_grade_on_the_median():
    assert statistics.median(grade(t) for t in SUMMARIES.values()) <= 8.0
