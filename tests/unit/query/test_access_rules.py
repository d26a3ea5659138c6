import pytest

from services.query.access import Reader, clean_reason, may_see, may_see_people
from services.shared.auth import Principal, Role
from services.shared.events import Agency


def reader(role, agency, reason=None):
    return Reader(Principal("s", role, agency), reason)


def test_official_records_are_for_everyone():
    assert may_see(reader(Role.ANALYST, Agency.VOLUNTARY), "OFFICIAL", "police", ["police"])


@pytest.mark.parametrize("role", [Role.SAFEGUARDING, Role.ADMIN])
def test_cleared_roles_see_sensitive_records_with_a_reason_only(role):
    assert may_see(reader(role, Agency.HOUSING, "case"), "OFFICIAL-SENSITIVE", "police", ["police"])
    assert not may_see(reader(role, Agency.HOUSING), "OFFICIAL-SENSITIVE", "police", ["police"])


def test_the_owning_agencies_are_the_source_and_every_agency_required():
    for agency in (Agency.POLICE, Agency.FIRE):
        assert may_see(reader(Role.RESPONDER, agency, "x"), "OFFICIAL-SENSITIVE", "police", ["fire"])
    assert not may_see(reader(Role.RESPONDER, Agency.AMBULANCE, "x"), "OFFICIAL-SENSITIVE", "police", ["fire"])


def test_people_are_for_the_operational_roles_of_the_owners_with_a_reason():
    assert may_see_people(reader(Role.CONTROL_ROOM, Agency.COUNCIL, "x"), "council", [])
    assert may_see_people(reader(Role.SAFEGUARDING, Agency.FIRE, "x"), "police", ["fire"])
    assert not may_see_people(reader(Role.CONTROL_ROOM, Agency.COUNCIL), "council", [])  # no reason
    assert not may_see_people(reader(Role.SAFEGUARDING, Agency.VOLUNTARY, "x"), "police", [])  # not an owner
    assert not may_see_people(reader(Role.CCTV_OPERATOR, Agency.COUNCIL, "x"), "council", [])  # not operational
    assert not may_see_people(reader(Role.ANALYST, Agency.POLICE, "x"), "police", [])


def test_a_blank_reason_is_no_reason_and_a_long_one_is_refused():
    assert clean_reason("   ") is None and clean_reason(" duty ") == "duty"
    with pytest.raises(ValueError, match="X-Access-Reason"):
        clean_reason("x" * 501)


def test_a_reason_states_something_in_text_and_carries_no_control_character():
    """A header's bytes arrive as Latin-1 characters: 0x80 0x81 were two C1 controls taken for a reason."""
    def header(text: str) -> str:  # as the server hands a header's UTF-8 bytes over
        return text.encode().decode("latin-1")

    with pytest.raises(ValueError, match="UTF-8"):
        clean_reason("\x80\x81")  # the raw bytes 0x80 0x81: no UTF-8 text
    for nothing in ("\u200b", " \u00a0 ", "...", "\ufeff\u202e"):
        assert clean_reason(header(nothing)) is None, nothing
    assert clean_reason(header("safeguarding référral")) == "safeguarding référral"
    for control in ("duty\u0085call", "duty\x01", "\x80\x81x"):
        with pytest.raises(ValueError):
            clean_reason(header(control))


def test_without_a_reason_sensitive_categories_are_unreachable():
    from services.query.access import reachable_categories

    asked = ["domestic_abuse", "noise", "safeguarding_child"]
    assert reachable_categories(reader(Role.SAFEGUARDING, Agency.COUNCIL), asked) == ["noise"]
    assert reachable_categories(reader(Role.SAFEGUARDING, Agency.COUNCIL, "case"), asked) == asked
