"""Reading the EHR's FHIR server when the prefetch is missing (httpx2, with a timeout).

A read (``Patient/123``) gives that resource; a search gives the resources of its searchset
Bundle, following ``next`` links. Any failure — timeout, refused connection, non-2xx status, a
body that is not FHIR JSON — is a :class:`CdsError` 412 (``fhir_unavailable``), the status the
specification gives for "unable to retrieve the necessary FHIR data".
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx2

from trdnav.interop.cdshooks.errors import CdsError

MAX_PAGES = 20


class FhirClient:
    def __init__(
        self,
        base_url: str,
        access_token: str | None,
        timeout: float,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "application/fhir+json"}
        if access_token:
            headers["Authorization"] = f"Bearer {access_token}"
        self.base_url = base_url.rstrip("/") + "/"
        self._client = httpx2.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=timeout,
            follow_redirects=False,
            transport=transport,
        )

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._client.close()

    def _get(self, url: str) -> dict[str, Any]:
        try:
            response = self._client.get(url)
        except httpx2.TimeoutException:
            raise CdsError(
                412, "fhir_unavailable", "the EHR's FHIR server did not answer in time"
            ) from None
        except httpx2.HTTPError as exc:
            raise CdsError(
                412, "fhir_unavailable", f"the EHR's FHIR server could not be read ({exc})"
            ) from None
        if response.status_code == 404 and "?" not in url:
            return {}
        if not response.is_success:
            raise CdsError(
                412,
                "fhir_unavailable",
                f"the EHR's FHIR server answered {response.status_code} to {url.split('?')[0]}",
            )
        try:
            data = response.json()
        except ValueError:
            raise CdsError(
                412, "fhir_unavailable", "the FHIR server's answer is not JSON"
            ) from None
        if not isinstance(data, dict):
            raise CdsError(412, "fhir_unavailable", "the FHIR server's answer is not a resource")
        return data

    def read(self, relative: str, max_resources: int) -> list[dict[str, Any]]:
        """The resources of a read or a search (all pages, up to ``max_resources``)."""
        data = self._get(relative)
        if data.get("resourceType") != "Bundle":
            return [data] if isinstance(data.get("resourceType"), str) else []
        out: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            for entry in data.get("entry") or ():
                r = entry.get("resource") if isinstance(entry, dict) else None
                if isinstance(r, dict) and isinstance(r.get("resourceType"), str):
                    out.append(r)
            if len(out) > max_resources:
                break
            nxt = next(
                (
                    link.get("url")
                    for link in data.get("link") or ()
                    if isinstance(link, dict) and link.get("relation") == "next"
                ),
                None,
            )
            if not isinstance(nxt, str) or not nxt.startswith(self.base_url):
                break  # never send the token to another server
            data = self._get(nxt)
        return out
