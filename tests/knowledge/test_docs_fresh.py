from __future__ import annotations

import json
from pathlib import Path

from trdnav.cli import history_schema
from trdnav.knowledge.docs import all_documents

DOCS = Path(__file__).parents[2] / "docs"


def test_generated_knowledge_docs_are_up_to_date(kb):
    for name, text in all_documents(kb).items():
        path = DOCS / "knowledge" / name
        assert path.exists() and path.read_text() == text, f"{path} is stale: run make knowledge"


def test_the_published_json_schema_is_up_to_date(kb):
    path = DOCS / "history-schema.json"
    assert json.loads(path.read_text()) == history_schema(kb), "run make knowledge"


def test_the_review_checklist_is_up_to_date(kb):
    from trdnav.knowledge.docs import review_markdown
    from trdnav.knowledge.stats import knowledge_stats

    path = DOCS / "knowledge" / "review.md"
    assert "review.md" in all_documents(kb), "make knowledge must write the review checklist"
    assert path.exists() and path.read_text() == review_markdown(knowledge_stats(kb)), (
        f"{path} is stale: run make knowledge (the facts or their verification changed)"
    )
