"""Condition matching: which nurse specialisations suit which patient conditions.

Ranking nurses for a patient (and the phone agent's automatic assignment) scores a nurse up
when one of her specialisations covers one of the patient's conditions. Coordinators keep
that mapping here; a condition left without specialisations matches no one in particular.
"""

from __future__ import annotations

from collections import defaultdict

from flask import request
from sqlalchemy import select
from werkzeug.wrappers import Response

from core.errors import ValidationError
from core.models import ConditionSpecialization, Nurse, Role
from core.operations import ConditionMapping, validate_form
from core.services.assignments import set_condition_mapping
from webapp import db
from webapp.auth import now_utc, roles_required
from webapp.dashboard.common import actor, blueprint, errors_of, render

bp = blueprint("matching", __name__, url_prefix="/matching")
STAFF = (Role.ADMIN, Role.COORDINATOR)


def _mapping() -> dict[str, list[str]]:
    rows = db.session.scalars(
        select(ConditionSpecialization).order_by(
            ConditionSpecialization.condition, ConditionSpecialization.specialization
        )
    )
    mapping: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        mapping[row.condition].append(row.specialization)
    return dict(mapping)


def _known_specialisations() -> list[str]:
    found = {
        skill.strip().lower()
        for skills in db.session.scalars(
            select(Nurse.specializations).where(Nurse.active.is_(True))
        )
        for skill in skills or []
        if skill.strip()
    }
    return sorted(found)


def _page(errors: dict[str, str], status: int = 200, notice: str = "") -> Response:
    return render(
        "matching/page.html",
        "matching/_mapping.html",
        status=status,
        mapping=_mapping(),
        known=_known_specialisations(),
        errors=errors,
        form=request.form if errors else None,
        notice=notice,
    )


@bp.get("/")
@roles_required(*STAFF)
def index() -> Response:
    """Each condition with the specialisations that cover it."""
    return _page({})


@bp.post("/")
@roles_required(*STAFF)
def save() -> Response:
    """Set one condition's specialisations (none: the condition is removed)."""
    mapping, errors = validate_form(ConditionMapping, request.form)
    if mapping is None:
        return _page(errors, 422)
    try:
        set_condition_mapping(db.session(), **mapping.model_dump(), actor=actor(), now=now_utc())
    except ValidationError as exc:
        db.session.rollback()
        return _page(errors_of(exc), 422)
    db.session.commit()
    return _page({}, notice=f"Saved {mapping.condition.lower()}.")
