"""Variables declared by <?vnvs ?> processing instructions."""

from __future__ import annotations

import pytest

from tests.vnvs.conftest import make_request, valuation_of
from vnvs.hydration import HydrationError


def test_declared_variables_replace_tokens_in_text_and_attributes(hydrate):
    root = make_request(
        '<group name="g"><valuation name="v" date="$DAY"><d>on $DAY</d></valuation></group>',
        declarations='<?vnvs $DAY = "2025-06-30" ?>',
    )
    valuation = valuation_of(hydrate(root)[0])
    assert valuation.get("date") == "2025-06-30"
    assert valuation.findtext("d") == "on 2025-06-30"


def test_a_later_declaration_wins(hydrate):
    root = make_request(
        '<group name="g"><?vnvs $X = "second" ?><valuation name="v"><d>$X</d></valuation></group>',
        declarations="<?vnvs $X = 'first' ?>",
    )
    assert valuation_of(hydrate(root)[0]).findtext("d") == "second"


def test_unknown_tokens_stay_as_they_are(hydrate):
    root = make_request(
        '<group name="g"><valuation name="v"><d>$UNKNOWN and $X2 cost $5</d></valuation></group>',
        declarations='<?vnvs $X = "x" ?>',
    )
    assert valuation_of(hydrate(root)[0]).findtext("d") == "$UNKNOWN and $X2 cost $5"


def test_declarations_inside_comments_and_cdata_do_not_count(hydrate):
    root = make_request(
        '<group name="g"><!-- <?vnvs $X = "comment" ?> --><valuation name="v">'
        '<d>$X</d><e><![CDATA[<?vnvs $X = "cdata" ?>]]></e></valuation></group>',
        declarations='<?vnvs $X = "real" ?>',
    )
    assert valuation_of(hydrate(root)[0]).findtext("d") == "real"


def test_a_malformed_declaration_is_a_hydration_error(hydrate):
    root = make_request('<group name="g"><valuation name="v"/></group>', declarations="<?vnvs X = oops ?>")
    with pytest.raises(HydrationError, match="malformed variable declaration"):
        hydrate(root)


def test_a_variable_may_refer_to_another_declared_before_or_after_it(hydrate):
    root = make_request(
        '<group name="g"><valuation name="v"><d>$A</d></valuation></group>',
        declarations='<?vnvs $A = "$B" ?><?vnvs $B = "b" ?>',
    )
    assert valuation_of(hydrate(root)[0]).findtext("d") == "b"


def test_a_self_growing_variable_is_an_error_naming_the_cycle(hydrate):
    root = make_request(
        '<group name="g"><valuation name="v"><d>$A</d></valuation></group>',
        declarations='<?vnvs $A = "x$B" ?><?vnvs $B = "y$A" ?>',
    )
    with pytest.raises(HydrationError, match=r"variable \$A refers to itself \(\$A -> \$B -> \$A\)"):
        hydrate(root, max_passes=5)
