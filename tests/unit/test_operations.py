"""The shared write operations: each rule, and every problem reported in one answer."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from pydantic import ValidationError
from werkzeug.datastructures import MultiDict

from core.models import AppointmentKind, CancelReason, OverrideKind, Role
from core.operations import (
    AskTimeOff,
    AvailabilityOverride,
    CancelVisit,
    CareTeamChange,
    ConditionMapping,
    DeclineTimeOff,
    NewApiToken,
    NewPassword,
    NewStaffUser,
    NurseDetails,
    NurseLink,
    PatientDetails,
    Reschedule,
    VisitDetails,
    VisitNote,
    form_input,
    validate_form,
)

NURSE = {
    "first_name": "Ana",
    "last_name": "Reyes",
    "time_zone": "America/Chicago",
    "visit_minutes": "30",
    "buffer_before_minutes": "0",
    "buffer_after_minutes": "10",
    "min_notice_minutes": "120",
    "horizon_days": "60",
    "slot_step_minutes": "15",
}
PATIENT = {
    "first_name": "Margaret",
    "last_name": "Hughes",
    "date_of_birth": "1941-03-02",
    "phone": "+1 202 555 0142",
    "time_zone": "America/New_York",
}


def test_an_empty_nurse_form_names_every_required_field_at_once() -> None:
    details, errors = validate_form(NurseDetails, MultiDict())

    assert details is None
    assert errors == {
        "first_name": "First name is required.",
        "last_name": "Last name is required.",
        "time_zone": "Time zone is required.",
        "visit_minutes": "Visit length is required.",
        "buffer_before_minutes": "Buffer before is required.",
        "buffer_after_minutes": "Buffer after is required.",
        "min_notice_minutes": "Minimum notice is required.",
        "horizon_days": "Booking horizon is required.",
        "slot_step_minutes": "Slot step is required.",
    }


def test_five_bad_nurse_values_are_five_messages_in_one_answer() -> None:
    form = {
        **NURSE,
        "phone": "call me",
        "email": "ana-at-example",
        "time_zone": "Mars/Olympus",
        "visit_minutes": "half an hour",
        "horizon_days": "900",
    }

    _, errors = validate_form(NurseDetails, form)

    assert errors == {
        "phone": "Enter the phone number in international form, e.g. +15551234567.",
        "email": "That email address does not look right.",
        "time_zone": "Unknown time zone 'Mars/Olympus': use an IANA name such as "
        "'America/New_York'.",
        "visit_minutes": "Visit length must be a whole number.",
        "horizon_days": "Booking horizon must be between 1 and 365.",
    }


def test_a_nurse_form_is_cleaned_and_a_blank_daily_cap_means_none() -> None:
    form = {
        **NURSE,
        "first_name": "  Ana ",
        "specializations": "Cardiology, wound care,\ncardiology",
    }

    details, errors = validate_form(NurseDetails, form)

    assert errors == {} and details is not None
    assert details.first_name == "Ana"
    assert details.specializations == ["Cardiology", "wound care"]
    assert (details.buffer_after_minutes, details.daily_cap, details.phone) == (10, None, None)


def test_blank_form_values_count_as_not_given() -> None:
    assert form_input(NurseDetails, {"first_name": "  ", "title": "RN", "csrf_token": "x"}) == {
        "title": "RN"
    }


def test_a_patient_address_given_in_part_names_each_missing_part_with_the_other_problems() -> None:
    form = {**PATIENT, "phone": "+1 555", "address_city": "Springfield"}

    _, errors = validate_form(PatientDetails, form)

    assert errors == {
        "phone": "That phone number is not a possible number.",
        "address_line1": "Give the street address, or leave the whole address empty.",
        "address_postal_code": "Give the postal code, or leave the whole address empty.",
    }


def test_a_date_of_birth_after_today_is_not_possible() -> None:
    _, errors = validate_form(
        PatientDetails,
        {**PATIENT, "date_of_birth": "2030-01-01"},
        context={"today": date(2026, 1, 1)},
    )

    assert errors == {"date_of_birth": "That date of birth is not possible."}


def test_a_patient_phone_is_stored_in_international_form() -> None:
    details, _ = validate_form(PatientDetails, PATIENT)

    assert details is not None and details.phone == "+12025550142"


def test_a_cancellation_asks_for_its_reason_in_words_never_codes() -> None:
    _, errors = validate_form(CancelVisit, {"note": "Family visiting"})

    assert errors == {
        "reason_code": "Choose why the visit is cancelled: Patient asked to cancel, Nurse "
        "unavailable, Clinical reason, Booked twice or Other."
    }


def test_a_move_is_not_a_reason_anyone_gives_for_cancelling() -> None:
    with pytest.raises(ValidationError) as refused:
        CancelVisit.model_validate({"reason_code": CancelReason.RESCHEDULED.value})

    # The API's message names the codes a program may send, and only those.
    message = refused.value.errors()[0]["msg"]
    assert "'patient_request'" in message and "rescheduled" not in message


def test_a_cancellation_takes_a_reason_and_a_note() -> None:
    cancel = CancelVisit.model_validate({"reason_code": "clinical", "note": "Admitted"})

    assert (cancel.reason_code, cancel.reason_code.label) == (
        CancelReason.CLINICAL,
        "Clinical reason",
    )


def test_booking_reports_the_patient_the_time_the_kind_and_the_reason_together() -> None:
    _, errors = validate_form(VisitDetails, {"kind": "boat", "reason": "x" * 501})

    assert errors == {
        "patient_id": "Choose a patient.",
        "start": "Start is required.",
        "kind": "Choose the kind of visit: Phone call, Video call or Home visit.",
        "reason": "Reason is too long (500 characters at most).",
    }


def test_a_booked_time_needs_its_offset_and_is_kept_in_utc() -> None:
    visit = VisitDetails.model_validate({"patient_id": 3, "start": "2026-03-04T10:00:00-05:00"})

    assert visit.start == datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
    assert visit.kind is AppointmentKind.PHONE
    with pytest.raises(ValidationError):
        VisitDetails.model_validate({"patient_id": 3, "start": "2026-03-04T10:00:00"})


def test_a_visit_length_outside_five_minutes_to_eight_hours_is_refused() -> None:
    _, errors = validate_form(Reschedule, {}, start="2026-03-04T10:00:00Z", duration_minutes=481)

    assert errors == {"duration_minutes": "Length must be between 5 and 480."}


def test_an_override_reports_every_problem_with_its_span_at_once() -> None:
    form = {
        "kind": "holiday",
        "start_date": "2026-05-02",
        "end_date": "2026-05-01",
        "start_time": "14:00",
    }

    _, errors = validate_form(AvailabilityOverride, form)

    assert errors == {
        "kind": "Choose time off or extra hours: Time off or Extra hours.",
        "end_date": "The last date is before the first.",
        "end_time": "Give both a start and an end time, or neither for all day.",
    }


def test_an_override_ending_at_midnight_ends_after_its_start() -> None:
    form = {"start_date": "2026-05-01", "start_time": "18:00", "end_time": "00:00"}

    override, errors = validate_form(AvailabilityOverride, form)

    assert errors == {} and override is not None
    assert (override.kind, override.end_time) == (OverrideKind.TIME_OFF, time(0))


def test_an_override_in_year_one_is_refused_by_year() -> None:
    _, errors = validate_form(AvailabilityOverride, {"start_date": "0001-01-01"})

    assert errors == {"start_date": "First date must be between 1970 and 2100."}


def test_a_time_off_request_must_say_why() -> None:
    _, errors = validate_form(AskTimeOff, {"start_date": "2026-05-01", "end_time": "25:00"})

    assert errors == {
        "end_time": "To must be a time (HH:MM).",
        "reason": "Say why, so the coordinator can plan.",
    }


def test_a_new_login_reports_its_email_password_and_role_together() -> None:
    _, errors = validate_form(NewStaffUser, {"email": "nobody", "role": "owner"})

    assert errors == {
        "email": "That email address does not look right.",
        "password": "Password is required.",
        "role": "Choose a role: Admin, Coordinator or Nurse.",
    }
    login = NewStaffUser.model_validate(
        {"email": "A@B.org", "password": " long enough ", "role": "nurse"}
    )
    assert (login.email, login.password, login.role) == ("a@b.org", " long enough ", Role.NURSE)


def test_a_token_needs_a_name_of_at_most_100_characters() -> None:
    assert validate_form(NewApiToken, {"name": " "})[1] == {
        "name": "Give the token a name, e.g. what will use it."
    }
    assert validate_form(NewApiToken, {"name": "x" * 101})[1] == {
        "name": "Token name is too long (100 characters at most)."
    }


def test_a_care_team_change_refuses_an_id_no_record_can_have() -> None:
    _, errors = validate_form(CareTeamChange, {"nurse_id": "99999999999", "role": "boss"})

    assert errors == {
        "nurse_id": "There is no such nurse: choose one from the list.",
        "role": "Choose the role on the care team: Primary nurse or Backup nurse.",
    }


def test_a_condition_mapping_needs_the_condition() -> None:
    mapping, errors = validate_form(ConditionMapping, {"condition": " ", "specializations": "x"})

    assert mapping is None and errors == {"condition": "The condition is required."}


def test_a_closing_note_is_at_most_500_characters() -> None:
    assert validate_form(VisitNote, {"note": "x" * 501})[1] == {
        "note": "Note is too long (500 characters at most)."
    }


def test_unknown_fields_are_refused_so_a_typo_does_not_pass_silently() -> None:
    with pytest.raises(ValidationError):
        CancelVisit.model_validate({"reason_code": "other", "notes": "typo"})


def test_a_password_is_taken_as_typed_and_must_be_ten_characters() -> None:
    assert validate_form(NewPassword, {}, password="short")[1] == {
        "password": "Passwords need at least 10 characters."
    }
    new, _ = validate_form(NewPassword, {}, password="  spaced out  ")
    assert new is not None and new.password == "  spaced out  "


def test_a_nurse_link_is_a_listed_nurse_or_none() -> None:
    assert validate_form(NurseLink, {"nurse_id": ""}) == (NurseLink(nurse_id=None), {})
    assert validate_form(NurseLink, {"nurse_id": "abc"})[1] == {
        "nurse_id": "There is no such nurse: choose one from the list."
    }


def test_a_declined_request_note_is_at_most_200_characters() -> None:
    assert validate_form(DeclineTimeOff, {"note": "x" * 201})[1] == {
        "note": "Note is too long (200 characters at most)."
    }
