"""The versioned JSON REST API under /api/v1: bearer tokens, problem+json errors, OpenAPI 3.1."""

from __future__ import annotations

from functools import cache

from flask import Flask, Response, request
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, PathConverter, Rule
from werkzeug.wrappers import Response as BaseResponse

from webapp.api import (  # noqa: F401  (declare operations)
    appointments,
    brief,
    callbacks,
    calls,
    meta,
    nurse_changes,
    nurses,
    patients,
    series,
    waitlist,
)
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
    """Anything under /api/v1 no operation matched: OPTIONS, or a problem+json 404 or 405."""
    return _unrouted("/" + rest)


def _unrouted(path: str) -> Response:
    """The answer for a method the path's operations do not take, judged by the API's own map.

    Flask's own OPTIONS and 405 answers list the methods of every rule matching the URL, the
    catch-all's included, so they would advertise methods the path does not have.
    """
    try:
        _api_map().bind("api").match(path, method=request.method)
    except MethodNotAllowed as exc:
        allowed = sorted({*(exc.valid_methods or []), "OPTIONS"})
        if request.method == "OPTIONS":
            return Response(status=204, headers={"Allow": ", ".join(allowed)})
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


def _method_not_allowed(error: MethodNotAllowed) -> BaseResponse:
    """A method no API route takes at all (TRACE, QUERY...): answered like any other 405."""
    prefix = bp.url_prefix or ""
    if request.path == prefix or request.path.startswith(prefix + "/"):
        return _unrouted(request.path[len(prefix) :] or "/")
    return error.get_response()  # the dashboard keeps Flask's own answer


def register(app: Flask) -> None:
    """Mount the API on the app and add the token commands (create-token, list-tokens...)."""
    from webapp.api.cli import COMMANDS

    app.url_map.converters["api_any_path"] = AnyPathConverter
    app.register_blueprint(bp)
    app.register_error_handler(MethodNotAllowed, _method_not_allowed)
    for command in COMMANDS:
        app.cli.add_command(command)
