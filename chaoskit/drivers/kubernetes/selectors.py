"""Label selectors as Kubernetes writes them (``app=web,tier in (a,b),!canary``), read into the
``LabelSelector`` object a NetworkPolicy needs."""

from __future__ import annotations

import re

from chaoskit.errors import DriverError
from chaoskit.kube import apis

JSON = apis.JSON
_REQUIREMENT = re.compile(
    r"\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9][-A-Za-z0-9_./]*)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<value>[-A-Za-z0-9_.]*)"
    r"|\s(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?\s*"
)


def _split_requirements(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts


def label_selector_object(selector: str | None) -> JSON:
    """A label selector string (``app=web,tier in (a,b),!canary``) as a LabelSelector object, the
    form NetworkPolicies need; an empty selector selects every pod of the namespace."""
    if not selector or not selector.strip():
        return {}
    match_labels: dict[str, str] = {}
    expressions: list[JSON] = []
    for part in _split_requirements(selector):
        m = _REQUIREMENT.fullmatch(part)
        if not m or (m.group("neg") and (m.group("op") or m.group("setop"))):
            raise DriverError(
                f"label selector {selector!r}: can't read {part.strip()!r}",
                hint="write requirements like app=web, tier!=db, env in (a,b), !canary",
            )
        key = m.group("key")
        if m.group("neg"):
            expressions.append({"key": key, "operator": "DoesNotExist"})
        elif m.group("op") in ("=", "=="):
            match_labels[key] = m.group("value")
        elif m.group("op") == "!=":
            expressions.append({"key": key, "operator": "NotIn", "values": [m.group("value")]})
        elif m.group("setop"):
            values = [v.strip() for v in m.group("values").split(",") if v.strip()]
            operator = "In" if m.group("setop") == "in" else "NotIn"
            expressions.append({"key": key, "operator": operator, "values": values})
        else:
            expressions.append({"key": key, "operator": "Exists"})
    result: JSON = {}
    if match_labels:
        result["matchLabels"] = match_labels
    if expressions:
        result["matchExpressions"] = expressions
    return result
