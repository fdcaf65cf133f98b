"""Operator commands: `flask --app wsgi seed-demo | create-user | set-password`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.errors import DomainError
from core.models import Role, User
from core.seed import seed_demo
from core.services.common import Actor, normalise_email
from core.services.users import create_user, set_password
from webapp import db


def register(app: Flask) -> None:
    """Attach the operator commands to the app's `flask` CLI."""
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(create_user_command)
    app.cli.add_command(set_password_command)


def _password_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--password`, asked for hidden and twice when not given (keeps it out of shell history)."""
    return click.option(
        "--password", prompt=True, hide_input=True, confirmation_prompt=True, help=help_text
    )


@click.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Load the demo team, patients and logins (does nothing if they are already there)."""
    given_password = current_app.config.get("DEMO_PASSWORD") or None
    try:
        result = seed_demo(db.session(), now=datetime.now(UTC), password=given_password)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        hint = " (check DEMO_PASSWORD)" if exc.field == "password" else ""
        raise click.ClickException(exc.message + hint) from exc
    except Exception:
        db.session.rollback()
        raise

    if not result.created:
        click.echo("demo data already present")
        return
    click.echo("Demo data created. Logins:")
    for email, role in result.logins:
        click.echo(f"  {email:<42} {role}")
    if given_password:
        click.echo("Password for every demo login: the value of DEMO_PASSWORD")
    else:
        # Printed once: only its hash is stored.
        click.echo(f"Password for every demo login (shown once): {result.password}")


@click.command("create-user")
@click.argument("email")
@click.option(
    "--role",
    required=True,
    type=click.Choice([role.value for role in Role]),
    help="What the login may do.",
)
@click.option("--nurse-id", type=int, default=None, help="The nurse record a nurse login is.")
@_password_option("Asked for (hidden, twice) when not given.")
@with_appcontext
def create_user_command(email: str, role: str, nurse_id: int | None, password: str) -> None:
    """Create a dashboard login."""
    try:
        user = create_user(
            db.session(),
            email=email,
            password=password,
            role=role,
            nurse_id=nurse_id,
            actor=Actor.cli(),
            now=datetime.now(UTC),
        )
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from exc
    except IntegrityError as exc:
        # A concurrent create won the race past the service's own duplicate check.
        db.session.rollback()
        raise click.ClickException(
            "A login with that email already exists (or that nurse already has a login)."
        ) from exc
    click.echo(f"Created {user.role} login {user.email} (id {user.id}).")


@click.command("set-password")
@click.argument("email")
@_password_option("Asked for (hidden, twice) when not given.")
@with_appcontext
def set_password_command(email: str, password: str) -> None:
    """Reset a login's password (and clear a lockout)."""
    try:
        address = normalise_email(email, required=True)
        user_id = db.session.scalar(select(User.id).where(User.email == address))
        if user_id is None:
            raise click.ClickException(f"No login with the email {address}.")
        set_password(db.session(), user_id, password, actor=Actor.cli(), now=datetime.now(UTC))
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from exc
    click.echo(f"Password changed for {address}.")
