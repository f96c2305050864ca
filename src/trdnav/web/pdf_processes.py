"""PDFs for the running server, rendered in child processes that are replaced now and then.

WeasyPrint's native libraries (Pango, fontconfig, HarfBuzz) keep memory the Python heap never
sees: a server process grew by about 0.85 MB per PDF, without end (``bench/bench_soak.py``:
workers 187 → 470 MB in 10 minutes; ``tracemalloc`` flat). Rendering in a child process that is
replaced after :data:`DOCUMENTS_PER_PROCESS` documents keeps the server flat; it also keeps the
second of CPU a PDF costs off the server's own interpreter, so pages go on answering meanwhile.

The children are started with ``spawn`` (never ``fork`` from a threaded server) on the first PDF;
a child that dies (killed, out of memory) is replaced once and the document rendered again. The
command line renders in process (:func:`trdnav.reports.pdf.render_pdf`): it exits anyway.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from trdnav.reports.pdf import render_pdf

DOCUMENTS_PER_PROCESS = 40
PROCESSES = 2  # PDFs at once per server process; more wait (about a second each)

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def _executor(fresh: bool = False) -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if fresh and _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=False)
            _pool = None
        if _pool is None:
            _pool = ProcessPoolExecutor(
                max_workers=PROCESSES,
                mp_context=multiprocessing.get_context("spawn"),
                max_tasks_per_child=DOCUMENTS_PER_PROCESS,
            )
        return _pool


def render_pdf_in_child(html: str) -> bytes:
    """:func:`~trdnav.reports.pdf.render_pdf` of ``html`` in a child process."""
    try:
        return _executor().submit(render_pdf, html).result()
    except BrokenProcessPool:
        return _executor(fresh=True).submit(render_pdf, html).result()


def shutdown() -> None:
    """Stop the children (the app's shutdown; tests)."""
    global _pool
    with _lock:
        if _pool is not None:
            _pool.shutdown(wait=True)
            _pool = None
