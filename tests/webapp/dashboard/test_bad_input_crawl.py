"""Every dashboard URL and form, sent boundary values: never a 5xx, and a refusal changes nothing.

The crawler finds the routes in `app.url_map` (all but /api/ and static files), the query
parameters on the pages' links and filter forms and in the view modules' code, and the fields
of every form on the pages it visits; then it sends each of them year 1 and year 9999, ids past
PostgreSQL's integer and past 64 bits, a negative id, NUL, a 10,000-character string,
right-to-left text and emoji. It signs in as an admin (who sees every page a coordinator does,
through the same queries) and as a nurse (whose pages and queries are their own), and crawls
signed out for the sign-in form. In-process with Flask's test client: the defects are too.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, true
from werkzeug.exceptions import HTTPException
from werkzeug.routing import MapAdapter, Rule

from core.db import Base
from core.models import (
    ApiToken,
    CallbackRequest,
    Notification,
    NurseAvailabilityOverride,
    PatientNurseAssignment,
    User,
)
from tests.webapp.dashboard.conftest import (
    COORDINATOR_EMAIL,
    Dashboard,
    csrf_token,
    dashboard_app,
    seed_world,
)
from webapp import db

YEAR_1, YEAR_9999 = "0001-01-01", "9999-12-31"
PAST_INT32, PAST_INT64 = str(2**31), str(2**63)
VALUES: dict[str, str] = {
    "year 1": YEAR_1,
    "year 9999": YEAR_9999,
    "year 1 time": "0001-01-01T00:00",
    "year 9999 time": "9999-12-31T23:59",
    "id past 2^31": PAST_INT32,
    "id past 2^63": PAST_INT64,
    "negative id": "-1",
    "superscript digit": "\u00b2",  # str.isdigit() says yes, int() says no
    "NUL": "a\x00b",
    "10,000 characters": "x" * 10_000,
    "right-to-left text": "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",
    "emoji": "\U0001f469\u200d\u2695\ufe0f\U0001fa7a",
}
DATES = {"year 1", "year 9999", "year 1 time", "year 9999 time"}
HUGE_IDS = {"id past 2^31", "id past 2^63"}
NEVER_SENT = {"csrf_token"}
# Signing out ends the crawl's session; it takes no input anyway.
SKIPPED_ENDPOINTS = {"auth.logout", "static"}


@dataclass
class Form:
    """A form as a browser would submit it: its fields' first values and their input types."""

    action: str
    method: str
    values: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    # Fragments its fields fetch as they change (hx-get inside it, sent with the form's values).
    fetches: list[str] = field(default_factory=list)


class PageParser(HTMLParser):
    """The forms and the links (href, hx-get) of a page."""

    def __init__(self, page_url: str) -> None:
        super().__init__()
        self.page_url = page_url
        self.forms: list[Form] = []
        self.links: list[str] = []
        self.csrf_token = ""
        self._form: Form | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        if tag == "meta" and a.get("name") == "csrf-token":
            self.csrf_token = a.get("content", "")
        for link in (a.get("href"), a.get("hx-get")):
            if link and link.startswith("/"):
                self.links.append(link)
        if tag == "form":
            method = (a.get("method") or "get").lower()
            self._form = Form(action=a.get("action") or self.page_url, method=method)
            self.forms.append(self._form)
            return
        form = self._form
        if form is None:
            return
        if a.get("hx-get"):
            form.fetches.append(a["hx-get"])
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in {"checkbox", "radio"} and "checked" not in a:
                form.kinds.setdefault(name, kind)
                return
            form.values.setdefault(name, a.get("value", "on" if kind == "checkbox" else ""))
            form.kinds.setdefault(name, kind)
        elif tag == "button" and name:
            form.values.setdefault(name, a.get("value", ""))
            form.kinds.setdefault(name, "button")
        elif tag == "select" and name:
            self._select = name
            form.kinds.setdefault(name, "select")
        elif tag == "option" and self._select:
            # The selected option, else the first with a value (the one a person would pick).
            first = self._select not in form.values and a.get("value")
            if "selected" in a or first:
                form.values[self._select] = a.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            form.values.setdefault(name, "")
            form.kinds.setdefault(name, "textarea")

    def handle_data(self, data: str) -> None:
        if self._form is not None and self._textarea:
            self._form.values[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def _kind(form: Form, name: str) -> str:
    """date, number or text: what a field holds, judged from its input type and value."""
    kind = form.kinds.get(name, "text")
    if kind in {"date", "datetime-local"}:
        return "date"
    value = form.values.get(name, "")
    if kind == "number" or (kind in {"select", "hidden"} and value.isdigit()):
        return "number"
    return "text"


def _must_refuse(kind: str, value_name: str) -> bool:
    """Values no field of that kind may accept: a refusal must answer 4xx and change nothing."""
    if value_name == "NUL":
        return True
    if kind == "date":
        return value_name in DATES
    if kind == "number":
        return value_name in HUGE_IDS
    return False


# ------------------------------------------------------------------ the world


# The demo record a path argument names, by argument name.
PATH_IDS = {
    "nurse_id": "nurse",
    "patient_id": "patient",
    "appointment_id": "appointment",
    "call_id": "call",
}
FIRST_ROW: dict[str, type[Any]] = {
    "token_id": ApiToken,
    "request_id": CallbackRequest,
    "notification_id": Notification,
    "assignment_id": PatientNurseAssignment,
    "override_id": NurseAvailabilityOverride,
}


def _path_arguments(dash: Dashboard) -> dict[str, str]:
    """A real record for each path argument, so valid URLs render their forms."""
    values = {name: str(dash.ids[key]) for name, key in PATH_IDS.items()}
    for name, model in FIRST_ROW.items():
        values[name] = str(dash.scalar(select(func.min(model.id))) or 1)
    # Another login's row: the crawl must not reset the password it signs in with.
    values["user_id"] = str(dash.scalar(select(User.id).where(User.email == COORDINATOR_EMAIL)))
    values["token"] = "no-such-token"
    return values


def _fill(rule: Rule, values: dict[str, str]) -> str:
    """The rule's path with each argument replaced by `values` (URL-encoded)."""
    return re.sub(
        r"<(?:[^>]*:)?(\w+)>", lambda m: quote(values.get(m.group(1), "1"), safe=""), rule.rule
    )


def _routes(app: Flask) -> list[Rule]:
    return [
        rule
        for rule in app.url_map.iter_rules()
        if not rule.rule.startswith("/api/") and rule.endpoint not in SKIPPED_ENDPOINTS
    ]


# How views read the query string, and what kind of value each way reads: args.get("q"), a
# form helper given `source=` args, or the helpers that read only the query string.
_READS = {
    "text": re.compile(r'args\.get(?:list)?\(\s*"([\w-]+)"'),
    "date": re.compile(r'date_field\(\s*"([\w-]+)"[^)]*source='),
    "number": re.compile(
        r'(?:int_field|id_field)\(\s*"([\w-]+)"[^)]*source=|whole_number_arg\(\s*"([\w-]+)"'
    ),
}


def _names_read_by(app: Flask, endpoint: str) -> dict[str, str]:
    """Parameter names the view reads, found in its code, with their kinds."""
    # The view's own code only: its module's other views read other names. What it reads
    # through a helper of its own, its pages' links and forms show.
    source = inspect.getsource(inspect.unwrap(app.view_functions[endpoint]))
    names: dict[str, str] = {}
    for kind, pattern in _READS.items():
        for groups in pattern.findall(source):
            for name in groups if isinstance(groups, tuple) else (groups,):
                if name:
                    _note(names, name, kind)
    if "paginate" in source or "page_number" in source:
        _note(names, "page", "number")
    if "_day_arg" in source or "_check_day" in source:
        _note(names, "day", "date")
    return names


def _note(names: dict[str, str], name: str, kind: str) -> None:
    """Record that `name` holds `kind`; a date or number says more than text."""
    if names.get(name, "text") == "text":
        names[name] = kind


def _kind_of_value(value: str) -> str:
    """date, number or text: what a link's query value looks like."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return "date"
    return "number" if value.isascii() and value.isdigit() else "text"


def snapshot(dash: Dashboard) -> tuple[int | None, ...]:
    """Every table's row count and the newest audit event: what a change would move (refused
    sign-ins, which are audited by design, aside)."""
    audit = Base.metadata.tables["audit_events"]
    # A refused sign-in is recorded on purpose (who was refused, why): that is no change.
    changes = audit.c.action != "login.refused"
    counts = [
        select(func.count())
        .select_from(t)
        .where(changes if t is audit else true())
        .scalar_subquery()
        for t in Base.metadata.sorted_tables
    ]
    with dash.app.app_context():
        db.session.remove()
        newest = select(func.max(audit.c.id)).where(changes).scalar_subquery()
        row = db.session.execute(select(*counts, newest)).one()
        db.session.remove()
    return tuple(row)


@dataclass
class Crawl:
    """What the crawl sent and what it found wrong."""

    dash: Dashboard
    problems: list[str] = field(default_factory=list)
    requests: int = 0
    forms: set[str] = field(default_factory=set)  # endpoints whose form fields were sent
    queries: set[str] = field(default_factory=set)  # "endpoint?name" sent
    tokens: dict[int, str] = field(default_factory=dict)  # each client's CSRF token
    # The database after the last POST; a GET can write too (reading a transcript is audited).
    last: tuple[int | None, ...] | None = None

    def token(self, client: FlaskClient) -> str:
        """The client's CSRF token, read once from a page as a browser would."""
        if id(client) not in self.tokens:
            self.tokens[id(client)] = csrf_token(client)
        return self.tokens[id(client)]

    def get(self, client: FlaskClient, url: str, what: str, refuse: bool = False) -> None:
        """GET `url`: no 5xx, and a value that must be refused answers 4xx."""
        self.requests += 1
        self.last = None
        status = client.get(url).status_code
        if status >= 500:
            self.problems.append(f"{status} GET {_short(url)} ({what})")
        elif refuse and status < 400:
            self.problems.append(f"{status} GET {_short(url)} accepted it ({what})")

    def post(
        self, client: FlaskClient, url: str, data: dict[str, str], what: str, refuse: bool
    ) -> None:
        """POST `data`: no 5xx, and a refusal (or a value that must be refused) changes nothing."""
        before = self.last or snapshot(self.dash)
        self.requests += 1
        response = client.post(url, data={**data, "csrf_token": self.token(client)})
        status = response.status_code
        self.last = snapshot(self.dash)
        changed = self.last != before
        # Signed out, the answer is the way to the sign-in page: a refusal too.
        refused = status >= 400 or (response.location or "").startswith("/login")
        if status >= 500:
            self.problems.append(f"{status} POST {_short(url)} ({what})")
        elif changed and (refused or refuse):
            self.problems.append(f"{status} POST {_short(url)} changed the database ({what})")
        elif refuse and not refused:
            self.problems.append(f"{status} POST {_short(url)} accepted it ({what})")


def _short(url: str) -> str:
    return url if len(url) < 120 else url[:117] + "..."


def _pages(
    crawl: Crawl, client: FlaskClient, rules: list[Rule], args: dict[str, str]
) -> Iterator[tuple[str, PageParser]]:
    """Each GET route with real ids, then the links those pages offer: (url, parsed page)."""
    adapter = crawl.dash.app.url_map.bind("localhost")
    seen: set[tuple[str, frozenset[str]]] = set()
    queue = [_fill(rule, args) for rule in rules if "GET" in (rule.methods or ())]
    while queue:
        url = queue.pop(0)
        parts = urlsplit(url)
        if parts.path.startswith(("/api/", "/static/")):
            continue
        # One page per view and set of parameters: a nurse's calendar is every nurse's.
        endpoint, _ = adapter.match(parts.path, method="GET")
        key = (endpoint, frozenset(name for name, _ in parse_qsl(parts.query)))
        if key in seen:
            continue
        seen.add(key)
        response = client.get(url)
        crawl.requests += 1
        crawl.last = None
        if response.status_code >= 500:
            crawl.problems.append(f"{response.status_code} GET {_short(url)} (a valid page)")
            continue
        if response.status_code != 200:
            continue
        parser = PageParser(parts.path)
        parser.feed(response.get_data(as_text=True))
        if parser.csrf_token:
            crawl.tokens.setdefault(id(client), parser.csrf_token)
        queue.extend(parser.links)
        yield url, parser


def crawl_as(crawl: Crawl, role: str | None) -> None:
    """Send every boundary value to every path argument, query parameter and form field."""
    dash = crawl.dash
    client = dash.client(role)
    adapter = dash.app.url_map.bind("localhost")
    rules = _routes(dash.app)
    args = _path_arguments(dash)
    query_names: dict[str, dict[str, str]] = {}  # by view: the names it reads, and their kinds
    paths: dict[str, str] = {}
    forms: dict[str, Form] = {}

    def reads(path: str, names: dict[str, str]) -> None:
        try:
            endpoint, _ = adapter.match(path, method="GET")
        except Exception:  # not a page (a POST-only path): nothing to send
            return
        paths.setdefault(endpoint, path)
        known = query_names.setdefault(endpoint, _names_read_by(dash.app, endpoint))
        for name, kind in names.items():
            _note(known, name, kind)

    def link_reads(link: str) -> None:
        parts = urlsplit(link)
        reads(parts.path, {name: _kind_of_value(v) for name, v in parse_qsl(parts.query)})

    def form_reads(path: str, form: Form) -> None:
        reads(path, {name: _kind(form, name) for name in {*form.values, *form.kinds}})

    for url, page in _pages(crawl, client, rules, args):
        link_reads(url)
        for link in page.links:
            link_reads(link)
        for form in page.forms:
            for fetch in form.fetches:
                # The whole form goes along, but the fragment reads only some of it: sent,
                # but held to a refusal only for what its view's code reads.
                reads(urlsplit(fetch).path, dict.fromkeys({*form.values, *form.kinds}, "text"))
            if form.method == "get":
                form_reads(urlsplit(form.action).path, form)
                continue
            try:
                post_endpoint, _ = adapter.match(urlsplit(form.action).path, method="POST")
            except Exception:  # a form of another app part (none today)
                continue
            if post_endpoint in SKIPPED_ENDPOINTS or _signs_someone_out(form.action, args):
                continue
            forms.setdefault(post_endpoint, form)

    for endpoint, names in query_names.items():
        path = paths[endpoint]
        for name, kind in sorted(names.items()):
            if name in NEVER_SENT:
                continue
            crawl.queries.add(f"{endpoint}?{name}")
            for value_name, value in VALUES.items():
                url = f"{path}?{urlencode({name: value})}"
                refuse = _must_refuse(kind, value_name)
                crawl.get(client, url, f"?{name}= {value_name}", refuse)

    for endpoint, form in forms.items():
        crawl.forms.add(endpoint)
        fields = [name for name in form.values if name not in NEVER_SENT]
        fields += [name for name in form.kinds if name not in form.values]
        for name in fields:
            kind = _kind(form, name)
            for value_name, value in VALUES.items():
                data = {**form.values, name: value}
                refuse = _must_refuse(kind, value_name)
                crawl.post(client, form.action, data, f"{name}= {value_name}", refuse)

    for rule in rules:
        if not rule.arguments:
            continue
        for argument in sorted(rule.arguments):
            for value_name, value in VALUES.items():
                url = _fill(rule, {**args, argument: value})
                if not _routes_to_a_view(adapter, url, rule):
                    continue  # werkzeug answers 404 itself (an int argument given a word)
                what = f"<{argument}> {value_name}"
                if "GET" in (rule.methods or ()):
                    crawl.get(client, url, what)
                if "POST" in (rule.methods or ()):
                    # The form's own values, so only the path is wrong: no record it names exists.
                    data = dict(forms[rule.endpoint].values) if rule.endpoint in forms else {}
                    crawl.post(client, url, data, what, refuse=True)


def _routes_to_a_view(adapter: MapAdapter, url: str, rule: Rule) -> bool:
    """Whether `url` reaches the rule's view at all."""
    method = "GET" if "GET" in (rule.methods or ()) else "POST"
    try:
        endpoint, _ = adapter.match(unquote(url), method=method)
    except HTTPException:
        return False
    return bool(endpoint == rule.endpoint)


def _signs_someone_out(action: str, args: dict[str, str]) -> bool:
    """A staff form for a login the crawl signs in with: a new password would end its session."""
    row = re.match(r"/staff/(\d+)/", action)
    return row is not None and row.group(1) != args["user_id"]


@pytest.fixture
def crawl_dash(db_url: str) -> Iterator[Dashboard]:
    """The demo world on each backend; errors answer 500 as in production instead of raising."""
    yield from dashboard_app(db_url, seed_world(db_url), PROPAGATE_EXCEPTIONS=False)


def test_no_dashboard_url_or_form_fails_or_changes_anything_on_bad_input(
    crawl_dash: Dashboard,
) -> None:
    crawl = Crawl(crawl_dash)
    for role in ("admin", "nurse", None):
        crawl_dash.client(role)  # signed in before any change to the logins
    for role in ("admin", "nurse", None):  # None: signed out (the sign-in form)
        crawl_as(crawl, role)
    # The crawl still finds what matters most, whatever the templates become.
    assert crawl.forms >= EXPECTED_FORMS, EXPECTED_FORMS - crawl.forms
    assert crawl.queries >= EXPECTED_QUERIES, EXPECTED_QUERIES - crawl.queries
    assert not crawl.problems, f"{len(crawl.problems)} problems:\n" + "\n".join(crawl.problems)


EXPECTED_FORMS = {
    "auth.login",
    "appointments.book",
    "appointments.reschedule",
    "appointments.cancel",
    "nurses.add_override_view",
    "nurses.edit",
    "nurses.save_availability",
    "patients.edit",
    "patients.assign",
    "staff.create",
    "account.create",
}
EXPECTED_QUERIES = {
    "schedule.calendar?date",
    "schedule.mine?date",
    "appointments.index?from",
    "appointments.index?page",
    "appointments.slots?day",
    "appointments.slots?patient_id",
    "appointments.new?patient_id",
    "audit.index?entity_id",
    "calls.updates?after",
    "notifications.index?page",
}
