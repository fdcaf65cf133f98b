"""The delivery worker's steps: reap expired leases, claim due rows, send, record the outcome.

Each row goes queued -> sending (claimed with a lease, in a short transaction) -> sent, or back
to queued with a backoff, or failed. A text or email whose channel has no settings becomes
`unconfigured` without being tried: not a failure, and never retried on its own, so a fresh
install does not fill the outbox with errors; once the channel is set up, new messages go out
and a coordinator may retry an older one. Sending happens outside any transaction. A row still in
`sending` after its lease ran out belongs to a worker that died mid-send: whether the provider
got it is unknown, so it becomes `unknown` for a coordinator to check and is never resent.

Claims are exclusive: PostgreSQL locks the chosen rows with FOR UPDATE SKIP LOCKED, so racing
workers take disjoint rows; SQLite transactions start with BEGIN IMMEDIATE (core.db), so claims
are serialised and the second worker sees the first one's `sending` rows.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.channels import message_setups
from core.logs import log_failure
from core.models import (
    Appointment,
    AppointmentStatus,
    Channel,
    Notification,
    NotificationStatus,
    Nurse,
    Patient,
    RecipientKind,
    User,
)
from core.notifications.providers import DeliveryError, Failure, Outgoing, Provider
from core.notifications.settings import NotifySettings
from core.scheduling import zone
from core.services.common import Actor, audit

log = logging.getLogger(__name__)

REMINDER_PREFIX = "reminder"
# What a coordinator may send again: nothing here is resent automatically.
RETRYABLE_STATUSES = (
    NotificationStatus.FAILED,
    NotificationStatus.UNKNOWN,
    NotificationStatus.UNCONFIGURED,
)


def new_worker_id() -> str:
    """A label for this worker process, unique enough to tell claims apart."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


def quiet_until(now: datetime, time_zone: str, quiet: tuple[time, time] | None) -> datetime | None:
    """When quiet hours end, if `now` falls inside them in `time_zone`; None otherwise."""
    if quiet is None:
        return None
    tz = zone(time_zone)
    local = now.astimezone(tz)
    start, end = quiet
    clock = local.time().replace(tzinfo=None)
    if start < end:
        inside, end_day = start <= clock < end, local.date()
    else:  # the window wraps midnight, e.g. 21:00-08:00
        inside = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=tz).astimezone(UTC)


def backoff(attempts: int, config: NotifySettings) -> timedelta:
    """Exponential delay before retry number `attempts` + 1, capped."""
    seconds = config.backoff_seconds * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, config.backoff_max_seconds))


@dataclass
class RunReport:
    """What one pass of the worker did, by notification id."""

    reaped: list[int] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)
    unconfigured: list[int] = field(default_factory=list)

    @property
    def claimed(self) -> int:
        """How many rows were sent or attempted."""
        return len(self.sent) + len(self.retrying) + len(self.failed) + len(self.unknown)


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def reap_expired_leases(session: Session, now: datetime) -> list[int]:
    """Flag rows whose sender died mid-send as `unknown`; they are never resent automatically."""
    ids = list(
        session.scalars(
            update(Notification)
            .where(
                Notification.status == NotificationStatus.SENDING,
                Notification.lease_until < now,
            )
            .values(
                status=NotificationStatus.UNKNOWN,
                last_error="worker stopped mid-send; check with the recipient before resending",
                lease_until=None,
            )
            .returning(Notification.id)
        )
    )
    if ids:
        log.warning("notifications %s flagged unknown: lease expired mid-send", ids)
    return ids


@dataclass(frozen=True)
class _Recipient:
    address: str | None
    time_zone: str | None
    sms_consent: bool = True


def _recipient(session: Session, row: Notification) -> _Recipient:
    channel = row.channel
    if row.recipient_kind == RecipientKind.PATIENT and row.patient_id is not None:
        patient = session.get(Patient, row.patient_id)
        if patient is None:
            return _Recipient(None, None)
        address = patient.phone if channel == Channel.SMS else patient.email
        return _Recipient(address, patient.time_zone, bool(patient.sms_consent))
    if row.recipient_kind == RecipientKind.NURSE and row.nurse_id is not None:
        nurse = session.get(Nurse, row.nurse_id)
        if nurse is None:
            return _Recipient(None, None)
        address = nurse.phone if channel == Channel.SMS else nurse.email
        return _Recipient(address, nurse.time_zone)
    if row.user_id is not None:
        user = session.get(User, row.user_id)
        if user is None:
            return _Recipient(None, None)
        return _Recipient(user.email if channel == Channel.EMAIL else None, None)
    return _Recipient(None, None)


@dataclass(frozen=True)
class _Verdict:
    """What to do with a due row before sending: send, defer, cancel, fail or set aside (why)."""

    action: str  # "send" | "defer" | "cancel" | "fail" | "unconfigured"
    reason: str = ""
    until: datetime | None = None
    to: str = ""


def _verdict(
    session: Session, row: Notification, now: datetime, config: NotifySettings, channels: set[str]
) -> _Verdict:
    if row.event.startswith(REMINDER_PREFIX) and row.appointment_id is not None:
        appointment = session.get(Appointment, row.appointment_id)
        if appointment is None or appointment.status != AppointmentStatus.SCHEDULED:
            return _Verdict("cancel", "appointment no longer scheduled")
        if appointment.start_at <= now:
            return _Verdict("cancel", "appointment already started")
    if row.channel == Channel.IN_APP:
        return _Verdict("send")
    if row.channel not in channels:
        setup = message_setups(config).get(row.channel)
        reason = setup.reason if setup is not None and setup.reason else "channel not configured"
        return _Verdict("unconfigured", reason)
    recipient = _recipient(session, row)
    if row.channel == Channel.SMS:
        if row.recipient_kind == RecipientKind.PATIENT and not recipient.sms_consent:
            return _Verdict("cancel", "patient has not consented to SMS")
        if recipient.time_zone:
            until = quiet_until(now, recipient.time_zone, config.quiet_hours)
            if until is not None:
                return _Verdict("defer", "quiet hours", until=until)
    if not recipient.address:
        what = "phone number" if row.channel == Channel.SMS else "email address"
        return _Verdict("fail", f"recipient has no {what} on file")
    return _Verdict("send", to=recipient.address)


def claim_due(
    factory: sessionmaker[Session],
    now: datetime,
    *,
    worker_id: str,
    config: NotifySettings,
    channels: set[str],
    report: RunReport | None = None,
) -> list[Outgoing]:
    """Lease up to batch_size due rows to this worker, in one short transaction."""
    report = report if report is not None else RunReport()
    claimed: list[Outgoing] = []
    lease_until = now + timedelta(seconds=config.lease_seconds)
    with factory() as session, session.begin():
        query = (
            select(Notification)
            .where(
                Notification.status == NotificationStatus.QUEUED,
                Notification.send_after <= now,
            )
            .order_by(Notification.send_after, Notification.id)
            .limit(config.batch_size)
        )
        if _is_postgres(session):
            query = query.with_for_update(skip_locked=True, of=Notification)
        for row in session.scalars(query).all():
            verdict = _verdict(session, row, now, config, channels)
            if verdict.action == "defer":
                row.send_after = verdict.until or now
                report.deferred.append(row.id)
                continue
            if verdict.action == "cancel":
                row.status = NotificationStatus.CANCELLED
                row.last_error = verdict.reason
                report.cancelled.append(row.id)
                log.info("notification %s cancelled: %s", row.id, verdict.reason)
                continue
            if verdict.action == "unconfigured":
                row.status = NotificationStatus.UNCONFIGURED
                row.last_error = verdict.reason
                report.unconfigured.append(row.id)
                continue
            if verdict.action == "fail":
                row.status = NotificationStatus.FAILED
                row.last_error = verdict.reason
                report.failed.append(row.id)
                log.warning("notification %s failed: %s", row.id, verdict.reason)
                continue
            row.status = NotificationStatus.SENDING
            row.lease_until = lease_until
            row.claimed_by = worker_id
            row.attempts += 1
            claimed.append(
                Outgoing(
                    notification_id=row.id,
                    channel=row.channel,
                    to=verdict.to,
                    subject=row.subject,
                    body=row.body,
                    attempt=row.attempts,
                    claimed_by=worker_id,
                )
            )
    return claimed


def send_one(message: Outgoing, providers: dict[str, Provider]) -> str | None:
    """Hand a claimed message to its channel's provider (raises DeliveryError on failure)."""
    provider = providers.get(message.channel)
    if provider is None:
        raise DeliveryError(f"{message.channel} not configured", Failure.PERMANENT)
    try:
        return provider.send(message)
    except DeliveryError:
        raise
    except Exception as exc:  # a provider bug must not take the worker down or resend blindly
        log_failure(log, "notification %s: provider crashed", message.notification_id)
        raise DeliveryError(f"provider error ({type(exc).__name__})", Failure.AMBIGUOUS) from exc


def record_outcome(
    factory: sessionmaker[Session],
    message: Outgoing,
    now: datetime,
    config: NotifySettings,
    *,
    provider_id: str | None = None,
    error: DeliveryError | None = None,
    report: RunReport | None = None,
) -> str:
    """Store what happened to a claimed message; returns the row's new status."""
    report = report if report is not None else RunReport()
    nid = message.notification_id
    with factory() as session, session.begin():
        query = select(Notification).where(
            Notification.id == nid,
            Notification.claimed_by == message.claimed_by,
            Notification.attempts == message.attempt,
        )
        if _is_postgres(session):
            query = query.with_for_update()
        row = session.scalar(query)
        if row is None or row.status not in (
            NotificationStatus.SENDING,
            NotificationStatus.UNKNOWN,
        ):
            # Someone else (a coordinator, a newer claim) owns the row now: leave it alone.
            log.warning("notification %s: outcome not recorded, row changed meanwhile", nid)
            return row.status if row is not None else "missing"
        was_unknown = row.status == NotificationStatus.UNKNOWN
        row.lease_until = None
        if error is None:
            row.status = NotificationStatus.SENT
            row.provider_id = provider_id
            row.sent_at = now
            row.last_error = None
            report.sent.append(nid)
            log.info("notification %s sent via %s", nid, message.channel)
        elif error.kind == Failure.PERMANENT:
            row.status = NotificationStatus.FAILED
            row.last_error = error.reason
            report.failed.append(nid)
            log.warning("notification %s failed: %s", nid, error.reason)
            if error.opted_out:
                _withdraw_sms_consent(session, row, now)
        elif was_unknown:
            pass  # already flagged for a person; a late transient error changes nothing
        elif error.kind == Failure.AMBIGUOUS:
            row.status = NotificationStatus.UNKNOWN
            row.last_error = error.reason
            report.unknown.append(nid)
            log.warning("notification %s outcome unknown: %s", nid, error.reason)
        elif row.attempts >= config.max_attempts:
            row.status = NotificationStatus.FAILED
            row.last_error = f"gave up after {row.attempts} attempts: {error.reason}"
            report.failed.append(nid)
            log.warning("notification %s gave up after %s attempts", nid, row.attempts)
        else:
            row.status = NotificationStatus.QUEUED
            row.send_after = now + backoff(row.attempts, config)
            row.last_error = error.reason
            report.retrying.append(nid)
            log.info("notification %s will retry: %s", nid, error.reason)
        return row.status


def _withdraw_sms_consent(session: Session, row: Notification, now: datetime) -> None:
    """The patient replied STOP to a text: record it, so no further text is even tried."""
    if row.recipient_kind != RecipientKind.PATIENT or row.patient_id is None:
        return
    patient = session.get(Patient, row.patient_id)
    if patient is None or not patient.sms_consent:
        return
    patient.sms_consent = False
    audit(
        session,
        actor=Actor.system(),
        action="patient.sms_consent_withdrawn",
        entity_type="patient",
        entity_id=patient.id,
        now=now,
        notification_id=row.id,
    )
    log.warning("patient %s opted out of texts; SMS consent withdrawn", patient.id)


def run_once(
    factory: sessionmaker[Session],
    now: datetime,
    providers: dict[str, Provider],
    *,
    config: NotifySettings | None = None,
    worker_id: str | None = None,
) -> RunReport:
    """One pass: flag dead leases, claim a batch of due rows, send each, record each outcome."""
    config = config or NotifySettings()
    worker_id = worker_id or new_worker_id()
    report = RunReport()
    with factory() as session, session.begin():
        report.reaped = reap_expired_leases(session, now)
    messages = claim_due(
        factory, now, worker_id=worker_id, config=config, channels=set(providers), report=report
    )
    if report.unconfigured:
        # One line a pass, not one a message: the dashboard's banner says which settings to set.
        log.info(
            "%s notifications set aside: their channel is not configured", len(report.unconfigured)
        )
    for message in messages:
        try:
            provider_id = send_one(message, providers)
        except DeliveryError as error:
            record_outcome(factory, message, now, config, error=error, report=report)
        else:
            record_outcome(factory, message, now, config, provider_id=provider_id, report=report)
    return report


def retry_notification(session: Session, notification_id: int, now: datetime) -> bool:
    """Requeue a failed, unknown or unconfigured row at a coordinator's request (one more
    attempt at least; an unconfigured one is set aside again while its channel still is).

    `attempts` keeps counting: with `claimed_by` it fences late outcomes of older claims.
    """
    row = session.get(Notification, notification_id)
    if row is None or row.status not in RETRYABLE_STATUSES:
        return False
    row.status = NotificationStatus.QUEUED
    row.send_after = now
    row.lease_until = None
    row.claimed_by = None
    session.flush()
    return True
