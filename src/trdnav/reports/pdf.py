"""HTML documents as PDF (WeasyPrint), without touching the network or the file system.

The summary is self-contained (stylesheet inlined, SVG images inline), so the fetcher refuses every
URL but ``data:``: a stray link in a document cannot make the renderer read a local file or call
out. A refused resource is left out of the PDF, as WeasyPrint does with any resource it cannot get.
"""

from __future__ import annotations

from typing import Any

import weasyprint  # type: ignore[import-untyped]

ALLOWED_SCHEMES = ("data",)


def _fetcher() -> Any:
    """WeasyPrint's own fetcher, limited to ``data:`` URLs."""
    return weasyprint.urls.URLFetcher(allowed_protocols=ALLOWED_SCHEMES, allow_redirects=False)


def render_pdf(html: str) -> bytes:
    """``html`` (a complete, self-contained document) as PDF bytes."""
    pdf = weasyprint.HTML(string=html, base_url=None, url_fetcher=_fetcher()).write_pdf()
    if not isinstance(pdf, bytes):  # pragma: no cover - write_pdf() without a target returns bytes
        raise TypeError("WeasyPrint returned no PDF bytes")
    return pdf
