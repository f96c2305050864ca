"""Knowledge models and loader for the workup part of the planner (issue 4). Being written."""

from __future__ import annotations

from pathlib import Path

from trdnav.errors import Problem
from trdnav.knowledge.schema import Strict


class WorkupKnowledge(Strict):
    """Everything under knowledge/data/workup/."""


def load_workup(root: Path, problems: list[Problem]) -> WorkupKnowledge | None:
    """Read and validate knowledge/data/workup/ (root is knowledge/data)."""
    return WorkupKnowledge()
