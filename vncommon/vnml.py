"""The shape of a VNML request, defined once: where its project, groups and valuations are (SPEC section 7).

vnapi checks a submission with `count_groups`; vnvs counts the groups it runs and finds the valuations
it values with the same functions, so a request that is accepted is also a request that is run whole.

VNML elements (`vnml`, `project`, `group`, `valuation`) are in no namespace. The expressions a request
carries (`/vnml/project/group[1]/valuation`, `vn:link(...)`) are XPath 1.0, where an unprefixed name
matches only an element in no namespace, so a document in a default namespace could never find its
own parts. Such a document is refused with a message saying so rather than run as a request with fewer
groups or valuations than it holds. Elements of other namespaces with other names are ordinary content.
"""

from __future__ import annotations

from lxml import etree

from vncommon.errors import InvalidVnml

ROOT = "vnml"
PROJECT = "project"
GROUP = "group"
VALUATION = "valuation"
# A namespaced element with one of these names at the top of the tree is a VNML element in the wrong
# namespace, not foreign content: matching it by local name here and by tag elsewhere is the split
# this module exists to prevent.
_STRUCTURE = frozenset({ROOT, PROJECT, GROUP, VALUATION})


def is_named(element: etree._Element, name: str) -> bool:
    """True for an element `<name>` in no namespace (not a comment or PI, not `<x:name>`)."""
    return isinstance(element.tag, str) and element.tag == name


def children(parent: etree._Element, name: str) -> list[etree._Element]:
    """The child elements `<name>` of `parent` in no namespace, in document order."""
    return [child for child in parent if is_named(child, name)]


def project_of(root: etree._Element) -> etree._Element | None:
    """The request's project (the first one; a checked request has exactly one)."""
    found = children(root, PROJECT)
    return found[0] if found else None


def groups_of(root: etree._Element) -> list[etree._Element]:
    """The groups of the request's project in execution order; empty without a project."""
    project = project_of(root)
    return [] if project is None else children(project, GROUP)


def valuations_of(group: etree._Element) -> list[etree._Element]:
    """The valuations a group values, as written (before any fan-out)."""
    return children(group, VALUATION)


def count_groups(root: etree._Element) -> int:
    """Check the request's shape and return its number of groups; InvalidVnml names the first problem.

    Root `<vnml>`, exactly one `<project>`, at least one `<group>`, each holding at least one
    `<valuation>`, all of them in no namespace.
    """
    _check_structure_name(root)
    if not is_named(root, ROOT):
        raise _invalid(root, f"the root element is <{_name(root)}>, expected <{ROOT}>")
    _check_children(root)
    projects = children(root, PROJECT)
    if len(projects) != 1:
        raise _invalid(root, f"<{ROOT}> must hold exactly one <{PROJECT}>, found {len(projects)}")
    project = projects[0]
    _check_children(project)
    groups = children(project, GROUP)
    if not groups:
        raise _invalid(project, f"the <{PROJECT}> holds no <{GROUP}>")
    for position, group in enumerate(groups, start=1):
        _check_children(group)
        if not valuations_of(group):
            name = group.get("name", "")
            label = f" {name!r}" if name else ""
            raise _invalid(group, f"group {position}{label} holds no <{VALUATION}>")
    return len(groups)


def _check_children(parent: etree._Element) -> None:
    for child in parent:
        if isinstance(child.tag, str):
            _check_structure_name(child)


def _check_structure_name(element: etree._Element) -> None:
    if not str(element.tag).startswith("{"):
        return  # no namespace: the common case, decided without building a QName
    qname = etree.QName(element)
    if qname.localname in _STRUCTURE:
        raise _invalid(
            element,
            f"<{_name(element)}> is in namespace {qname.namespace!r}; VNML elements must be in no namespace "
            f"(remove the xmlns declaration or the prefix)",
        )


def _name(element: etree._Element) -> str:
    """The element's name as written: `prefix:local` or `local`."""
    local = str(etree.QName(element).localname)
    return f"{element.prefix}:{local}" if element.prefix else local


def _invalid(element: etree._Element, message: str) -> InvalidVnml:
    line = element.sourceline or 1
    path = element.getroottree().getpath(element)
    return InvalidVnml(f"{message} (line {line})", {"line": str(line), "element": path})
