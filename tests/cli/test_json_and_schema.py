from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml
from typer.testing import CliRunner

from tests.builders import a_history
from trdnav.cli import app

runner = CliRunner()
EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))


def test_assess_json_keeps_the_published_contract(tmp_path):
    p = tmp_path / "h.yaml"
    p.write_text(
        yaml.safe_dump(
            a_history()
            .trial("sertraline", 150, outcome="partial_response")
            .trial("venlafaxine", 150)
            .raw()
        )
    )
    r = runner.invoke(app, ["assess", "--json", str(p)])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["patient_id"] == "T1"
    assert out["trd"]["status"] == "trd"
    assert out["trd"]["failed_adequate_trials"] == 2
    assert out["trd"]["flags"] == ["partial_resistance", "chronic"]  # onset 2022, seen 2024
    t0 = out["trials"][0]
    assert {
        "index",
        "drug",
        "adequate",
        "counts_as_failure",
        "weeks_at_adequate_dose",
        "reasons",
    } <= set(t0)
    assert (t0["index"], t0["drug"], t0["adequate"], t0["counts_as_failure"]) == (
        0,
        "sertraline",
        True,
        True,
    )
    assert isinstance(t0["reasons"], list)
    assert out["staging"]["thase_rush"]["stage"] == 2
    assert isinstance(out["staging"]["thase_rush"]["items"], list)
    assert out["staging"]["mgh_s"]["score"] == 2.0
    assert out["staging"]["maudsley"]["band"] in {"mild", "moderate", "severe"}
    for key in ("thase_rush_1997", "fava_2003"):
        assert key in out["citations"]
        assert len(out["citations"][key]) > 20


def test_trials_follow_input_order_and_skip_other_treatments(tmp_path):
    p = tmp_path / "h.yaml"
    p.write_text(
        yaml.safe_dump(a_history().ect().trial("venlafaxine", 150).trial("sertraline", 150).raw())
    )
    out = json.loads(runner.invoke(app, ["assess", "--json", str(p)]).stdout)
    assert [(t["index"], t["drug"]) for t in out["trials"]] == [
        (1, "venlafaxine"),
        (2, "sertraline"),
    ]


def test_every_cited_key_in_the_output_is_resolved(tmp_path):
    p = tmp_path / "h.yaml"
    p.write_text(yaml.safe_dump(a_history().trial("sertraline", 150).raw()))
    out = json.loads(runner.invoke(app, ["assess", "--json", str(p)]).stdout)
    cited = set()
    for t in out["trials"]:
        cited.update(t["citations"])
    for s in out["staging"].values():
        cited.update(s["citations"])
    cited.update(out["trd"]["citations"])
    assert cited <= set(out["citations"])


def test_schema_is_valid_json_schema_and_accepts_every_example():
    r = runner.invoke(app, ["schema"])
    schema = json.loads(r.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert EXAMPLES, "examples/ is empty"
    for path in EXAMPLES:
        data = json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str))
        jsonschema.validate(data, schema)


def test_schema_rejects_what_the_cli_rejects():
    schema = json.loads(runner.invoke(app, ["schema"]).stdout)
    data = json.loads(json.dumps(a_history().trial("sertraline", 150).raw(), default=str))
    data["treatments"][0]["adherence"] = 1.5
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(data))


def test_drugs_lists_every_drug_of_the_knowledge_base(kb):
    r = runner.invoke(app, ["drugs", "--json"])
    rows = json.loads(r.stdout)
    assert {row["id"] for row in rows} == set(kb.drugs)
