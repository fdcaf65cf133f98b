"""The staff dashboard (Flask + HTMX): pages for coordinators, nurses and admins."""

from __future__ import annotations

from flask import Flask

from core.models import (
    AnsweredBy,
    AppointmentKind,
    AppointmentStatus,
    AssignmentRole,
    CallStatus,
    CancelReason,
    OverrideKind,
    Role,
)
from webapp import auth, channels
from webapp.dashboard import (
    account,
    appointments,
    audit,
    calendar_links,
    callbacks,
    calls,
    common,
    grid,
    home,
    matching,
    notifications,
    nurses,
    patients,
    schedule,
    series,
    staff,
    time_off,
    waitlist,
)


def register(app: Flask) -> None:
    """Sign-in, CSRF and every dashboard blueprint, plus the template helpers they share."""
    app.before_request(common.begin_read_only_views)  # before sign-in loads the user
    app.before_request(common.refuse_control_characters)  # sign-in's form too
    auth.init_app(app)
    for module in (
        home,
        nurses,
        patients,
        appointments,
        schedule,
        grid,
        series,
        waitlist,
        calls,
        staff,
        time_off,
        notifications,
        callbacks,
        audit,
        matching,
        calendar_links,
        account,
    ):
        app.register_blueprint(module.bp)
    app.after_request(common.flashes_shown_once)
    app.add_template_global(common.when, "when")
    app.add_template_global(common.viewer_zone, "viewer_zone")
    app.add_template_global(common.day_label, "day_label")
    app.add_template_global(common.page_url, "page_url")
    app.add_template_global(channels.unconfigured, "unconfigured_channels")
    app.add_template_global(channels.calls, "calls_setup")
    app.add_template_filter(common.label, "label")
    app.add_template_global(common.choices_of, "choices_of")
    # Enums by name, for `value|label(AppointmentKind)` and selects built from their members.
    for choices in (
        AnsweredBy,
        AppointmentKind,
        AppointmentStatus,
        AssignmentRole,
        CallStatus,
        CancelReason,
        OverrideKind,
        Role,
    ):
        app.add_template_global(choices, choices.__name__)
