"""Staff logins (admins only): create, deactivate, reset a password, link a nurse."""

from __future__ import annotations

from flask import request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from core.errors import DomainError, NotFound
from core.models import Nurse, Role, User
from core.operations import NewPassword, NewStaffUser, NurseLink, validate_form
from core.services.users import create_user, link_nurse, set_active, set_password
from webapp import db
from webapp.auth import now_utc, roles_required
from webapp.dashboard.common import (
    actor,
    blueprint,
    errors_of,
    finish,
    paginate,
    render,
)

bp = blueprint("staff", __name__, url_prefix="/staff")


def _user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id}.")
    return user


def _nurses() -> list[Nurse]:
    return list(db.session.scalars(select(Nurse).order_by(Nurse.last_name, Nurse.id)))


def _page(errors: dict[str, str], status: int = 200) -> Response:
    stmt = select(User).order_by(User.email)
    return render(
        "staff/page.html",
        "staff/_create_form.html" if request.method == "POST" else "staff/_table.html",
        status=status,
        page=paginate(stmt),
        nurses=_nurses(),
        roles=list(Role),
        errors=errors,
        form=request.form if request.method == "POST" else None,
    )


@bp.get("/")
@roles_required(Role.ADMIN)
def index() -> Response:
    """Every staff login."""
    return _page({})


@bp.post("/")
@roles_required(Role.ADMIN)
def create() -> Response:
    """Add a login."""
    # The password is taken as typed: spaces at either end are part of it.
    login, errors = validate_form(NewStaffUser, request.form, password=request.form.get("password"))
    if login is None:
        return _page(errors, 422)
    try:
        create_user(db.session(), **login.model_dump(), actor=actor(), now=now_utc())
    except DomainError as exc:
        db.session.rollback()
        return _page(errors_of(exc), 422)
    db.session.commit()
    return finish(url_for("staff.index"), "Login created.")


def _row(user: User, errors: dict[str, str] | None = None, status: int = 200) -> Response:
    return render(
        "staff/_row.html",
        "staff/_row.html",
        status=status,
        user=user,
        nurses=_nurses(),
        row_errors=errors or {},
    )


@bp.post("/<int:user_id>/active")
@roles_required(Role.ADMIN)
def toggle_active(user_id: int) -> Response:
    """Deactivate or reactivate a login; answers with its row."""
    user = _user(user_id)
    try:
        set_active(db.session(), user.id, not user.active, actor=actor(), now=now_utc())
    except DomainError as exc:
        db.session.rollback()
        return _row(user, errors_of(exc), 422)
    db.session.commit()
    return _row(user)


@bp.post("/<int:user_id>/password")
@roles_required(Role.ADMIN)
def reset_password(user_id: int) -> Response:
    """Set a new password (signs out the login's sessions and clears any lockout)."""
    user = _user(user_id)
    new, errors = validate_form(NewPassword, {}, password=request.form.get("password", ""))
    if new is None:
        return _row(user, errors, 422)
    try:
        set_password(db.session(), user.id, new.password, actor=actor(), now=now_utc())
    except DomainError as exc:
        db.session.rollback()
        return _row(user, errors_of(exc), 422)
    db.session.commit()
    return _row(user, {"_ok": "Password reset."})


@bp.post("/<int:user_id>/nurse")
@roles_required(Role.ADMIN)
def link(user_id: int) -> Response:
    """Link the login to a nurse (or unlink a non-nurse login)."""
    user = _user(user_id)
    linked, errors = validate_form(NurseLink, request.form)
    if linked is None:
        return _row(user, errors, 422)
    try:
        link_nurse(db.session(), user.id, linked.nurse_id, actor=actor(), now=now_utc())
    except DomainError as exc:
        db.session.rollback()
        return _row(user, errors_of(exc), 422)
    db.session.commit()
    return _row(user, {"_ok": "Nurse link saved."})
