"""The server renders PDFs in child processes: replaced after a number of documents (their
native memory goes with them), and replaced when one dies, without losing the document."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import psutil
import pytest

from trdnav.web import pdf_processes

HTML = "<!doctype html><html><head><title>t</title></head><body><p>Hello PDF</p></body></html>"


def _children() -> set[int]:
    """The spawned workers (not multiprocessing's resource tracker)."""
    found = set()
    for c in psutil.Process().children(recursive=True):
        try:
            if c.is_running() and "spawn_main" in " ".join(c.cmdline()):
                found.add(c.pid)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.fixture
def fresh_pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    pdf_processes.shutdown()
    monkeypatch.setattr(pdf_processes, "DOCUMENTS_PER_PROCESS", 2)
    monkeypatch.setattr(pdf_processes, "PROCESSES", 1)
    yield
    pdf_processes.shutdown()


def test_pdfs_come_from_a_child_process_that_is_replaced_after_its_quota(fresh_pool: None) -> None:
    before = _children()
    first = pdf_processes.render_pdf_in_child(HTML)
    assert first.startswith(b"%PDF-")
    child = _children() - before
    assert len(child) == 1 and os.getpid() not in child  # rendered elsewhere
    pdf_processes.render_pdf_in_child(HTML)  # the child's second and last document
    third = pdf_processes.render_pdf_in_child(HTML)
    assert third.startswith(b"%PDF-")
    assert not (child & _children()), "the child outlived its quota of documents"


def test_a_child_that_dies_is_replaced_and_the_document_still_comes(fresh_pool: None) -> None:
    before = _children()
    assert pdf_processes.render_pdf_in_child(HTML).startswith(b"%PDF-")
    (child,) = _children() - before
    os.kill(child, signal.SIGKILL)
    psutil.Process(child).wait(timeout=10)
    assert pdf_processes.render_pdf_in_child(HTML).startswith(b"%PDF-")
