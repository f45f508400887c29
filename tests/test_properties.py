"""Property-based checks of the JSON validation.

The table port against a reference model, on every engine, is in the
conformance kit (stateport.testing.TableModelConformance).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import stateport

mostly_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats()
    | st.text(max_size=3)
    | st.sampled_from([(1, 2), {1}, b"x", object()]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.one_of(st.text(max_size=3), st.integers(0, 2)), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(value=mostly_json, portable=st.booleans())
def test_the_fast_json_check_agrees_with_the_explaining_one(value: Any, portable: bool) -> None:
    from stateport import _json

    def outcome(check: Any) -> str | None:
        try:
            check(value, portable=portable, where="v")
        except stateport.ValidationError as e:
            return str(e)
        return None

    # the explaining walk raises a ValidationError exactly when the value is
    # invalid; on a valid value it finds nothing to explain and says so
    fast = outcome(_json.check_json)
    try:
        slow = outcome(_json._explain)
    except AssertionError:
        slow = None
    assert fast == slow
