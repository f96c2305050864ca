"""``trdnav cds serve``: a wrong settings file is refused by field; a real server on loopback
answers discovery and a signed hook call."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import typer
from typer.testing import CliRunner

from tests.interop.test_cdshooks_helpers import (
    ISSUER,
    TODAY,
    bearer,
    hook_request,
    public_jwks,
    sign,
    trd_record,
)
from trdnav.cli_cds import register

RUN = "import typer; from trdnav.cli_cds import register; app = typer.Typer(); register(app); app()"


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps "cds" a sub-command, as in trdnav
        """Nothing."""

    return app


def test_a_wrong_settings_file_is_refused_naming_the_field(tmp_path: Path) -> None:
    config = tmp_path / "cds.yaml"
    config.write_text("issuers:\n  - iss: https://ehr.example.org\nalgorithms: [HS256]\n")
    result = CliRunner().invoke(cli(), ["cds", "serve", "--config", str(config)])
    assert result.exit_code == 2
    assert "issuers.0" in result.output and "give jwks_url or jwks" in result.output
    assert "algorithms" in result.output and "HS256 not allowed" in result.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_the_service_runs_alone_on_loopback(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = tmp_path / "cds.json"
    config.write_text(
        json.dumps(
            {
                "base_url": base,
                "issuers": [{"iss": ISSUER, "jwks": public_jwks()}],
                "today": TODAY.isoformat(),
            }
        )
    )
    command = [sys.executable, "-c", RUN, "cds", "serve", "--port", str(port)]
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [*command, "--config", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log_path.read_text()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the service did not start"
                time.sleep(0.1)
        with httpx2.Client(base_url=base, timeout=30) as client:
            assert client.get("/cds-services").json()["services"][0]["id"] == "trdnav-patient-view"
            url = f"{base}/cds-services/trdnav-patient-view"
            body = hook_request("patient-view", trd_record(item9=1))
            response = client.post(
                "/cds-services/trdnav-patient-view", json=body, headers=bearer(sign(url))
            )
            assert response.status_code == 200, response.text
            assert response.json()["cards"][0]["indicator"] == "critical"
            unsigned = client.post("/cds-services/trdnav-patient-view", json=body)
            assert unsigned.status_code == 401
            assert unsigned.json()["error"]["code"] == "missing_token"
    finally:
        server.terminate()
        server.wait(timeout=10)
