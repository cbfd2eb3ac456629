"""The engine's own budgets: output charged while it is produced, fan-out stopped while it is built, depth
checked before a task exists, XPath without extensions (fast, in-process; tests/security has the mesh)."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable

import pytest

from tests.vnvs.conftest import make_request
from vncommon.xmlsafe import parse_xml
from vnvs.hydration.errors import HydrationError, HydrationLimitExceeded

SMALL = 1024 * 1024


def _bounded(run: Callable[[], object], seconds: float = 2.0, peak_bytes: int = 64 * SMALL) -> HydrationError:
    """Run `run`, returning what it raised; it must finish within `seconds` and `peak_bytes` of Python memory."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        run()
    except HydrationError as exc:
        return exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert time.monotonic() - started < seconds
        assert peak < peak_bytes, peak
    raise AssertionError("hydration succeeded")


def test_a_chain_of_doubling_variables_stops_at_the_byte_budget(hydrate):
    declarations = '<?vnvs $V0 = "0123456789" ?>' + "".join(
        f'<?vnvs $V{n} = "$V{n - 1}$V{n - 1}" ?>' for n in range(1, 41))
    root = make_request('<group name="g"><valuation name="v"><d>$V40</d></valuation></group>',
                        declarations=declarations)
    error = _bounded(lambda: hydrate(root, max_group_task_bytes=SMALL))
    assert isinstance(error, HydrationLimitExceeded) and error.limit == "HYDRATION_MAX_GROUP_TASK_BYTES"
    assert error.reason == "HYDRATION_LIMIT" and error.metadata["limit"] == error.limit


def test_two_selects_of_a_node_holding_them_stop_at_the_byte_budget(hydrate):
    twice = "${select(/vnml/project/portfolio)}" * 2
    root = make_request(f'<group name="g"><valuation name="v"><d>{twice}</d></valuation></group>',
                        reference=f"<portfolio>{twice}" + "<i>x</i>" * 500 + "</portfolio>")
    error = _bounded(lambda: hydrate(root, max_group_task_bytes=SMALL))
    assert isinstance(error, HydrationLimitExceeded) and "expanded more than" in error.problem
    assert len(error.expression) < 400  # the runaway text is quoted clipped, not whole


def test_a_vn_link_use_stops_at_the_clone_limit_before_building_every_pair(hydrate):
    root = make_request('<group name="g"><valuation name="v" use="vn:link(//*, //*)"/></group>',
                        reference="<portfolio>" + "<i/>" * 3000 + "</portfolio>")
    error = _bounded(lambda: hydrate(root, max_clones_per_group=1000))
    assert isinstance(error, HydrationLimitExceeded) and error.limit == "HYDRATION_MAX_CLONES_PER_GROUP"
    assert "more than 1000 clones" in error.problem


def test_a_vn_link_select_stops_at_the_second_node(hydrate):
    root = make_request('<group name="g"><valuation name="v"><x select="vn:link(//*, //*)"/></valuation></group>',
                        reference="<portfolio>" + "<i/>" * 3000 + "</portfolio>")
    error = _bounded(lambda: hydrate(root))
    assert "select found more than one node" in error.problem


def test_content_nested_past_the_parser_depth_fails_at_hydration(hydrate):
    deep = "<d>" * 150 + '<y select="/vnml/project/model/e"/>' + "</d>" * 150
    root = make_request('<group name="g"><valuation name="v"><x select="/vnml/project/portfolio/d"/>'
                        "</valuation></group>",
                        reference=f"<portfolio>{deep}</portfolio><model>{'<e>' * 150}{'</e>' * 150}</model>")
    error = _bounded(lambda: hydrate(root))
    assert isinstance(error, HydrationLimitExceeded) and error.limit == "XML_DEPTH"
    assert error.element_path.startswith("/vnml/project/group/valuation[1]/d/d")


def test_content_just_within_the_parser_depth_is_hydrated(hydrate):
    # valuation at depth 4, then 252 levels below it: 256 in all, what the parser accepts.
    root = make_request('<group name="g"><valuation name="v"><x select="/vnml/project/portfolio/d"/>'
                        "</valuation></group>",
                        reference=f"<portfolio>{'<d>' * 126}<y select='/vnml/project/model/e'/>{'</d>' * 126}"
                                  f"</portfolio><model>{'<e>' * 126}{'</e>' * 126}</model>")
    [document] = hydrate(root)
    assert document.xml.count(b"<e") == 126
    parse_xml(document.xml)  # exactly as deep as a worker's parser accepts


@pytest.mark.parametrize(("namespace", "call"), [
    ("http://exslt.org/strings", "str:padding(2000000000, 'x')"),
    ("http://exslt.org/regular-expressions", "re:test('a', 'a')"),
    ("http://exslt.org/math", "math:max(//i)"),
    ("http://exslt.org/sets", "set:distinct(//i)"),
    ("http://exslt.org/dates-and-times", "date:year()"),
])
def test_exslt_functions_are_off_even_when_the_document_declares_their_namespace(hydrate, namespace, call):
    prefix = call.split(":")[0]
    text = (f'<vnml xmlns:{prefix}="{namespace}"><project><portfolio><i/></portfolio><group name="g">'
            f'<valuation name="v"><x select="{call}"/></valuation></group></project></vnml>')
    error = _bounded(lambda: hydrate(parse_xml(text.encode())))
    assert "unknown namespace prefix" in error.problem
