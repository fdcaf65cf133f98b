"""`flask --app wsgi create-token EMAIL`: prints a working token once, stores only its hash."""

from __future__ import annotations

import re

from sqlalchemy import select

from core.models import ApiToken
from tests.webapp.api.conftest import ApiWorld
from webapp import db


def test_create_token_prints_a_token_that_works_and_stores_its_hash(api: ApiWorld) -> None:
    runner = api.app.test_cli_runner()

    result = runner.invoke(args=["create-token", "Coordinator@Example.test", "--name", "EHR"])

    assert result.exit_code == 0, result.output
    plaintext = re.findall(r"^(cmx_\S+)$", result.output, re.MULTILINE)[0]
    response = api.client.get("/api/v1/nurses", headers={"Authorization": f"Bearer {plaintext}"})
    assert response.status_code == 200
    with api.app.app_context():
        stored = db.session.scalars(select(ApiToken).where(ApiToken.name == "EHR")).one()
        assert stored.user_id == api.ids["coordinator_user"]
        assert plaintext not in stored.token_hash


def test_create_token_for_an_unknown_email_exits_non_zero(api: ApiWorld) -> None:
    before = api.count(ApiToken)

    result = api.app.test_cli_runner().invoke(args=["create-token", "nobody@example.test"])

    assert result.exit_code != 0
    assert "No login" in result.output
    assert api.count(ApiToken) == before


def test_create_token_refuses_a_deactivated_login(api: ApiWorld) -> None:
    from core.models import User

    with api.app.app_context():
        user = db.session.get(User, api.ids["admin_user"])
        assert user is not None
        user.active = False
        db.session.commit()

    result = api.app.test_cli_runner().invoke(args=["create-token", "admin@example.test"])

    assert result.exit_code != 0
    assert "deactivated" in result.output


def test_list_and_revoke_tokens_by_command(api: ApiWorld) -> None:
    runner = api.app.test_cli_runner()
    with api.app.app_context():
        token_id = db.session.scalar(
            select(ApiToken.id).where(ApiToken.user_id == api.ids["nurse_user"])
        )

    listed = runner.invoke(args=["list-tokens", "nurse@example.test"])
    revoked = runner.invoke(args=["revoke-token", str(token_id)])
    unknown = runner.invoke(args=["revoke-token", "999"])

    assert listed.exit_code == 0 and "active" in listed.output and "cmx_" in listed.output
    assert revoked.exit_code == 0, revoked.output
    assert unknown.exit_code != 0 and "No API token" in unknown.output
    assert api.get("/nurses", "nurse").status_code == 401
    assert "revoked" in runner.invoke(args=["list-tokens", "nurse@example.test"]).output
