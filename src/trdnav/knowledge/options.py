"""Knowledge models and loader for the options part of the planner (issue 4). Being written."""

from __future__ import annotations

from pathlib import Path

from trdnav.errors import Problem
from trdnav.knowledge.schema import Strict


class OptionsKnowledge(Strict):
    """Everything under knowledge/data/options/."""


def load_options(root: Path, problems: list[Problem]) -> OptionsKnowledge | None:
    """Read and validate knowledge/data/options/ (root is knowledge/data)."""
    return OptionsKnowledge()
