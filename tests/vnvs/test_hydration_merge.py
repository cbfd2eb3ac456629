"""Merging local over remote elements."""

from __future__ import annotations

from lxml import etree

from vnvs.hydration.merge import find_match, merge


def merged(local: str, remote: str) -> str:
    return etree.tostring(merge(etree.fromstring(local), etree.fromstring(remote))).decode()


def test_the_result_takes_the_remote_tag():
    assert merged('<local a="1"/>', "<remote/>") == '<remote a="1"/>'


def test_local_attributes_override_remote_ones_and_remote_only_attributes_are_kept():
    assert merged('<m ccy="EUR"/>', '<m ccy="USD" name="EOD"/>') == '<m ccy="EUR" name="EOD"/>'


def test_text_is_local_unless_blank():
    assert merged("<a>local</a>", "<a>remote</a>") == "<a>local</a>"
    assert merged("<a>  </a>", "<a>remote</a>") == "<a>remote</a>"


def test_local_children_merge_into_remote_ones_and_local_only_children_stay():
    result = merged(
        '<m><curve name="USD" shift="1"/><note>mine</note></m>',
        '<m><curve name="EUR"/><curve name="USD" points="3"/></m>',
    )
    assert result == '<m><curve name="USD" points="3" shift="1"/><note>mine</note><curve name="EUR"/></m>'


def test_children_match_by_id_when_they_have_no_name():
    assert merged('<m><c id="2" x="l"/></m>', '<m><c id="1"/><c id="2" y="r"/></m>') == (
        '<m><c id="2" y="r" x="l"/><c id="1"/></m>'
    )


def test_children_without_keys_match_by_position_within_their_tag():
    assert merged("<m><p>9</p><p/></m>", "<m><p>1</p><q/><p>2</p></m>") == "<m><p>9</p><p>2</p><q/></m>"


def test_a_named_local_child_without_a_namesake_is_not_merged_by_position():
    assert merged('<m><c name="new"/></m>', '<m><c name="old"/></m>') == '<m><c name="new"/><c name="old"/></m>'


def test_matched_pairs_merge_recursively():
    result = merged("<a><b><c>1</c></b></a>", '<a><b><c z="z"/><d/></b></a>')
    assert result == '<a><b><c z="z">1</c><d/></b></a>'


def test_merge_does_not_change_the_remote_element():
    remote = etree.fromstring('<m a="1"><c/></m>')
    merge(etree.fromstring('<m b="2"><c x="1"/></m>'), remote)
    assert etree.tostring(remote) == b'<m a="1"><c/></m>'


def test_a_fetched_counterpart_is_found_at_the_same_path_first():
    fetched = etree.fromstring('<vnml><project><market name="A"/><market name="B"/></project></vnml>')
    local = etree.fromstring('<market name="B"/>')
    assert find_match(fetched, local, "/vnml/project/market[1]")[0].get("name") == "A"


def test_a_fetched_counterpart_falls_back_to_name_then_id_then_single_tag():
    fetched = etree.fromstring('<lib><market name="A" id="1"/><market name="B" id="2"/><model/></lib>')
    assert find_match(fetched, etree.fromstring('<market name="B"/>'), "/x")[0].get("id") == "2"
    assert find_match(fetched, etree.fromstring('<market id="1"/>'), "/x")[0].get("name") == "A"
    assert find_match(fetched, etree.fromstring("<model/>"), "/x")[0].tag == "model"
    assert len(find_match(fetched, etree.fromstring("<market/>"), "/x")) == 2
