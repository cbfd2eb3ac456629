"""Generated documents: hydration always ends, and only ever with results or a HydrationError."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vncommon.xmlsafe import parse_xml
from vnvs.assembly import apply_results, assemble_response
from vnvs.hydration import HydrationEngine, HydrationError, HydrationSettings

FILES = Path(tempfile.mkdtemp(prefix="vn-hydration-props-"))
(FILES / "ok.xml").write_bytes(b'<vnml><project><a name="x"><b/></a></project></vnml>')
(FILES / "loop.xml").write_bytes(b'<a name="x" href="loop.xml"/>')

TAGS = st.sampled_from(["a", "b", "instrument", "market", "x"])
EXPRESSIONS = st.sampled_from(
    [
        ".",
        "..",
        "/vnml/project/*",
        "/vnml/project/a",
        "//b",
        "a",
        "vn:link(/vnml/project, *)",
        "vn:link(., b)",
        "vn:link(.)",
        "/vnml/nothing | /vnml/project/a[1]",
        "/vnml/[[",
        "zz:x",
        "/vnml/project/a[@name=${select(/vnml/project/a[1]/@name)}]",
        "${nope()}",
        "@name",
        "text()",
        "/vnml/project/group[1]/valuation",
        "//*[@select]",
        "count(//a)",
        "/vnml",
        "$V",
    ]
)
VALUES = st.sampled_from(
    ["plain", "$V", "$UNKNOWN", "${today()}", "${select(.)}", "${select(//a)}", "${uuid(", "${requestId()}", "${x}"]
)
HREFS = st.sampled_from(["missing.xml", "ok.xml", "loop.xml", "http://h/x.xml", "s3://b/k.xml", "../ok.xml", "$V"])


@st.composite
def elements(draw: Any, depth: int = 0) -> str:
    tag = draw(TAGS)
    attributes = {"name": draw(st.sampled_from(["x", "y", "O'Hara"]))}
    if draw(st.booleans()):
        attributes["select"] = draw(EXPRESSIONS)
    if draw(st.integers(0, 5)) == 0:
        attributes["href"] = draw(HREFS)
    if draw(st.booleans()):
        attributes["v"] = draw(VALUES)
    children = draw(st.lists(elements(depth + 1), max_size=2 if depth < 3 else 0))
    text = draw(VALUES) if draw(st.booleans()) else ""
    rendered = "".join(f" {k}={quoteattr(v)}" for k, v in attributes.items())
    return f"<{tag}{rendered}>{_escape(text)}{''.join(children)}</{tag}>"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;")


@st.composite
def valuations(draw: Any) -> str:
    use = f" use={quoteattr(draw(EXPRESSIONS))}" if draw(st.booleans()) else ""
    body = "".join(draw(st.lists(elements(), max_size=3)))
    return f'<valuation name="v"{use}>{body}</valuation>'


@st.composite
def requests(draw: Any) -> bytes:
    declarations = '<?vnvs $V = "/vnml/project/a" ?>' if draw(st.booleans()) else ""
    reference = "".join(draw(st.lists(elements(), max_size=3)))
    groups = []
    for _ in range(draw(st.integers(1, 3))):
        use = f" use={quoteattr(draw(EXPRESSIONS))}" if draw(st.integers(0, 4)) == 0 else ""
        groups.append(f'<group name="g"{use}>{"".join(draw(st.lists(valuations(), min_size=1, max_size=2)))}</group>')
    project = f'<project name="p">{reference}{"".join(groups)}</project>'
    return f'<?xml version="1.0"?>{declarations}<vnml>{project}</vnml>'.encode()


def _broken_s3() -> Any:
    raise RuntimeError("no S3 in property tests")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_generated_requests_end_with_tasks_or_a_hydration_error(data: bytes) -> None:
    root = parse_xml(data)
    limits = HydrationSettings(file_roots=(FILES,), max_passes=8, max_group_task_bytes=4 * 1024 * 1024)
    engine = HydrationEngine(limits, "req", s3_client_factory=_broken_s3)
    try:
        engine.prepare(root)
        for index in range(len(root.findall("project/group"))):
            documents = engine.hydrate_group(root, index)
            assert [d.task_id for d in documents] == [str(n) for n in range(1, len(documents) + 1)]
            apply_results(root, index, [d.xml for d in documents])
    except HydrationError as exc:
        assert exc.expression is not None and exc.element_path.startswith("/")
        return
    assert assemble_response(root, "req").startswith(b"<?xml")
