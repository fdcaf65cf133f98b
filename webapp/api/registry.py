"""The route registry: each operation is declared once, with the models that validate its
input and shape its output; Flask routing and the OpenAPI document are both built from it."""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, request
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import RequestEntityTooLarge

from core.errors import DomainError
from core.limits import MAX_ID
from core.models import Role, User
from core.services.api_idempotency import fingerprint, keep_answer, kept_answer
from webapp import db
from webapp.api.auth import authenticate_request
from webapp.api.problems import ApiProblem, from_domain, from_validation, problem_response
from webapp.api.schemas import FieldError

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Documented as the header's schema and enforced from it. A blank key cannot identify a
# request, and control characters have no place in an HTTP field value (RFC 9110, 5.5):
# PostgreSQL refuses a NUL in text, so one would otherwise fail the insert (a 500).
_KEY_CHAR = r"[^\x00-\x1f\x7f]"
IDEMPOTENCY_KEY_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 200,
    "pattern": rf"^{_KEY_CHAR}*[^\x00-\x20\x7f]{_KEY_CHAR}*$",
}

# Roles that may change records others rely on; a nurse's token only reads them.
STAFF = frozenset({Role.ADMIN.value, Role.COORDINATOR.value})

bp = Blueprint("api", __name__, url_prefix="/api/v1", template_folder="templates")


@dataclass(frozen=True)
class Context:
    """Who is calling and the request's `now`, handed to every view."""

    user: User | None
    now: datetime

    @property
    def nurse_id(self) -> int | None:
        """The caller's nurse id when the token is a nurse's (their view is restricted)."""
        if self.user is not None and self.user.role == Role.NURSE:
            return self.user.nurse_id or -1  # an unlinked nurse login sees nothing
        return None


@dataclass
class Operation:
    """One method on one path, as Flask routes it and OpenAPI describes it."""

    method: str
    rule: str
    endpoint: str
    summary: str
    tag: str
    description: str = ""
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    raw_response: dict[str, Any] | None = None  # content map for non-JSON-model responses
    auth: bool = True
    roles: frozenset[str] | None = None
    idempotent_header: bool = False
    errors: tuple[int, ...] = ()
    other_responses: dict[int, type[BaseModel]] = field(default_factory=dict)
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: tuple[str, ...] = ()  # refusals (422) of schema-valid input: rules no schema states
    keeps_answers: bool = False  # the answer is stored under the Idempotency-Key and replayed
    alias_of: Operation | None = None  # the operation this path is another name for

    @property
    def takes_idempotency_key(self) -> bool:
        """Whether the Idempotency-Key header is read (by the view, or to replay answers)."""
        return self.idempotent_header or self.keeps_answers


REGISTRY: list[Operation] = []
KEY_USED_ELSEWHERE = "the Idempotency-Key was already used by this login for another request"


def clock() -> datetime:
    """Now, from the app's API_CLOCK (tests freeze it) or the system clock."""
    source: Callable[[], datetime] | None = current_app.config.get("API_CLOCK")
    return source() if source is not None else datetime.now(UTC)


def _parse_body(model: type[BaseModel]) -> BaseModel:
    too_large = ApiProblem(
        "payload_too_large", f"Send at most {MAX_BODY_BYTES // 1024} KiB in a request body."
    )
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise too_large
    try:
        # One byte more than allowed tells a too-large chunked body (no Content-Length) apart.
        raw = request.stream.read(MAX_BODY_BYTES + 1)
    except RequestEntityTooLarge as exc:
        raise too_large from exc
    if len(raw) > MAX_BODY_BYTES:
        raise too_large
    if not raw.strip():
        raw = b"{}"  # an absent body is an empty object: required fields then say what is missing
    elif not request.mimetype or not (
        request.mimetype == "application/json" or request.mimetype.endswith("+json")
    ):
        raise ApiProblem(
            "unsupported_media_type", "Send the body as JSON with Content-Type: application/json."
        )
    try:
        return model.model_validate_json(raw, strict=True)
    except PydanticValidationError as exc:
        raise from_validation(exc, "body") from exc


def _parse_query(model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate(request.args.to_dict(flat=True))
    except PydanticValidationError as exc:
        raise from_validation(exc, "query") from exc


def idempotency_key() -> str | None:
    """The request's Idempotency-Key header, or None; a 422 problem when it is malformed."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    limits = IDEMPOTENCY_KEY_SCHEMA
    if key is not None and not (
        limits["minLength"] <= len(key) <= limits["maxLength"]
        and re.fullmatch(limits["pattern"], key)
    ):
        message = "Send 1 to 200 characters, not all spaces, and no control characters."
        raise ApiProblem(
            "invalid",
            f"The {IDEMPOTENCY_HEADER} header is not valid.",
            errors=[FieldError(field=f"header.{IDEMPOTENCY_HEADER}", message=message)],
        )
    return key


def _replayed(op: Operation, user: User | None, key: str | None, body: Any) -> Response | None:
    """The answer kept under the key for this same request; a key reused elsewhere is 422."""
    if not op.keeps_answers or user is None or key is None:
        return None
    kept = kept_answer(db.session(), user.id, key, _fingerprint(op, body), now=clock())
    if kept is None:
        return None
    if not kept.same_request:
        # The header is valid; what refuses it is a rule (see KEY_USED_ELSEWHERE).
        raise ApiProblem(
            "invalid",
            f"That {IDEMPOTENCY_HEADER} was already used for another request; use a new one.",
        )
    return Response(kept.body, status=kept.status, mimetype="application/json")


def _fingerprint(op: Operation, body: Any) -> str:
    text = body.model_dump_json() if isinstance(body, BaseModel) else ""
    return fingerprint(op.method, request.path, text)


def _keep(op: Operation, ctx: Context, key: str | None, body: Any, answer: Response) -> None:
    """Store a successful answer under the key, in the same transaction as the change."""
    if not op.keeps_answers or ctx.user is None or key is None or answer.status_code >= 300:
        return
    keep_answer(
        db.session(),
        user_id=ctx.user.id,
        key=key,
        request=_fingerprint(op, body),
        status=answer.status_code,
        body=answer.get_data(as_text=True),
        now=ctx.now,
    )


def _json(result: BaseModel | Response | tuple[BaseModel, int], status: int) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, tuple):
        result, status = result
    return Response(result.model_dump_json(), status=status, mimetype="application/json")


def _call(op: Operation, view: Callable[..., Any], path: dict[str, Any]) -> Response:
    try:
        now = clock()
        user = authenticate_request(now) if op.auth else None
        if user is not None:
            db.session.commit()  # keep the token's last use even if the request then fails
        if op.roles is not None and (user is None or user.role not in op.roles):
            raise ApiProblem(
                "forbidden", f"Only {' or '.join(sorted(op.roles))} tokens may do this."
            )
        for name, value in path.items():
            if isinstance(value, int) and not 1 <= value <= MAX_ID:
                raise ApiProblem("not_found", f"No record with {name} {value}.")
        kwargs: dict[str, Any] = dict(path)
        if op.query is not None:
            kwargs["query"] = _parse_query(op.query)
        if op.body is not None:
            kwargs["body"] = _parse_body(op.body)
        key = idempotency_key() if op.takes_idempotency_key else None
        if op.idempotent_header:
            kwargs["idempotency_key"] = key
        replay = _replayed(op, user, key, kwargs.get("body"))
        if replay is not None:
            db.session.rollback()
            return replay
        ctx = Context(user=user, now=now)
        answer = _json(view(ctx, **kwargs), op.status)
        _keep(op, ctx, key, kwargs.get("body"), answer)
        db.session.commit()
        return answer
    except ApiProblem as problem:
        db.session.rollback()
        return problem_response(problem)
    except DomainError as error:
        db.session.rollback()
        return problem_response(from_domain(error))
    except IntegrityError:
        # A concurrent request won a race the services' own checks could not see.
        db.session.rollback()
        return problem_response(
            ApiProblem("conflict", "The change conflicts with another one made at the same time.")
        )
    except Exception as exc:
        db.session.rollback()
        # Class and frames only: exception messages can carry SQL parameters (PHI).
        logger.error(
            "API %s %s failed: %s\n%s",
            op.method,
            op.rule,
            type(exc).__name__,
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        if current_app.config.get("API_RAISE_ERRORS"):
            raise
        return problem_response(ApiProblem("internal_error", "Something failed on our side."))


def _path_params(rule: str) -> dict[str, dict[str, Any]]:
    params: dict[str, dict[str, Any]] = {}
    for part in rule.split("/"):
        if part.startswith("<") and part.endswith(">"):
            converter, _, name = part[1:-1].rpartition(":")
            if converter.startswith("int"):
                params[name] = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
            else:
                params[name] = {"type": "string", "minLength": 1, "maxLength": 64}
    return params


# Use as f"/things/<{ID}:thing_id>". The range is checked in `_call`: a converter that refuses a
# value makes werkzeug give up on the whole path (an HTML 404) instead of trying the catch-all.
ID = "int"


def operation(
    method: str,
    rule: str,
    *,
    summary: str,
    tag: str,
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    raw_response: dict[str, Any] | None = None,
    auth: bool = True,
    roles: set[str] | frozenset[str] | None = None,
    idempotent_header: bool = False,
    errors: tuple[int, ...] = (),
    other_responses: dict[int, type[BaseModel]] | None = None,
    rules: tuple[str, ...] = (),
    keeps_answers: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare an API operation: route it on the blueprint and record it for OpenAPI.

    Integer ids use the `ID` converter, so ids beyond PostgreSQL's integer range are 404s.
    `rules` name what answers 422 to input the schema accepts; the document lists them.
    `keeps_answers` stores a write's answer under its Idempotency-Key, replayed on a retry.
    """

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        op = Operation(
            method=method.upper(),
            rule=rule,
            endpoint=view.__name__,
            summary=summary,
            tag=tag,
            description=(view.__doc__ or "").strip(),
            query=query,
            body=body,
            response=response,
            status=status,
            raw_response=raw_response,
            auth=auth,
            roles=frozenset(roles) if roles else None,
            idempotent_header=idempotent_header,
            errors=errors,
            other_responses=dict(other_responses or {}),
            path_params=_path_params(rule),
            rules=(*rules, KEY_USED_ELSEWHERE) if keeps_answers else rules,
            keeps_answers=keeps_answers,
        )
        _route(op, view)
        return view

    return decorator


_VIEWS: dict[str, Callable[..., Any]] = {}


def _route(op: Operation, view: Callable[..., Any]) -> None:
    """Record the operation and route its path to the view through `_call`."""
    REGISTRY.append(op)
    _VIEWS[op.endpoint] = view

    @functools.wraps(view)
    def wrapped(**path: Any) -> Response:
        return _call(op, view, path)

    # OPTIONS is answered by the catch-all from the API's own map (see webapp.api).
    bp.add_url_rule(
        op.rule,
        endpoint=op.endpoint,
        view_func=wrapped,
        methods=[op.method],
        provide_automatic_options=False,
    )


def alias(method: str, rule: str, *, of: Callable[..., Any], name: str) -> None:
    """Serve the operation `of` (declared with `method`) at another path too, as `name`: same
    view, auth, roles, input and answers; the document says whose alias it is."""
    original = next(
        op for op in REGISTRY if _VIEWS[op.endpoint] is of and op.method == method.upper()
    )
    copy = dataclasses.replace(
        original, rule=rule, endpoint=name, path_params=_path_params(rule), alias_of=original
    )
    _route(copy, of)
