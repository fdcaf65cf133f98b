"""The product brief's endpoint paths, as aliases of the operations that already do each job.

The brief names its paths with a trailing slash; they live under /api/v1 like every other
operation, take the same tokens and roles, and answer exactly as the operation they alias
(the OpenAPI document marks each one `x-alias-of`).
"""

from __future__ import annotations

from webapp.api.appointments import create_appointment, get_appointment, list_appointments
from webapp.api.calls import (
    get_call,
    get_transcript,
    list_calls,
    list_transcripts,
    place_call,
    schedule_from_call,
)
from webapp.api.meta import openai_check
from webapp.api.nurses import assigned_nurse, available_nurses, nurse_availability
from webapp.api.registry import ID, alias

alias("GET", "/nurses/available/", of=available_nurses, name="brief_available_nurses")
alias(
    "GET",
    f"/nurses/<{ID}:nurse_id>/availability/",
    of=nurse_availability,
    name="brief_nurse_availability",
)
alias("POST", f"/calls/<{ID}:call_id>/schedule/", of=schedule_from_call, name="brief_schedule_call")
alias("GET", "/patients/<phone>/assigned-nurse/", of=assigned_nurse, name="brief_assigned_nurse")
alias("GET", "/appointments/", of=list_appointments, name="brief_list_appointments")
alias("POST", "/appointments/", of=create_appointment, name="brief_create_appointment")
alias("GET", f"/appointments/<{ID}:appointment_id>/", of=get_appointment, name="brief_appointment")
alias("GET", "/calls/history/", of=list_calls, name="brief_call_history")
alias("GET", f"/calls/<{ID}:call_id>/transcript/", of=get_transcript, name="brief_transcript")
alias("GET", f"/calls/<{ID}:call_id>/details/", of=get_call, name="brief_call_details")
alias("GET", "/transcripts/", of=list_transcripts, name="brief_transcripts")
alias("POST", "/make-call/", of=place_call, name="brief_make_call")
alias("GET", "/test-openai/", of=openai_check, name="brief_test_openai")
