"""Knowledge models and loader for the safety part of the planner (issue 4). Being written."""

from __future__ import annotations

from pathlib import Path

from trdnav.errors import Problem
from trdnav.knowledge.schema import Strict


class SafetyKnowledge(Strict):
    """Everything under knowledge/data/safety/."""


def load_safety(root: Path, problems: list[Problem]) -> SafetyKnowledge | None:
    """Read and validate knowledge/data/safety/ (root is knowledge/data)."""
    return SafetyKnowledge()
