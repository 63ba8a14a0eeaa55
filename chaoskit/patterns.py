"""``Regex``: a text field that must be a valid regular expression, refused when the file is
validated rather than when the pattern is first used mid-run."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator


def compiles(value: str) -> str:
    """``value`` if it is a valid regular expression; raises ``ValueError`` saying why not."""
    try:
        re.compile(value)
    except re.error as e:
        raise ValueError(f"not a valid regular expression: {e}") from None
    return value


Regex = Annotated[str, AfterValidator(compiles)]
