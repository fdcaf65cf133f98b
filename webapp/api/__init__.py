"""The versioned JSON REST API under /api/v1: bearer tokens, problem+json errors, OpenAPI 3.1."""

from __future__ import annotations

from functools import cache

from flask import Flask, Response, request
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, PathConverter, Rule

from webapp.api import appointments, calls, meta, nurses  # noqa: F401  (declare operations)
from webapp.api.problems import ApiProblem, problem_response
from webapp.api.registry import REGISTRY, bp

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class AnyPathConverter(PathConverter):
    """Like `path`, but also matches newlines (a decoded %0A would otherwise fall through to
    Flask's HTML 404)."""

    regex = "(?s:[^/].*?)"


@cache
def _api_map() -> Map:
    """The API's own routes alone, to tell an unknown path (404) from a wrong method (405)."""
    return Map([Rule(op.rule, endpoint=op.endpoint, methods=[op.method]) for op in REGISTRY])


@bp.route("/", defaults={"rest": ""}, methods=ALL_METHODS, endpoint="unmatched_root")
@bp.route("/<api_any_path:rest>", methods=ALL_METHODS, endpoint="unmatched")
def unmatched(rest: str) -> Response:
    """Anything under /api/v1 no operation matched: a problem+json 404 or 405, never HTML."""
    try:
        _api_map().bind("api").match("/" + rest, method=request.method)
    except MethodNotAllowed as exc:
        allowed = sorted(exc.valid_methods or [])
        return problem_response(
            ApiProblem(
                "method_not_allowed",
                f"{request.method} is not allowed here; use {', '.join(allowed)}.",
                headers={"Allow": ", ".join(allowed)},
                allowed_methods=allowed,
            )
        )
    except NotFound:
        pass
    return problem_response(
        ApiProblem("not_found", f"No API operation at {request.path}; see /api/v1/docs.")
    )


def register(app: Flask) -> None:
    """Mount the API on the app and add the token commands (create-token, list-tokens...)."""
    from webapp.api.cli import COMMANDS

    app.url_map.converters["api_any_path"] = AnyPathConverter
    app.register_blueprint(bp)
    for command in COMMANDS:
        app.cli.add_command(command)
