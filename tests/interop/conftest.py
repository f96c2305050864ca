"""The clinic-app fixtures (``app``, ``client``) for the interop tests that go through the API."""

from tests.web.conftest import app, client

__all__ = ["app", "client"]
