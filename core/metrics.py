"""The product's Prometheus metrics, each defined once; every service exposes the ones it moves.

Labels are bounded sets from the code (refusal reasons, call outcomes, tool names), never a
patient, phone number or free text. The dashboard's gunicorn workers share their counts through
prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by supervisord.conf);
the voice service is one process per instance.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Speech-to-speech: a reply under a second feels like a conversation.
_RESPONSE_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
_TOOL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# The relay sends 20 ms frames: a few ms late is fine, tens of ms is heard.
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

BOOKING_REFUSALS = Counter(
    "carematix_booking_refusals",
    "Bookings and moves the scheduling engine refused, by reason (conflict: the time was taken)",
    ["reason"],
)
CALLS_ACTIVE = Gauge(
    "carematix_calls_active",
    "Calls with a media stream open on this voice instance",
    multiprocess_mode="livesum",
)
CALLS_FINISHED = Counter(
    "carematix_calls_finished",
    "Calls whose media stream ended on this instance, by the call's outcome",
    ["outcome"],
)
AGENT_RESPONSE_SECONDS = Histogram(
    "carematix_agent_response_seconds",
    "From the caller's end of speech to the agent's first audio sent to the caller",
    buckets=_RESPONSE_BUCKETS,
)
TOOL_SECONDS = Histogram(
    "carematix_tool_duration_seconds",
    "How long the agent's tools took, by tool",
    ["tool"],
    buckets=_TOOL_BUCKETS,
)
MODEL_RECONNECTS = Counter(
    "carematix_model_reconnects",
    "Model sockets replaced during a call (dropped: the socket failed; recycled: time limit)",
    ["reason"],
)
RELAY_LAG_SECONDS = Histogram(
    "carematix_relay_lag_seconds",
    "How late the voice service's event loop ran a timer: delay added to every relayed frame",
    buckets=_LAG_BUCKETS,
)
