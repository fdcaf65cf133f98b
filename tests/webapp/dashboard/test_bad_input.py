"""Bad input answers 4xx with a message a coordinator can act on, and changes nothing."""

from __future__ import annotations

from tests.webapp.dashboard.conftest import Dashboard


def test_an_id_past_the_database_integer_is_not_found(any_dash: Dashboard) -> None:
    client = any_dash.client("admin")
    for path in ("/patients/2147483648", "/nurses/9223372036854775808/calendar"):
        assert client.get(path).status_code == 404, path
    refused = any_dash.post("admin", "/appointments/2147483648/cancel", {"reason_code": "other"})
    assert refused.status_code == 404
