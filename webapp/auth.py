"""Staff sign-in: server-side sessions behind Flask-Login, CSRF, sign-in throttling
(Flask-Limiter) and the roles decorator."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

import flask
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    has_request_context,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import Row, select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from core.models import Source, User
from core.security import hash_password, verify_password
from core.services import staff_sessions
from core.services.access import Viewer
from core.services.common import Actor, audit
from core.services.staff_sessions import SessionPolicy
from webapp import db

logger = logging.getLogger(__name__)

login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)
bp = Blueprint("auth", __name__)

GENERIC_LOGIN_ERROR = "That email and password do not match an active login."
THROTTLED_LOGIN_ERROR = "Too many sign-in attempts from here. Wait a few minutes and try again."
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Sign-in attempts from one address, right or wrong: enough for a busy shared office.
ATTEMPTS_PER_ADDRESS = "30 per minute; 200 per hour"
# Wrong passwords for one login from one address: each window waits longer than the last.
# Keyed by address too, so a stranger guessing a colleague's password never locks her out.
FAILURES_PER_LOGIN = "5 per minute; 10 per 15 minutes; 20 per hour"
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

    def __init__(self, row: Row[Any], token: str) -> None:
        self.id = row.id
        self.email = row.email
        self.role = row.role
        self.nurse_id = row.nurse_id
        self.is_active = row.active
        # The linked nurse's zone, so pages need no second query for the viewer's zone.
        self.nurse_zone = row.time_zone
        self.session_id: int = row.session_id
        self._token = token

    def get_id(self) -> str:
        """What the signed cookie carries: the server-side session's token."""
        return self._token

    @property
    def viewer(self) -> Viewer:
        """This login as the access rules see it."""
        return Viewer(user_id=self.id, role=self.role, nurse_id=self.nurse_id)


class HttpsAwareSessionCookies(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, whose cookie is also marked Secure on every request that
    came over https, whatever SESSION_COOKIE_SECURE says (it only sets the floor)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        """Secure when configured so, or when this request is https."""
        configured = super().get_cookie_secure(app)
        return configured or (has_request_context() and request.is_secure)


def session_policy() -> SessionPolicy:
    """The idle timeout and lifetime from the settings."""
    settings = current_app.config["SETTINGS"]
    return SessionPolicy(
        idle_timeout=timedelta(minutes=settings.session_idle_minutes),
        max_lifetime=timedelta(hours=settings.session_max_hours),
    )


@login_manager.user_loader
def _load_user(token: str) -> LoginUser | None:
    if not token or len(token) > staff_sessions.MAX_TOKEN_LENGTH:
        return None
    # On the request's connection: one statement, its columns read by name.
    row = (
        db.session.connection()
        .execute(
            staff_sessions.SESSION_WITH_USER,
            {"token_hash": staff_sessions.hash_session_token(token)},
        )
        .first()
    )
    if row is None or not row.active:
        return None
    now = now_utc()
    ended = staff_sessions.expiry(row.created_at, row.last_seen_at, now, session_policy())
    if ended is not None:
        g.session_change = (row.session_id, ended)
        return None
    if staff_sessions.needs_touch(row.last_seen_at, now):
        g.session_change = (row.session_id, None)
    return LoginUser(row, token)


def _record_session_use(response: Response) -> Response:
    """after_request: note the session's use, or end an expired one, in a short write of its
    own once the view is done (the view's transaction is over by now: reads and their write
    lock are released first, so this never waits on the request itself)."""
    change = g.pop("session_change", None)
    if change is None:
        return response
    session_id, ended = change
    now = now_utc()
    try:
        db.session.rollback()
        if ended is None:
            staff_sessions.touch(db.session(), session_id, now=now)
        else:
            staff_sessions.end_session(db.session(), session_id, now=now, reason=ended)
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        logger.warning("could not record a session's use; it will be tried on a later request")
    return response


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
    settings = app.config["SETTINGS"]
    # In memory per process by default; shared by every process and instance with Redis.
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings.redis_url or "memory://")
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)  # Redis down: fail open, logged
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    limiter.init_app(app)
    app.session_interface = HttpsAwareSessionCookies()
    login_manager.init_app(app)
    app.after_request(_record_session_use)
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


def _attempted_login() -> str:
    """The rate-limit key for wrong passwords: the login tried, from this address."""
    email = (request.form.get("email") or "").strip().lower()[:254]
    return f"{email}|{get_remote_address()}"


def _refused_login(response: Response) -> bool:
    return response.status_code == 401


def _throttled(limit: RequestLimit) -> flask.Response:
    """A sign-in refused for too many attempts: said plainly, audited, nothing else done."""
    _audit_refusal(None, "throttled")
    db.session.commit()
    logger.warning("sign-in throttled for a client")
    page = render_template("auth/login.html", email="", error=THROTTLED_LOGIN_ERROR)
    response = make_response(page, 429)
    response.headers["Retry-After"] = str(max(1, int(limit.reset_at - time.time())))
    return response


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(ATTEMPTS_PER_ADDRESS, methods=["POST"], on_breach=_throttled)
@limiter.limit(
    FAILURES_PER_LOGIN,
    methods=["POST"],
    key_func=_attempted_login,
    deduct_when=_refused_login,
    on_breach=_throttled,
)
def login() -> Response | str | tuple[str, int]:
    """Show the sign-in form; sign in, starting a session kept on the server."""
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
        return _refused(email, None, "unknown_login")
    if not verify_password(user.password_hash, password):
        return _refused(email, user.id, "wrong_password")
    if not user.active:
        return _refused(email, user.id, "inactive")
    user.last_login_at = now
    token = staff_sessions.start_session(db.session(), user.id, now=now)
    db.session.commit()
    signed_in = _load_user(token)  # the same read every later request makes
    assert signed_in is not None, "a session just started must load"
    login_user(signed_in)
    logger.info("user %s signed in", user.id)
    return redirect(_safe_next(request.args.get("next")))


def _refused(email: str, user_id: int | None, reason: str) -> tuple[str, int]:
    _audit_refusal(user_id, reason)
    db.session.commit()
    logger.info("sign-in refused (%s)", reason)
    return render_template("auth/login.html", email=email, error=GENERIC_LOGIN_ERROR), 401


def _audit_refusal(user_id: int | None, reason: str) -> None:
    """Record a refused sign-in: which login (if it exists), why, from where; no password."""
    audit(
        db.session(),
        actor=Actor(source=Source.DASHBOARD, label="sign-in"),
        action="login.refused",
        entity_type="user",
        entity_id=user_id,
        now=now_utc(),
        reason=reason,
        client=(get_remote_address() or "")[:64],
    )


@bp.post("/logout")
def logout() -> Response:
    """Sign out (POST only, so a link on another site cannot sign anyone out): the session
    ends on the server, so a copy of its cookie opens nothing afterwards."""
    if current_user.is_authenticated:
        staff_sessions.end_session(
            db.session(),
            current_user.session_id,
            now=now_utc(),
            reason=staff_sessions.EndReason.SIGNED_OUT,
        )
        db.session.commit()
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
