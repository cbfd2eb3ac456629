"""${name(args)} functions: built-ins, entry-point plugins, errors."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest

from tests.vnvs.conftest import make_request, valuation_of
from vnvs.hydration import HydrationError


def hydrate_one(hydrate, valuation: str, reference: str = ""):
    return valuation_of(hydrate(make_request(f'<group name="g">{valuation}</group>', reference))[0])


def test_today_now_uuid_and_request_id_are_built_in(hydrate):
    valuation = hydrate_one(
        hydrate, '<valuation name="v" id="${uuid()}" req="${requestId()}"><d>${today()} at ${now()}</d></valuation>'
    )
    uuid.UUID(valuation.get("id"))
    assert valuation.get("req") == "req-1"
    day, _, moment = valuation.findtext("d").partition(" at ")
    assert day == datetime.now(UTC).date().isoformat()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", moment)


def test_select_works_inside_text(hydrate):
    valuation = hydrate_one(
        hydrate,
        '<valuation name="v"><d>ccy=${select(/vnml/project/market/@ccy)};</d></valuation>',
        '<market ccy="USD"/>',
    )
    assert valuation.findtext("d") == "ccy=USD;"


def test_an_unknown_function_is_an_error_naming_the_call(hydrate):
    with pytest.raises(HydrationError, match=r"unknown function nope\(\)") as caught:
        hydrate_one(hydrate, '<valuation name="v"><d>${nope()}</d></valuation>')
    assert caught.value.expression == "${nope()}"
    assert caught.value.element_path == "/vnml/project/group/valuation[1]/d"


def test_a_wrong_argument_count_is_an_error(hydrate):
    with pytest.raises(HydrationError, match=r"wrong argument count for today\(\) \(1 given\)"):
        hydrate_one(hydrate, '<valuation name="v" d="${today(1)}"/>')


def test_an_unterminated_call_is_an_error(hydrate):
    with pytest.raises(HydrationError, match="unterminated"):
        hydrate_one(hydrate, '<valuation name="v" d="${today("/>')


def test_text_that_only_looks_like_a_call_is_left_alone(hydrate):
    assert hydrate_one(hydrate, '<valuation name="v" d="${HOME} and ${"/>').get("d") == "${HOME} and ${"


def test_a_function_registered_by_entry_point_is_called_with_the_context_and_arguments(hydrate, install_plugin):
    install_plugin(
        "shout",
        """
        def function(ctx, text, suffix="!"):
            return text.upper() + suffix + ctx.request_id + ":" + ctx.select("@name")
        """,
    )
    valuation = hydrate_one(hydrate, """<valuation name="v" d="${shout('hi, there', '?')}"/>""")
    assert valuation.get("d") == "HI, THERE?req-1:v"


def test_a_plugin_that_raises_is_a_hydration_error(hydrate, install_plugin):
    install_plugin("boom", "def function(ctx):\n    raise RuntimeError('bad')\n")
    with pytest.raises(HydrationError, match=r"boom\(\) failed \(bad\)"):
        hydrate_one(hydrate, '<valuation name="v" d="${boom()}"/>')


def test_a_plugin_returning_something_else_than_str_is_a_hydration_error(hydrate, install_plugin):
    install_plugin("number", "def function(ctx):\n    return 3\n")
    with pytest.raises(HydrationError, match="returned int"):
        hydrate_one(hydrate, '<valuation name="v" d="${number()}"/>')


def test_a_plugin_with_the_wrong_arity_is_reported_as_wrong_argument_count(hydrate, install_plugin):
    install_plugin("pair", "def function(ctx, a, b):\n    return a + b\n")
    with pytest.raises(HydrationError, match="wrong argument count"):
        hydrate_one(hydrate, '<valuation name="v" d="${pair(x)}"/>')
