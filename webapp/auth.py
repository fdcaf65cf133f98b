"""Staff sign-in: Flask-Login sessions, CSRF, login throttling and the roles decorator."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import Row, bindparam, select
from werkzeug.wrappers import Response

from core.models import Nurse, User
from core.security import hash_password, verify_password
from core.services.access import Viewer
from webapp import db

logger = logging.getLogger(__name__)

login_manager = LoginManager()
csrf = CSRFProtect()
bp = Blueprint("auth", __name__)

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
GENERIC_LOGIN_ERROR = "That email and password do not match an active login."
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Verified against for unknown emails, so a miss costs as long as a wrong password.
_DUMMY_HASH = hash_password("not-a-real-password")

F = TypeVar("F", bound=Callable[..., Any])


def now_utc() -> datetime:
    """The current instant (one place, so tests and views agree)."""
    return datetime.now(UTC)


class LoginUser:
    """What Flask-Login keeps for a signed-in staff member (ids and role; no PHI)."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, user: User | Row[*tuple[Any, ...]], nurse_zone: str | None = None) -> None:
        self.id = user.id
        self.email = user.email
        self.role = user.role
        self.nurse_id = user.nurse_id
        self.is_active = user.active
        # The linked nurse's zone, so pages need no second query for the viewer's zone.
        self.nurse_zone = nurse_zone
        self._stamp = _session_stamp(user.password_hash)

    def get_id(self) -> str:
        """The session id: user id plus a stamp that changes when the password does."""
        return f"{self.id}:{self._stamp}"

    @property
    def viewer(self) -> Viewer:
        """This login as the access rules see it."""
        return Viewer(user_id=self.id, role=self.role, nurse_id=self.nurse_id)


def _session_stamp(password_hash: str) -> str:
    """Resetting a password signs out every session of that login."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


# Every signed-in request runs this: columns only, no ORM object (bench/dashboard.py).
_SESSION_USER = (
    select(
        User.id,
        User.email,
        User.role,
        User.nurse_id,
        User.active,
        User.password_hash,
        Nurse.time_zone,
    )
    .outerjoin(Nurse, Nurse.id == User.nurse_id)
    .where(User.id == bindparam("user_id"))
)


@login_manager.user_loader
def _load_user(session_id: str) -> LoginUser | None:
    user_id, _, stamp = session_id.partition(":")
    if not user_id.isdigit():
        return None
    # On the session's connection: the ORM layer adds ~50 us here and nothing is pending yet.
    row = db.session.connection().execute(_SESSION_USER, {"user_id": int(user_id)}).first()
    if row is None or not row.active or stamp != _session_stamp(row.password_hash):
        return None
    return LoginUser(row, nurse_zone=row.time_zone)


def init_app(app: Flask) -> None:
    """Bind Flask-Login and CSRF, and harden the session cookie."""
    # CSRF is checked by the dashboard blueprints themselves (see protect_state_changes);
    # the bearer-token API has no cookies to forge and stays out of it.
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    # Cookies travel over HTTPS only, unless the settings say the dashboard is served over
    # plain http (make run on loopback) or the app is in debug or testing.
    if not (app.debug or app.testing):
        secure = app.config["SETTINGS"].session_cookie_secure
        app.config["SESSION_COOKIE_SECURE"] = secure
        app.config["REMEMBER_COOKIE_SECURE"] = secure
    app.config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    csrf.init_app(app)
    app.register_blueprint(bp)

    @app.errorhandler(CSRFError)
    def _csrf_refused(exc: CSRFError) -> tuple[str, int]:
        logger.warning("CSRF check failed on %s", request.path)
        return render_template("errors/error.html", code=400, message=exc.description), 400


def protect_state_changes() -> None:
    """before_request for dashboard blueprints: refuse a state change without a CSRF token."""
    if request.method in STATE_CHANGING:
        csrf.protect()


def roles_required(*roles: str) -> Callable[[F], F]:
    """Only signed-in users with one of `roles` (others: 403; anonymous: to the login page)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def _safe_next(target: str | None) -> str:
    """Only same-site paths, so the login page cannot be used as an open redirect."""
    if not target:
        return url_for("home.index")
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
    ):
        return url_for("home.index")
    return target


bp.before_request(protect_state_changes)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    """Show the sign-in form; sign in, counting failures and locking after too many."""
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    if request.method == "GET":
        return render_template("auth/login.html", email="", error=None)
    email = (request.form.get("email") or "").strip().lower()
    password = request.form.get("password") or ""
    now = now_utc()
    user = db.session.scalar(select(User).where(User.email == email)) if email else None
    if user is None:
        verify_password(_DUMMY_HASH, password or "x")
        return _refused(email)
    if user.locked_until is not None and user.locked_until > now:
        logger.info("login refused for user %s: locked", user.id)
        return _refused(email)
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
            logger.warning("user %s locked after repeated failed logins", user.id)
        db.session.commit()
        return _refused(email)
    if not user.active:
        logger.info("login refused for user %s: inactive", user.id)
        return _refused(email)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    db.session.commit()
    login_user(LoginUser(user, nurse_zone=user.nurse.time_zone if user.nurse else None))
    logger.info("user %s signed in", user.id)
    return redirect(_safe_next(request.args.get("next")))


def _refused(email: str) -> tuple[str, int]:
    return render_template("auth/login.html", email=email, error=GENERIC_LOGIN_ERROR), 401


@bp.post("/logout")
def logout() -> Response:
    """Sign out (POST only, so a link on another site cannot sign anyone out)."""
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
