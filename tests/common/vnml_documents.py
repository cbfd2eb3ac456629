"""Namespaced VNML documents shared by the validator tests (vnapi) and the run tests (vnvs), so both
sides are held to the same verdict on the same bytes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Case:
    """A document and its verdict: the group count when valid, else words the refusal must contain."""

    name: str
    xml: bytes
    groups: int = 0
    refusal: tuple[str, ...] = ()
    line: int = 0  # the line the refusal names


REFUSED = [
    Case("default namespace on the root",
         b'<vnml xmlns="urn:x"><project><group><valuation name="v"/></group></project></vnml>',
         refusal=("<vnml> is in namespace 'urn:x'", "no namespace"), line=1),
    Case("prefixed elements",
         b'<v:vnml xmlns:v="urn:v">\n<v:project><v:group><v:valuation/></v:group></v:project></v:vnml>',
         refusal=("<v:vnml> is in namespace 'urn:v'",), line=1),
    Case("a namespaced group inside a plain project",
         b'<vnml><project>\n<group name="a"><valuation name="v"/></group>\n'
         b'<x:group xmlns:x="urn:x" name="b"><x:valuation name="w"/></x:group>\n</project></vnml>',
         refusal=("<x:group> is in namespace 'urn:x'",), line=3),
    Case("a namespaced valuation beside a plain one",
         b'<vnml><project><group name="a">\n<valuation name="v"/>\n<valuation xmlns="urn:y" name="w"/>\n'
         b"</group></project></vnml>",
         refusal=("<valuation> is in namespace 'urn:y'",), line=3),
    Case("a project in a default namespace under a plain root",
         b'<vnml>\n<project xmlns="urn:p"><group><valuation/></group></project></vnml>',
         refusal=("<project> is in namespace 'urn:p'",), line=2),
]

ACCEPTED = [
    Case("foreign-namespace children are content, not structure",
         b'<vnml xmlns:ext="urn:ext"><project name="p"><ext:note>kept</ext:note>'
         b'<group name="g"><ext:tag/><valuation name="v1"><ext:extra/></valuation>'
         b'<valuation name="v2"/></group><group name="h"><valuation name="v3"/></group></project></vnml>',
         groups=2),
    Case("an explicit empty default namespace is no namespace",
         b'<vnml xmlns=""><project><group><valuation name="v"/></group></project></vnml>', groups=1),
]
