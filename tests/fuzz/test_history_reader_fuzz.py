"""Fuzzing the history file reader and the assessment behind ``trdnav assess``.

Property: a file, however mangled, gives a valid assessment or an :class:`InputError` whose every
problem has a message — never another exception, never a traceback from the command.
Documents start from ``examples/*.yaml`` and are mutated at random paths (types swapped, huge and
negative numbers, far dates, missing and unknown keys, unicode, nesting), or their text is cut and
spliced (syntax errors, duplicate keys, stray anchors and aliases); hand-made hostile files cover
alias bombs and deep nesting. ``TRDNAV_FUZZ_EXAMPLES=4000`` runs a longer campaign.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.fuzz.mutations import alias_bomb, as_json, as_yaml, mangled_text, mutated
from trdnav.cli import app
from trdnav.core.adequacy import AdequacyRules
from trdnav.core.assessment import Assessment, assess
from trdnav.errors import InputError
from trdnav.history_files import load_history
from trdnav.knowledge.load import default_knowledge

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
TEXTS = [p.read_text(encoding="utf-8") for p in EXAMPLES]
DOCS = [yaml.safe_load(t) for t in TEXTS]
TODAY = date(2024, 6, 1)
KB = default_knowledge()
RULES = AdequacyRules.from_knowledge(KB)
_N = os.environ.get("TRDNAV_FUZZ_EXAMPLES")
fuzz_settings: Callable[[Any], Any] = (
    settings(max_examples=int(_N), deadline=None) if _N else settings()
)

# a failing example of a large document is printed in full: the warning about its size must
# not replace the failure it reports (filterwarnings = error)
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


def read_and_assess(text: str, suffix: str) -> Assessment | InputError:
    """What ``trdnav assess FILE`` does: read the file, validate, assess."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"history{suffix}"
        path.write_text(text, encoding="utf-8")
        try:
            history = load_history(path, KB, TODAY)
        except InputError as exc:
            assert exc.problems, "an InputError names at least one problem"
            for p in exc.problems:
                assert p.message.strip() and p.code, p
                assert p.file == str(path)
            return exc
        return assess(history, KB, RULES)


def test_every_example_is_assessed_unchanged():
    for text in TEXTS:
        assert isinstance(read_and_assess(text, ".yaml"), Assessment)


@fuzz_settings
@given(doc=mutated(DOCS), fmt=st.sampled_from([".yaml", ".json"]))
def test_a_mutated_history_is_assessed_or_refused_with_a_clear_error(doc, fmt):
    read_and_assess(as_yaml(doc) if fmt == ".yaml" else as_json(doc), fmt)


@fuzz_settings
@given(text=mangled_text(TEXTS))
def test_a_spliced_history_text_is_assessed_or_refused_with_a_clear_error(text):
    read_and_assess(text, ".yaml")


@fuzz_settings
@given(text=mangled_text([as_json(d) for d in DOCS]))
def test_a_spliced_json_history_is_assessed_or_refused_with_a_clear_error(text):
    read_and_assess(text, ".json")


HOSTILE = {
    "billion laughs": (
        alias_bomb(9) + TEXTS[0].replace("conditions: []", "conditions: *l8"),
        "expand to more than",
    ),
    "alias bomb in an unknown key": (
        TEXTS[0] + "\n" + alias_bomb(7).replace("l0:", "x0:"),
        "expand to more than",
    ),
    "recursive alias": (
        TEXTS[0].replace("conditions: []", "conditions: &c [*c]"),
        "refers to the node that contains it",
    ),
    "10,000 nested brackets": (
        TEXTS[0] + "x: " + "[" * 10_000 + "]" * 10_000 + "\n",
        "nested more than 64 levels",
    ),
    "a key given twice": (TEXTS[0] + "patient: {id: OTHER}\n", "'patient' is given twice"),
    "a 5,000-digit dose": (
        TEXTS[0].replace("mg_per_day: 50", "mg_per_day: " + "9" * 5000),
        "more than 4,300 digits",
    ),
    "a dose step in year 9999": (
        TEXTS[0].replace("{from: 2024-05-20", "{from: 9999-12-31"),
        "not a plausible date",
    ),
    "python object tag": ("!!python/object/apply:os.system ['true']\n", "malformed YAML"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_history_file_is_refused_quickly_with_a_named_reason(name):
    text, words = HOSTILE[name]
    started = time.perf_counter()
    result = read_and_assess(text, ".yaml")
    assert isinstance(result, InputError), name
    assert words in str(result)
    assert time.perf_counter() - started < 5


def test_deep_json_nesting_is_refused_not_a_recursion_error():
    result = read_and_assess('{"patient": ' + "[" * 100_000 + "]" * 100_000 + "}", ".json")
    assert isinstance(result, InputError) and "nested more than 64 levels" in str(result)


def test_a_duplicate_json_key_is_refused():
    result = read_and_assess(as_json(DOCS[0])[:-1] + ', "patient": {"id": "X"}}', ".json")
    assert isinstance(result, InputError) and "'patient' is given twice" in str(result)


@settings(max_examples=15)
@given(doc=mutated(DOCS))
def test_the_command_exits_0_or_2_without_a_traceback(doc):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "h.yaml"
        path.write_text(as_yaml(doc), encoding="utf-8")
        r = CliRunner().invoke(app, ["assess", "--today", "2024-06-01", str(path)])
    assert r.exit_code in (0, 2), r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    if r.exit_code == 2:
        assert str(path) in r.stderr


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_the_command_refuses_each_hostile_file_with_exit_2(name, tmp_path):
    path = tmp_path / "h.yaml"
    path.write_text(HOSTILE[name][0], encoding="utf-8")
    r = CliRunner().invoke(app, ["assess", str(path)])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert HOSTILE[name][1] in r.stderr
