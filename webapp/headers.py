"""Browser security headers on every response, from one place (flask-talisman).

The Content-Security-Policy allows no inline script or style and no framing; pages never
leave patient data in a browser or proxy cache; HSTS is sent whenever the request came over
https (directly, or through a trusted proxy: TRUSTED_PROXY_HOPS).
"""

from __future__ import annotations

from flask import Flask, request
from flask_talisman import Talisman
from werkzeug.wrappers import Response

CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "font-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
ONE_YEAR_SECONDS = 365 * 24 * 3600


def init_app(app: Flask) -> None:
    """Send the security headers on every response of `app`."""
    secure_cookie = bool(app.config.get("SESSION_COOKIE_SECURE", False))
    # One per app: Talisman keeps the app it was given.
    app.extensions["talisman"] = Talisman(
        app,
        # Redirecting to https is the proxy's job; make run serves plain http on loopback.
        force_https=False,
        strict_transport_security=True,
        strict_transport_security_max_age=ONE_YEAR_SECONDS,
        frame_options="DENY",
        content_security_policy=CONTENT_SECURITY_POLICY,
        # Same-origin requests keep their Referer: Flask-WTF checks it on https form posts.
        referrer_policy="same-origin",
        # The cookie settings stay the ones webapp.auth chose from SESSION_COOKIE_SECURE.
        session_cookie_secure=secure_cookie,
        session_cookie_http_only=True,
        x_content_type_options=True,
    )
    app.after_request(_no_store)


def _no_store(response: Response) -> Response:
    """Nothing but the static files may be kept: every page and answer can carry patient data."""
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    return response
