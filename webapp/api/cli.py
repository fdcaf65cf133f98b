"""API token commands: `flask --app wsgi create-token EMAIL` (printed once), `list-tokens EMAIL`
and `revoke-token ID`."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from core.errors import DomainError
from core.models import User
from core.services.api_tokens import create_token, list_tokens, revoke
from core.services.common import Actor, normalise_email
from webapp import db


def _user_id(email: str) -> tuple[int, str]:
    address = normalise_email(email, required=True)
    assert address is not None
    user_id = db.session.scalar(select(User.id).where(User.email == address))
    if user_id is None:
        raise click.ClickException(f"No login with the email {address}.")
    return user_id, address


@click.command("create-token")
@click.argument("email")
@click.option("--name", default="", help="A label to recognise the token by, e.g. 'EHR sync'.")
@with_appcontext
def create_token_command(email: str, name: str) -> None:
    """Create an API token for the login with EMAIL and print it (only its hash is kept)."""
    try:
        user_id, address = _user_id(email)
        token, plaintext = create_token(
            db.session(), user_id, name, actor=Actor.cli(), now=datetime.now(UTC)
        )
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from exc
    click.echo(f"Created API token {token.prefix}... (id {token.id}) for {address}.")
    click.echo("Copy it now; it is not shown again:")
    click.echo(plaintext)


@click.command("list-tokens")
@click.argument("email")
@with_appcontext
def list_tokens_command(email: str) -> None:
    """List the API tokens of the login with EMAIL (prefixes only; tokens are never shown)."""
    try:
        user_id, address = _user_id(email)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    tokens = list_tokens(db.session(), user_id)
    db.session.rollback()
    if not tokens:
        click.echo(f"{address} has no API tokens.")
    for token in tokens:
        state = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
        used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
        click.echo(f"{token.id:>6}  {token.prefix}...  {state:<18} last used {used}  {token.name}")


@click.command("revoke-token")
@click.argument("token_id", type=int)
@with_appcontext
def revoke_token_command(token_id: int) -> None:
    """Revoke the API token with TOKEN_ID (see list-tokens); it stops working at once."""
    try:
        token = revoke(db.session(), token_id, actor=Actor.cli(), now=datetime.now(UTC))
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from exc
    click.echo(f"Revoked API token {token.prefix}... (id {token.id}).")


COMMANDS: list[click.Command] = [create_token_command, list_tokens_command, revoke_token_command]
