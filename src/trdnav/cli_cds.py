"""``trdnav cds serve``: the CDS Hooks 2.0 service alone (it is also mounted in the clinic app)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from trdnav.errors import InputError


def register(app: typer.Typer) -> None:
    cds_app = typer.Typer(help="The CDS Hooks 2.0 service for EHRs.", no_args_is_help=True)
    app.add_typer(cds_app, name="cds")

    @cds_app.command("serve")
    def cds_serve(
        host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="port to listen on")] = 8010,
        config: Annotated[
            Path | None,
            typer.Option(
                "--config",
                help="settings file (YAML/JSON): trusted issuers, base_url, links "
                "(default: TRDNAV_CDS_CONFIG)",
            ),
        ] = None,
        workers: Annotated[
            int,
            typer.Option(
                help="processes; with more than one they share the spent JWT ids through a "
                "SQLite file (settings replay_store, else one made for this run)"
            ),
        ] = 1,
    ) -> None:
        """Serve /cds-services (discovery, patient-view, order-select, order-sign, feedback)."""
        import uvicorn

        from trdnav.interop.cdshooks.config import (
            ENV_VAR,
            REPLAY_ENV_VAR,
            load_cds_settings,
            settings_from_env,
        )

        try:
            settings = load_cds_settings(config) if config else settings_from_env()
        except InputError as exc:
            for p in exc.problems:
                typer.echo(f"error {p.render()}", err=True)
            raise typer.Exit(2) from None
        if not settings.issuers:
            typer.echo(
                "warning: no trusted issuer configured: every hook call will be refused (401)",
                err=True,
            )
        if workers > 1:
            if config is not None:
                os.environ[ENV_VAR] = str(config.resolve())
            if settings.replay_store is None and not os.environ.get(REPLAY_ENV_VAR):
                # a jti spent on one worker must be refused by the others
                shared = Path(tempfile.mkdtemp(prefix="trdnav-cds-")) / "jti.sqlite"
                os.environ[REPLAY_ENV_VAR] = str(shared)
            uvicorn.run(
                "trdnav.interop.cdshooks.app:app_from_env",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level="warning",
            )
            return
        from trdnav.interop.cdshooks.app import create_cds_app, freeze_long_lived

        app = create_cds_app(settings)
        freeze_long_lived()
        uvicorn.run(app, host=host, port=port, log_level="warning")
