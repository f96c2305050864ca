from __future__ import annotations

import dataclasses
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from trdnav.cli import app
from trdnav.knowledge.docs import review_markdown
from trdnav.knowledge.load import Knowledge, load_knowledge
from trdnav.knowledge.stats import WEIGHTS, Fact, Weight, knowledge_stats, review_order

DATA = Path(__file__).parents[2] / "src" / "trdnav" / "knowledge" / "data"
# the areas as the report names them (the Knowledge attribute, where these do not rename it)
READABLE = {"conditions_source": "conditions", "classes": "drug classes"}
LOINC_KEYS = {"panel", "total", "items", "verified", "checked_against"}


def _dumped(kb: Knowledge) -> dict[str, Any]:
    """Each public attribute of the knowledge as plain data (model_dump), keyed by area."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(kb):
        if f.name.startswith("_"):
            continue
        value = getattr(kb, f.name)
        area = READABLE.get(f.name, f.name)
        if isinstance(value, BaseModel):
            out[area] = value.model_dump()
        else:
            out[area] = {k: v.model_dump() for k, v in value.items()}
    return out


def _is_empty_loinc(node: dict[str, Any]) -> bool:
    return set(node) == LOINC_KEYS and not (node["panel"] or node["total"] or node["items"])


def _count(node: Any) -> Counter[str]:
    """An independent count over plain data: every mapping with a boolean `verified` (but a LOINC
    block without a code), and every set `rxnorm` / `atc` code with its `<code>_verified` flag."""
    tally: Counter[str] = Counter()
    if isinstance(node, dict):
        if isinstance(node.get("verified"), bool) and not _is_empty_loinc(node):
            tally["total"] += 1
            tally["verified"] += node["verified"]
        for code in ("rxnorm", "atc"):
            if node.get(code) is not None and isinstance(node.get(f"{code}_verified"), bool):
                tally["total"] += 1
                tally["verified"] += node[f"{code}_verified"]
        for child in node.values():
            tally += _count(child)
    elif isinstance(node, list | tuple):
        for child in node:
            tally += _count(child)
    return tally


def test_the_stats_count_the_same_facts_as_an_independent_walk_of_the_loaded_knowledge(kb):
    stats = knowledge_stats(kb)
    for area, data in _dumped(kb).items():
        counted = _count(data)
        if not counted["total"]:
            assert area not in stats.areas
            continue
        assert (stats.areas[area].verified, stats.areas[area].total) == (
            counted["verified"],
            counted["total"],
        ), area
    everything = _count(list(_dumped(kb).values()))
    assert (stats.overall.verified, stats.overall.total) == (
        everything["verified"],
        everything["total"],
    )
    assert len(stats.unverified) == everything["total"] - everything["verified"]


def test_per_area_and_per_weight_totals_sum_to_the_overall_figure(kb):
    stats = knowledge_stats(kb)
    for rows in (stats.areas, stats.weights):
        assert sum(t.total for t in rows.values()) == stats.overall.total
        assert sum(t.verified for t in rows.values()) == stats.overall.verified
    weighty = [stats.weights[Weight.SAFETY_RULE], stats.weights[Weight.DOSE]]
    assert stats.safety_rules_and_doses.total == sum(t.total for t in weighty)
    assert stats.safety_rules_and_doses.verified == sum(t.verified for t in weighty)
    assert len(stats.facts) == stats.overall.total
    assert len({f.path for f in stats.facts}) == len(stats.facts), "a path counted twice"


def test_each_drug_code_is_a_fact_of_its_own_and_an_empty_loinc_block_is_none(kb):
    paths = {f.path: f for f in knowledge_stats(kb).facts}
    for drug in kb.drugs.values():
        for code, flag in (("rxnorm", drug.rxnorm_verified), ("atc", drug.atc_verified)):
            fact = paths.get(f"drugs.{drug.id}.{code}")
            if getattr(drug, code) is None:
                assert fact is None
            else:
                assert fact is not None and fact.weight is Weight.CODE and fact.verified is flag
    for inst in kb.instruments.values():
        coded = bool(inst.loinc.panel or inst.loinc.total or inst.loinc.items)
        assert (f"instruments.{inst.id}.loinc" in paths) is coded, inst.id


def test_every_class_that_carries_verified_has_a_deliberate_weight(kb):
    found: set[type[BaseModel]] = set()

    def walk(obj: Any) -> None:
        if isinstance(obj, BaseModel):
            if "verified" in type(obj).model_fields:
                found.add(type(obj))
            for name in type(obj).model_fields:
                walk(getattr(obj, name))
        elif isinstance(obj, list | tuple):
            for item in obj:
                walk(item)
        elif isinstance(obj, dict):
            for item in obj.values():
                walk(item)

    for f in dataclasses.fields(kb):
        value = getattr(kb, f.name)
        walk(value if isinstance(value, BaseModel) else dict(value))
    unweighted = sorted(c.__name__ for c in found - set(WEIGHTS))
    assert not unweighted, f"give these classes a weight in trdnav.knowledge.stats: {unweighted}"


def _fact(weight: Weight, area: str, path: str) -> Fact:
    return Fact(
        area=area,
        path=path,
        kind="test",
        weight=weight,
        rank=weight.rank,
        label="a fact",
        sources=("key",),
        verified=False,
        checked_against=None,
    )


def test_review_order_puts_safety_rules_before_doses_and_outcome_figures():
    facts = [
        _fact(Weight.OUTCOME_FIGURE, "options", "options.a.outcomes[0]"),
        _fact(Weight.SAFETY_RULE, "safety", "safety.rules[10]"),
        _fact(Weight.DOSE, "drugs", "drugs.sertraline"),
        _fact(Weight.SAFETY_RULE, "safety", "safety.rules[2]"),
        _fact(Weight.SAFETY_RULE, "protocols", "protocols.esketamine_trd.thresholds[0]"),
    ]
    ordered = [f.path for f in sorted(facts, key=review_order)]
    assert ordered == [
        "protocols.esketamine_trd.thresholds[0]",
        "safety.rules[2]",
        "safety.rules[10]",
        "drugs.sertraline",
        "options.a.outcomes[0]",
    ]


def test_the_unverified_facts_come_most_weighty_first(kb):
    stats = knowledge_stats(kb)
    ranks = [f.rank for f in stats.unverified]
    assert ranks == sorted(ranks)
    assert list(stats.unverified) == sorted(stats.unverified, key=review_order)
    assert all(not f.verified for f in stats.unverified)


def test_flipping_one_fact_changes_the_counts_by_exactly_one(tmp_path, monkeypatch):
    monkeypatch.delenv("TRDNAV_PROTOCOLS_DIR", raising=False)
    copy = tmp_path / "data"
    shutil.copytree(DATA, copy)
    before = knowledge_stats(load_knowledge(copy))
    path = copy / "safety" / "washouts.yaml"
    washouts = yaml.safe_load(path.read_text(encoding="utf-8"))
    washouts[0]["verified"] = not washouts[0]["verified"]
    delta = 1 if washouts[0]["verified"] else -1
    path.write_text(yaml.safe_dump(washouts, allow_unicode=True), encoding="utf-8")
    after = knowledge_stats(load_knowledge(copy))

    assert after.overall.total == before.overall.total
    assert after.overall.verified == before.overall.verified + delta
    assert len(after.unverified) == len(before.unverified) - delta
    assert after.safety_rules_and_doses.verified == before.safety_rules_and_doses.verified + delta
    for rows_before, rows_after, changed in (
        (before.areas, after.areas, "safety"),
        (before.weights, after.weights, Weight.SAFETY_RULE.value),
    ):
        for name, tally in rows_after.items():
            shift = delta if name == changed else 0
            assert tally.verified == rows_before[name].verified + shift, name
            assert tally.total == rows_before[name].total, name


def test_the_json_report_has_stable_keys():
    result = CliRunner().invoke(app, ["knowledge", "stats", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {
        "kb_version",
        "overall",
        "safety_rules_and_doses",
        "targets",
        "areas",
        "weights",
        "unverified",
        "verified_without_checked_against",
        "facts",
        "gaps",
    }
    assert set(data["gaps"]) <= set(data["areas"])
    assert set(data["overall"]) == {"verified", "total", "percent"}
    assert set(data["targets"]) == {"overall", "safety_rules_and_doses"}
    assert set(data["targets"]["overall"]) == {"target_percent", "percent", "met"}
    assert data["targets"]["overall"]["target_percent"] == 75
    assert data["targets"]["safety_rules_and_doses"]["target_percent"] == 90
    assert list(data["weights"]) == [w.value for w in Weight]
    assert set(data["facts"][0]) == {
        "area",
        "path",
        "kind",
        "weight",
        "rank",
        "label",
        "sources",
        "verified",
        "checked_against",
    }
    assert len(data["facts"]) == data["overall"]["total"]


@pytest.mark.parametrize("flag", [[], ["--all"]])
def test_the_text_report_shows_each_area_and_the_targets_and_exits_0(kb, flag):
    result = CliRunner().invoke(app, ["knowledge", "stats", *flag], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    stats = knowledge_stats(kb)
    for area in stats.areas:
        assert area in result.stdout
    assert "target ≥ 75 %" in result.stdout
    assert "target ≥ 90 %" in result.stdout
    assert "Safety rules and doses" in result.stdout
    verdicts = [line for line in result.stdout.splitlines() if "target ≥" in line]
    assert len(verdicts) == 2 and all(v.endswith((": met", ": not met")) for v in verdicts)
    if flag and stats.unverified:
        assert stats.unverified[-1].path in result.stdout


@pytest.mark.parametrize(
    ("verified", "total", "met"), [(3, 4, True), (2999, 4000, False), (0, 0, False)]
)
def test_a_target_is_met_on_the_exact_share_not_the_rounded_percent(verified, total, met):
    from trdnav.knowledge.stats import OVERALL_TARGET, Tally, _check

    tally = Tally(verified=verified, total=total, percent=0)
    assert _check(tally, OVERALL_TARGET).met is met  # 2999 of 4000 shows as 75.0 %, is 74.975 %


def test_the_old_knowledge_docs_command_and_the_new_one_write_the_same_files(tmp_path):
    runner = CliRunner()
    old, new = tmp_path / "old", tmp_path / "new"
    assert runner.invoke(app, ["knowledge-docs", "--out", str(old)]).exit_code == 0
    assert runner.invoke(app, ["knowledge", "docs", "--out", str(new)]).exit_code == 0
    names = sorted(p.name for p in old.iterdir())
    assert "review.md" in names and names == sorted(p.name for p in new.iterdir())
    for name in names:
        assert (old / name).read_text() == (new / name).read_text()


def test_the_review_page_lists_every_fact_once_then_a_sign_off_block(kb):
    stats = knowledge_stats(kb)
    page = review_markdown(stats)
    lines = [line for line in page.splitlines() if line.startswith("- [ ] `")]
    assert len(lines) == stats.overall.total
    assert sorted(line.split("`")[1] for line in lines) == sorted(f.path for f in stats.facts)
    assert all(" — verified: " in line and " — checked against: " in line for line in lines)
    unverified = [line for line in lines if "verified: **no**" in line]
    assert lines[: len(unverified)] == unverified, "unverified facts come first"
    assert f"knowledge base {stats.kb_version}" in page.splitlines()[2]
    assert page.index("## Sign-off") > page.index("## Verified facts")
    assert "| reviewer | role and registration | date |" in page


def test_every_area_below_the_overall_target_says_why_not():
    from trdnav.cli_knowledge import verification_gaps
    from trdnav.knowledge.load import default_knowledge
    from trdnav.knowledge.stats import knowledge_stats

    stats = knowledge_stats(default_knowledge())
    gaps = verification_gaps()
    target = stats.targets["overall"].target_percent
    below = [a for a, t in stats.areas.items() if t.percent < target]
    assert below and all(a in gaps and len(gaps[a]) > 20 for a in below), below
