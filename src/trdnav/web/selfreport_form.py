"""The questionnaire a patient fills from a self-report link: which instruments, which questions.

Which instruments: those the knowledge base marks ``rater: self_report``. Wording: an item's text
is shown only where the instrument's licence allows storing it (``licence.store_item_text``);
otherwise the patient sees question numbers and answers on the printed form. Answers are checked
by the core's scoring (:func:`trdnav.core.scoring.score_answers`), after the form's own rule that
every question is answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from trdnav.core.scoring import ScoringError, score_answers
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.schema import Instrument


@dataclass(frozen=True)
class FormWording:
    """The question stem and answer labels printed on a form whose licence allows storing them.

    The instrument registry holds item wording but not answer labels; until it does, the labels
    of the forms below live here, used only when the instrument's licence allows stored wording.
    """

    stem: str
    answers: tuple[str, ...]


_TWO_WEEKS = ("Not at all", "Several days", "More than half the days", "Nearly every day")
WORDING = {
    "phq9": FormWording(
        "Over the last 2 weeks, how often have you been bothered by any of the following problems?",
        _TWO_WEEKS,
    ),
    "phq2": FormWording(
        "Over the last 2 weeks, how often have you been bothered by the following problems?",
        _TWO_WEEKS,
    ),
    "gad7": FormWording(
        "Over the last 2 weeks, how often have you been bothered by the following problems?",
        _TWO_WEEKS,
    ),
}


@dataclass(frozen=True)
class Question:
    n: int
    field: str
    text: str | None
    choices: tuple[tuple[int, str], ...]

    @property
    def numbers_only(self) -> bool:
        """The answers are bare numbers (no stored labels): laid out in a row."""
        return all(label == str(value) for value, label in self.choices)


def self_report_instruments(kb: Knowledge) -> list[Instrument]:
    """The instruments a patient fills alone (``rater: self_report``): PHQ-9 first, then those
    whose wording is shown, then the others, each group by name."""
    found = [i for i in kb.instruments.values() if i.rater == "self_report"]
    return sorted(found, key=lambda i: (i.id != "phq9", not wording_shown(i), i.name.lower()))


def blanks_allowed(inst: Instrument) -> bool:
    """Some questions may be left blank (QIDS-SR16: one question of several in a domain)."""
    return inst.missing.rule == "domain_any"


def wording_shown(inst: Instrument) -> bool:
    return inst.licence.store_item_text and all(item.text for item in inst.items)


def stem(inst: Instrument) -> str | None:
    wording = WORDING.get(inst.id)
    return wording.stem if wording is not None and wording_shown(inst) else None


def questions(inst: Instrument) -> list[Question]:
    wording = WORDING.get(inst.id) if wording_shown(inst) else None
    out = []
    for item in inst.items:
        values = list(range(item.min, item.max + 1))
        if wording is not None and len(wording.answers) == len(values):
            labels: tuple[str, ...] = wording.answers
        elif inst.answer_type == "yes_no" and values == [0, 1]:
            labels = ("No", "Yes")
        else:
            labels = tuple(str(v) for v in values)
        text = item.text if inst.licence.store_item_text else None
        out.append(
            Question(item.n, f"item_{item.n}", text, tuple(zip(values, labels, strict=True)))
        )
    return out


def parse_answers(
    inst: Instrument, form: Mapping[str, str]
) -> tuple[list[int | None], dict[str, str]]:
    """The answers, and per question field what is wrong, checked by the core's scoring.

    Every question must be answered, except on forms whose missing-item rule is ``domain_any``
    (QIDS-SR16: one of several questions of a domain is answered), where each domain needs one.
    """
    answers: list[int | None] = []
    errors: dict[str, str] = {}
    choose = "Please choose one of the answers shown."
    for q in questions(inst):
        raw = form.get(q.field, "").strip()
        if not raw:
            answers.append(None)
            continue
        try:
            answers.append(int(raw))
        except ValueError:
            answers.append(None)
            errors[q.field] = choose
    by_n = {item.n: a for item, a in zip(inst.items, answers, strict=True)}
    if blanks_allowed(inst):
        for d in inst.domains:
            if all(by_n[n] is None for n in d.items) and f"item_{d.items[0]}" not in errors:
                errors[f"item_{d.items[0]}"] = (
                    "Please choose an answer."
                    if len(d.items) == 1
                    else f"Please answer at least one of questions {d.items[0]} to {d.items[-1]}."
                )
    else:
        for item in inst.items:
            if by_n[item.n] is None and f"item_{item.n}" not in errors:
                errors[f"item_{item.n}"] = "Please choose an answer."
    if errors:
        return answers, errors
    try:
        score_answers(inst, answers)
    except ScoringError as exc:
        for p in exc.problems:
            k = p.loc.removeprefix("items[").removesuffix("]")
            field = f"item_{inst.items[int(k)].n}" if k.isdigit() else "form"
            errors[field] = choose if field != "form" else "Please answer every question."
    return answers, errors
