"""Bearer-token authentication for the API."""

from __future__ import annotations

from datetime import datetime

from flask import request

from core.models import User
from core.services.api_tokens import authenticate
from webapp import db
from webapp.api.problems import ApiProblem

REALM = 'Bearer realm="carematix-api"'


def _unauthenticated(detail: str, error: str | None = None) -> ApiProblem:
    challenge = REALM if error is None else f'{REALM}, error="{error}"'
    return ApiProblem("unauthenticated", detail, headers={"WWW-Authenticate": challenge})


def authenticate_request(now: datetime) -> User:
    """The user behind the request's bearer token, or a 401 problem."""
    header = request.headers.get("Authorization", "")
    if not header:
        raise _unauthenticated(
            "Send an API token in the header 'Authorization: Bearer <token>'. "
            "Create one in the dashboard or with `flask --app wsgi create-token EMAIL`."
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthenticated(
            "Use the Bearer scheme: 'Authorization: Bearer <token>'.", "invalid_request"
        )
    user = authenticate(db.session(), token.strip(), now)
    if user is None:
        raise _unauthenticated(
            "The token is unknown, revoked, or its login is deactivated.", "invalid_token"
        )
    return user
