"""The one definition of a valid VNML request: shape, group count and the no-namespace rule."""

from __future__ import annotations

import pytest

from tests.common.vnml_documents import ACCEPTED, REFUSED, Case
from vncommon import vnml
from vncommon.errors import InvalidVnml
from vncommon.xmlsafe import parse_xml


@pytest.mark.parametrize("case", REFUSED, ids=lambda case: case.name)
def test_a_namespaced_vnml_element_is_refused_naming_it_and_its_line(case: Case) -> None:
    with pytest.raises(InvalidVnml) as caught:
        vnml.count_groups(parse_xml(case.xml))
    for words in case.refusal:
        assert words in caught.value.message
    assert caught.value.metadata["line"] == str(case.line)


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda case: case.name)
def test_foreign_content_is_ignored_and_the_groups_are_counted(case: Case) -> None:
    root = parse_xml(case.xml)
    assert vnml.count_groups(root) == case.groups == len(vnml.groups_of(root))


def test_the_finders_see_only_elements_in_no_namespace() -> None:
    root = parse_xml(b'<vnml xmlns:x="urn:x"><project><!-- c --><group><x:valuation/><valuation name="a"/>'
                     b"<?pi?><valuation name='b'/></group><x:group/></project></vnml>")
    [group] = vnml.groups_of(root)
    assert [v.get("name") for v in vnml.valuations_of(group)] == ["a", "b"]
    assert vnml.project_of(parse_xml(b"<vnml/>")) is None and vnml.groups_of(parse_xml(b"<vnml/>")) == []


@pytest.mark.parametrize(("xml", "words"), [
    (b"<request><project><group><valuation/></group></project></request>", "expected <vnml>"),
    (b"<vnml><project/><project/></vnml>", "exactly one <project>"),
    (b"<vnml><project><calculator/></project></vnml>", "holds no <group>"),
    (b"<vnml><project><group name='g'><note/></group></project></vnml>", "group 1 'g' holds no <valuation>"),
])
def test_each_shape_rule_has_its_own_message(xml: bytes, words: str) -> None:
    with pytest.raises(InvalidVnml, match=words):
        vnml.count_groups(parse_xml(xml))
