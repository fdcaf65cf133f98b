"""What the agent is told: its instructions per call direction, and the lines it is prompted with.

None of this holds caller data, so one text serves every call in a direction (and the
`session.update` can be sent on a socket pre-opened before the call's stream starts).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import phonenumbers

from core.config import Settings
from core.scheduling import zone
from voice import protocol
from voice.tools import TOOL_DEFINITIONS

INSTRUCTIONS = """\
You are the Carematix scheduling assistant for a home-care nursing team, speaking on the phone.
Be professional, warm and brief. Speak the caller's preferred language (switch if they do).
Today is {today} ({zone}). Greet the caller first: say you are the Carematix scheduling assistant.
Before disclosing or changing anything, verify the caller with verify_patient (date of birth, and
name if offered). Disclose nothing about any patient before that succeeds. After three failed
attempts, offer to transfer to staff.
Times you pass to tools are the patient's local wall-clock time (YYYY-MM-DD, HH:MM 24 h). Use
the `spoken` phrases from tool results when reading times aloud.
Before booking, cancelling or rescheduling, read the details back and wait for an explicit yes.
If a time is taken, offer the alternatives the tool returns; an alternative with another nurse
names her (nurse_name): say so, and pass its nurse_id when booking it. If a time does not exist
because the clocks go forward (no_such_time), say so and offer the `nearest` times; never book
another time unasked. Read any clock_note aloud. Before a tool call, say
briefly that you are checking ("One moment, let me check"), so the caller is not left in
silence. If the caller asks for a person, or you cannot help, use transfer_to_staff. When the
caller is done, say goodbye and then call end_call.
{direction_note}"""

OUTBOUND_NOTE = "This is an outbound call Carematix placed to the patient: say who you are and why."

# What the agent says once the caller's 0 has recorded a callback request.
TELL_CALLBACK = (
    "The caller pressed 0 to reach a person. Tell them briefly that no one is free right now "
    "and a care coordinator will call them back."
)

WIND_DOWN = (
    "This call has to end now. Without asking anything more, tell the caller briefly that you "
    "must end the call, that a care coordinator will call them back soon to finish, and say "
    "goodbye."
)


def voicemail_message(callback_number: str) -> str:
    """Left on an answering machine: the practice and a number, nothing about whom or why
    (anyone may hear a voicemail)."""
    return (
        "Hello, this is a message from Carematix. Please call us back at "
        f"{spoken_phone_number(callback_number)}. Thank you, goodbye."
    )


def spoken_phone_number(number: str) -> str:
    """Digits read one by one in their groups (`2 0 2, 5 5 5, 0 1 9 9`), as people say them."""
    try:
        parsed = phonenumbers.parse(number, "US")
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    except phonenumbers.NumberParseException:
        national = number
    return ", ".join(" ".join(group) for group in re.findall(r"\d+", national))


# Said by Twilio (not the agent) when the model is gone for good.
SORRY_TRANSFER = "Sorry, we are having technical trouble. Connecting you to our staff now."
SORRY_CALLBACK = (
    "Sorry, we are having technical trouble. A care coordinator will call you back soon. Goodbye."
)


def agent_instructions(settings: Settings, direction: str) -> str:
    """The agent's instructions for a call in `direction` (they hold no caller data)."""
    tz = settings.default_time_zone
    today = datetime.now(UTC).astimezone(zone(tz))
    note = OUTBOUND_NOTE if direction == "outbound" else ""
    return INSTRUCTIONS.format(today=f"{today:%A %Y-%m-%d}", zone=tz, direction_note=note)


def session_update_text(settings: Settings, direction: str) -> str:
    """The `session.update` for a call in `direction`, as the JSON text sent on the socket."""
    # Sent as JSON text: the SDK's typed send() spends milliseconds transforming this
    # large event, on the event loop every call shares (the fake server checks the types).
    event = protocol.session_update(
        instructions=agent_instructions(settings, direction),
        voice=settings.openai_voice,
        tools=TOOL_DEFINITIONS,
    )
    return json.dumps(event)


def resumed_note(*, verified: bool) -> str:
    """The system line that tells a fresh model session the call is resuming."""
    state = "has been verified" if verified else "is not verified yet"
    return f"The call resumes after a reconnection. The caller {state}."
