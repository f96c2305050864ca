"""`trdnav serve`, `trdnav user create|token`, `trdnav demo`: the clinic app from the CLI."""

from __future__ import annotations

import getpass
import logging
import os
import secrets
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from sqlalchemy import select

from trdnav.storage import models as m
from trdnav.storage.engine import make_engine, make_sessionmaker
from trdnav.storage.migrations import upgrade
from trdnav.storage.repository import record_audit
from trdnav.storage.settings import DEFAULT_DATABASE_URL, ENV_VAR, normalise_url

DatabaseUrl = Annotated[
    str,
    typer.Option("--database-url", envvar=ENV_VAR, help="SQLAlchemy URL of the database"),
]
ROLE_NAMES = ("admin", "clinician", "read_only")
MIN_PASSWORD = 12


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error {message}", err=True)
    return typer.Exit(2)


def create_user(url: str, username: str, role: str, password: str) -> int:
    """Create (or reset the password and role of) a user; returns its id."""
    from trdnav.web.security import hash_password

    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            user = session.scalar(select(m.User).where(m.User.username == username))
            if user is None:
                user = m.User(username=username, role=role, password_hash=hash_password(password))
                session.add(user)
                action = "user_create"
            else:
                user.role, user.password_hash, user.active = role, hash_password(password), True
                action = "user_reset"
            session.flush()
            record_audit(
                session,
                "cli:" + (os.environ.get("USER") or "unknown"),
                action,
                "user",
                str(user.id),
            )
            session.commit()
            return user.id
    finally:
        engine.dispose()


def _upgrade_or_exit(url: str) -> None:
    """Migrate the database before serving; a database that cannot be reached is named in one
    line (exit 2) and the server does not start (a service manager retries it)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    try:
        upgrade(url)
    except SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        where = make_url(url).render_as_string(hide_password=True)
        reason = cause[0] if cause else type(exc).__name__
        raise _fail(f"--database-url: cannot open the database {where}: {reason}") from None


def register(app: typer.Typer) -> None:
    user_app = typer.Typer(help="Users of the clinic application.", no_args_is_help=True)
    app.add_typer(user_app, name="user")

    @user_app.command("create")
    def user_create(
        username: Annotated[str, typer.Argument(help="the sign-in name")],
        role: Annotated[str, typer.Option(help="admin, clinician or read_only")] = "clinician",
        password: Annotated[
            str | None,
            typer.Option(
                help="the password (default: asked for, or TRDNAV_PASSWORD)",
                envvar="TRDNAV_PASSWORD",
            ),
        ] = None,
        database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    ) -> None:
        """Create a user (or reset an existing user's password and role)."""
        if role not in ROLE_NAMES:
            raise _fail(f"--role: expected one of {', '.join(ROLE_NAMES)}, got {role!r}")
        if not username.strip() or len(username) > 120:
            raise _fail("username: expected 1 to 120 characters")
        if password is None:
            if not sys.stdin.isatty():
                raise _fail("--password: required when there is no terminal to ask on")
            password = getpass.getpass("Password: ")
        if len(password) < MIN_PASSWORD:
            raise _fail(f"--password: expected at least {MIN_PASSWORD} characters")
        url = normalise_url(database_url)
        upgrade(url)
        uid = create_user(url, username.strip(), role, password)
        typer.echo(f"user {username} ({role}) is ready (id {uid})")

    @user_app.command("reset-totp")
    def user_reset_totp(
        username: Annotated[str, typer.Argument(help="the user who lost their second factor")],
        database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    ) -> None:
        """Remove a user's second factor and recovery codes, and end their sessions.

        For the only admin locked out by a lost phone: they sign in with their password and
        set up a new second factor before anything else (when admins must have one).
        """
        from trdnav.web.sessions import end_user_sessions
        from trdnav.web.totp import remove_totp

        engine = make_engine(normalise_url(database_url))
        try:
            with make_sessionmaker(engine)() as session:
                user = session.scalar(select(m.User).where(m.User.username == username))
                if user is None:
                    raise _fail(f"username: no user {username!r}")
                who = "cli:" + (os.environ.get("USER") or "unknown")
                remove_totp(session, user.id)
                record_audit(session, who, "totp_reset_by_admin", "user", str(user.id))
                ended = end_user_sessions(session, who, user.id)
                session.commit()
        finally:
            engine.dispose()
        typer.echo(
            f"user {username}: second factor removed, {ended} session(s) ended; "
            "they set up a new one at their next sign-in"
        )

    @user_app.command("token")
    def user_token(
        username: Annotated[str, typer.Argument(help="the user the token acts as")],
        label: Annotated[str, typer.Option(help="what the token is for")] = "api",
        database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    ) -> None:
        """Create a bearer token for the JSON API (printed once; only its hash is stored)."""
        from trdnav.web.security import token_digest

        engine = make_engine(normalise_url(database_url))
        try:
            with make_sessionmaker(engine)() as session:
                user = session.scalar(select(m.User).where(m.User.username == username))
                if user is None:
                    raise _fail(f"username: no user {username!r}")
                token = "trd_" + secrets.token_urlsafe(32)
                session.add(
                    m.ApiToken(
                        user_id=user.id,
                        token_sha256=token_digest(token),
                        label=label[:120],
                        created_at=datetime.now(UTC),
                        revoked=False,
                    )
                )
                record_audit(session, "cli", "token_create", "user", str(user.id))
                session.commit()
        finally:
            engine.dispose()
        typer.echo(token)

    @app.command("demo")
    def demo_command(
        database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
        today: Annotated[
            str | None, typer.Option(help="the demo's today (YYYY-MM-DD); default the calendar")
        ] = None,
        password: Annotated[
            str, typer.Option(help="password of the demo users", envvar="TRDNAV_DEMO_PASSWORD")
        ] = "demo-clinician-2026",  # noqa: S107 - the demo's published sign-in
    ) -> None:
        """Load synthetic demo patients and demo users (admin, clinician, reader)."""
        from trdnav.demo import load_demo

        try:
            as_of = date.fromisoformat(today) if today else date.today()
        except ValueError:
            raise _fail(f"--today: expected YYYY-MM-DD, got {today!r}") from None
        url = normalise_url(database_url)
        upgrade(url)
        for name, role in (("admin", "admin"), ("clinician", "clinician"), ("reader", "read_only")):
            create_user(url, name, role, password)
        count = load_demo(url, as_of)
        typer.echo(f"loaded {count} demo patients")
        typer.echo(f"demo sign-in: clinician / {password}  (also admin, reader)")

    @app.command("serve")
    def serve_command(
        host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
        database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
        dev: Annotated[
            bool, typer.Option("--dev", help="development mode: allows the built-in secret key")
        ] = False,
        today: Annotated[
            str | None, typer.Option(help="a fixed today (YYYY-MM-DD), for demos and tests")
        ] = None,
        workers: Annotated[
            int, typer.Option(min=1, max=64, help="worker processes (about one per core)")
        ] = 1,
        forwarded_allow_ips: Annotated[
            str | None,
            typer.Option(
                help="addresses of a trusted TLS reverse proxy (e.g. 127.0.0.1): its "
                "X-Forwarded-For/-Proto headers then give the client address (audit, "
                "throttling) and https (Secure cookies, HSTS)"
            ),
        ] = None,
    ) -> None:
        """Serve the clinic web app and JSON API (uvicorn)."""
        import uvicorn

        from trdnav.interop.cdshooks.config import REPLAY_ENV_VAR
        from trdnav.web.app import create_app
        from trdnav.web.settings import WebSettings

        overrides: dict[str, object] = {"database_url": normalise_url(database_url)}
        if dev:
            overrides["dev_mode"] = True
        if today:
            overrides["today"] = today
        try:
            settings = WebSettings.from_env(**overrides)
        except ValidationError as exc:
            for e in exc.errors():
                where = ".".join(str(x) for x in e["loc"]) or "settings"
                typer.echo(f"error {where}: {e['msg']}", err=True)
            raise typer.Exit(2) from None
        from trdnav.web.course_reports import calendar

        try:
            calendar()  # the clinic calendar's settings, checked before serving
        except ValueError as exc:
            typer.echo(f"error {exc}", err=True)
            raise typer.Exit(2) from None
        _upgrade_or_exit(settings.database_url)
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
        typer.echo(f"TRD Navigator on http://{host}:{port}  (not a medical device)")
        proxy = {
            "proxy_headers": forwarded_allow_ips is not None,
            "forwarded_allow_ips": forwarded_allow_ips,
        }
        common: dict[str, Any] = {
            "host": host,
            "port": port,
            "access_log": False,  # uvicorn's access log prints paths with patient ids: ours not
            "log_level": "warning",
            **proxy,
        }
        if workers == 1:
            uvicorn.run(create_app(settings), **common)
            return
        # each worker process builds its own app from the environment (same settings)
        os.environ["TRDNAV_DATABASE_URL"] = settings.database_url
        if settings.dev_mode:
            os.environ["TRDNAV_DEV"] = "1"
        if settings.today is not None:
            os.environ["TRDNAV_TODAY"] = settings.today.isoformat()
        if not os.environ.get(REPLAY_ENV_VAR):
            # the mounted CDS Hooks service: a JWT spent on one worker is refused by the others
            shared = Path(tempfile.mkdtemp(prefix="trdnav-cds-")) / "jti.sqlite"
            os.environ[REPLAY_ENV_VAR] = str(shared)
        uvicorn.run("trdnav.web.app:create_app", factory=True, workers=workers, **common)
