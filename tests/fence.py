"""Reading rows the way an agent gets them: only from inside run_scoped_query's per-call boundary."""

from __future__ import annotations

import json
import re

_FENCED = re.compile(r"<(untrusted-data-[0-9a-f]{16})>\n(.*)\n</\1>", re.S)


def rows_in_fence(result: dict) -> list:
    """The rows of a run_scoped_query structured result, parsed from inside its boundary."""
    match = _FENCED.search(result["wrapped_rows"])
    assert match, "wrapped_rows has no untrusted-data boundary"
    return json.loads(match.group(2))["rows"]
