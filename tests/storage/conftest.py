"""The storage suite runs over both engines (fixtures in tests/databases.py)."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
