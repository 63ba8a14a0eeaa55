"""The JSON Schema of the experiment format, generated from the models (``chaoskit schema``).

``schemas/experiment.schema.json`` is this output; a test keeps the committed file from drifting.
"""

from __future__ import annotations

import json
from typing import Any

from chaoskit import describing
from chaoskit.spec import models

ID = "https://chaoskit.dev/schemas/experiment.schema.json"


def json_schema() -> dict[str, Any]:
    """The schema of an experiment file, keys as users write them (``with``, ``in``)."""
    schema = describing.json_schema(models.Experiment)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": ID,
        "title": "chaoskit experiment",
        **{key: value for key, value in schema.items() if key != "title"},
    }


def dumps() -> str:
    """The schema as the committed file holds it: pretty, keys sorted, final newline."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
