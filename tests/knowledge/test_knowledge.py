from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from trdnav.errors import KnowledgeError
from trdnav.knowledge.load import load_knowledge
from trdnav.knowledge.schema import Role

ROOT = Path(__file__).parents[2]
DATA = ROOT / "src" / "trdnav" / "knowledge" / "data"
REFERENCE_ANTIDEPRESSANTS = [
    "fluoxetine",
    "sertraline",
    "paroxetine",
    "citalopram",
    "escitalopram",
    "fluvoxamine",
    "venlafaxine",
    "desvenlafaxine",
    "duloxetine",
    "levomilnacipran",
    "milnacipran",
    "bupropion",
    "mirtazapine",
    "trazodone",
    "vortioxetine",
    "vilazodone",
    "agomelatine",
    "nefazodone",
    "amitriptyline",
    "nortriptyline",
    "imipramine",
    "desipramine",
    "clomipramine",
    "doxepin",
    "protriptyline",
    "phenelzine",
    "tranylcypromine",
    "isocarboxazid",
    "selegiline_transdermal",
    "esketamine",
]
REFERENCE_AUGMENTERS = [
    "lithium",
    "liothyronine",
    "aripiprazole",
    "brexpiprazole",
    "cariprazine",
    "quetiapine",
    "olanzapine",
    "lamotrigine",
    "bupropion",
    "mirtazapine",
    "buspirone",
    "pramipexole",
    "modafinil",
]
REFERENCE_BRANDS = [
    "Prozac",
    "Zoloft",
    "Paxil",
    "Celexa",
    "Lexapro",
    "Luvox",
    "Effexor",
    "Pristiq",
    "Cymbalta",
    "Fetzima",
    "Wellbutrin XL",
    "Remeron",
    "Desyrel",
    "Trintellix",
    "Viibryd",
    "Valdoxan",
    "Elavil",
    "Pamelor",
    "Tofranil",
    "Norpramin",
    "Anafranil",
    "Sinequan",
    "Vivactil",
    "Nardil",
    "Parnate",
    "Marplan",
    "Emsam",
    "Spravato",
    "Abilify",
    "Rexulti",
    "Vraylar",
    "Seroquel XR",
    "Lamictal",
    "Lithobid",
    "Cytomel",
    "Buspar",
]


def test_every_reference_antidepressant_has_a_dose_and_a_citation(kb):
    for drug_id in REFERENCE_ANTIDEPRESSANTS:
        drug = kb.drugs[drug_id]
        assert Role.ANTIDEPRESSANT in drug.roles
        assert drug.antidepressant_dose is not None
        assert drug.source
        assert all(k in kb.bibliography for k in drug.source)


def test_every_reference_augmentation_agent_has_an_adequate_dose_or_level(kb):
    for drug_id in REFERENCE_AUGMENTERS:
        drug = kb.drugs[drug_id]
        assert Role.AUGMENTATION in drug.roles, drug_id
        aug = drug.augmentation_dose
        assert aug is not None and (aug.min_mg_per_day or aug.serum_level), drug_id


def test_no_drug_is_without_a_dose_and_a_resolvable_citation(kb):
    for drug in kb.drugs.values():
        assert drug.antidepressant_dose or drug.augmentation_dose, drug.id
        assert drug.source and set(drug.source) <= set(kb.bibliography), drug.id


def test_brand_names_and_common_misspellings_resolve(kb):
    for brand in REFERENCE_BRANDS:
        assert kb.resolve_drug(brand) is not None, brand
    assert kb.resolve_drug("ZOLOFT").id == "sertraline"
    assert kb.resolve_drug("wellbutrin sr").id == "bupropion"
    assert kb.resolve_drug("venlafaxine XR").id == "venlafaxine"
    assert kb.resolve_drug("escitalopran").id == "escitalopram"
    assert kb.resolve_drug("nonsense") is None


def test_every_bibliography_entry_has_a_full_citation(kb):
    assert all(len(e.citation) >= 10 for e in kb.bibliography.values())


def test_a_typo_in_a_knowledge_file_names_the_file_and_field(tmp_path):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(DATA, copy)
    f = copy / "drugs" / "sertraline.yaml"
    data = yaml.safe_load(f.read_text())
    data["min_dose"] = 5
    f.write_text(yaml.safe_dump(data))
    with pytest.raises(KnowledgeError) as exc:
        load_knowledge(copy)
    assert "sertraline.yaml" in str(exc.value) and "min_dose" in str(exc.value)


def test_an_unresolved_citation_key_is_a_knowledge_error(tmp_path):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(DATA, copy)
    f = copy / "drugs" / "sertraline.yaml"
    data = yaml.safe_load(f.read_text())
    data["source"] = ["no_such_key"]
    f.write_text(yaml.safe_dump(data))
    with pytest.raises(KnowledgeError, match="no_such_key"):
        load_knowledge(copy)


def test_the_core_never_imports_io_web_or_clocks():
    banned = {
        "trdnav.store",
        "trdnav.web",
        "trdnav.interop",
        "trdnav.population",
        "trdnav.cli",
        "trdnav.history_files",
        "sqlalchemy",
        "fastapi",
        "typer",
        "rich",
    }
    for path in (ROOT / "src" / "trdnav" / "core").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                names = []
            for name in names:
                assert not any(name == b or name.startswith(b + ".") for b in banned), (path, name)
        src = path.read_text()
        for clock in ("date.today(", "datetime.now(", "time.time("):
            assert clock not in src, (path, clock)
