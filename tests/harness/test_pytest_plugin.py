"""The pytest plugin as a user sees it: a test file using `fleet` and `charger`, run by pytest."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TEST = '''
async def test_a_session_reaches_the_csms(charger, fleet):
    await charger.plug(1)
    await charger.swipe(1, "TAG1")
    await charger.wait_for(connector=1, status="Charging", timeout=30)
    start = await fleet.csms.wait_for("StartTransaction", cp=charger.id, timeout=10)
    assert start["payload"]["idTag"] == "TAG1"
    await charger.swipe(1, "TAG1")
    await charger.wait_for(connector=1, status="Finishing", timeout=30)


async def test_second_test_same_fleet(fleet):
    assert len(fleet) == 2
    assert (await fleet["CP-0002"].status(1))["status"] == "Available"
'''


def test_plugin_fixtures_drive_a_fleet(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    result = pytester.runpytest_subprocess("--evfleet-count", "2", "-p", "no:cacheprovider", timeout=240)
    result.assert_outcomes(passed=2)
