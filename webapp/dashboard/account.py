"""The signed-in user's own account: REST API tokens (create, list, revoke), for every role."""

from __future__ import annotations

from flask import request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from core.errors import DomainError
from core.models import ApiToken
from core.operations import NewApiToken, validate_form
from core.services.api_tokens import create_token, list_tokens, revoke
from webapp import db
from webapp.auth import now_utc
from webapp.dashboard.common import actor, blueprint, errors_of, finish, is_partial, render

bp = blueprint("account", __name__, url_prefix="/account")


def _tokens(
    errors: dict[str, str] | None = None,
    *,
    created: ApiToken | None = None,
    plaintext: str | None = None,
    status: int = 200,
) -> Response:
    response = render(
        "account/tokens.html",
        "account/_tokens.html",
        status=status,
        tokens=list_tokens(db.session(), current_user.id),
        errors=errors or {},
        form=request.form if errors else None,
        created=created,
        plaintext=plaintext,
    )
    response.headers["Cache-Control"] = "no-store"  # it may carry a new token
    return response


@bp.get("/tokens")
def tokens() -> Response:
    """The user's own API tokens and a form to create one."""
    return _tokens()


@bp.post("/tokens")
def create() -> Response:
    """A new token for the signed-in user; its secret is shown once, in this answer."""
    wanted, errors = validate_form(NewApiToken, request.form)
    if wanted is None:
        return _tokens(errors, status=422)
    try:
        token, plaintext = create_token(
            db.session(), current_user.id, wanted.name, actor=actor(), now=now_utc()
        )
    except DomainError as exc:
        db.session.rollback()
        return _tokens(errors_of(exc), status=422)
    db.session.commit()
    return _tokens(created=token, plaintext=plaintext)


@bp.post("/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int) -> Response:
    """Revoke one of the user's own tokens (another user's is a 404)."""
    token = revoke(db.session(), token_id, actor=actor(), now=now_utc(), owner_id=current_user.id)
    db.session.commit()
    if not is_partial():
        return finish(url_for("account.tokens"), "Token revoked.")
    return render("account/_token_row.html", "account/_token_row.html", token=token)
