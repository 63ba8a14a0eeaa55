"""How each type of Chaos Toolkit provider runs in chaoskit: one ``Provider`` entry per type, with
the activity that runs it, its arguments, and where its tolerances look in the activity's output.

The translator (``chaostoolkit``) only looks a provider's type up in such a table: running
another type of provider is one more entry (``BUILT_IN`` here, or a table given to
``chaostoolkit.translate``), not a change to the translator.
"""

from __future__ import annotations

import re
import shlex
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import JsonValue

from chaoskit.spec import paths

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][\w-]*)\}")
_TEMPLATE = re.compile(r"(\$\{[^{}]*\})")


class Report(Protocol):
    """Where a translation reports what it can't translate (an issue) or what deserves a change."""

    def issue(self, at: paths.Location, message: str) -> None: ...

    def warn(self, at: paths.Location, message: str) -> None: ...


Arguments = Callable[[Mapping[str, Any], paths.Location, Report], dict[str, JsonValue] | None]
"""The activity's ``with:`` for a provider's keys (without ``type`` and ``secrets``; its ``${key}``
secrets already written as ``${secrets.<name>}``), given where the provider is; None, with the
problem reported, when it can't run."""


@dataclass(frozen=True)
class Provider:
    """One type of Chaos Toolkit provider, as chaoskit runs it."""

    type: str
    """The provider's ``type:`` in a Chaos Toolkit file, e.g. ``process``."""
    activity: str
    """The chaoskit activity that runs it, e.g. ``process.command``."""
    arguments: Arguments
    """How the provider's keys become the activity's ``with:`` (see ``Arguments``)."""
    targets: Mapping[str, str] | None = None
    """A tolerance's ``target:`` → the path in the activity's output that it checks. None when the
    output is the provider's value itself (then a target is a path in it, as written)."""
    number_at: str | None = None
    """Where a tolerance that is a number (or a list) looks, e.g. ``exit_code``. None: at the output
    itself, which is then a plain value (so a list of two numbers is a range, as in Chaos Toolkit)."""
    text_at: str | None = None
    """Where a tolerance that is text (or a ``regex``) looks, e.g. ``stdout``."""
    parsed: Mapping[str, str] | None = None
    """Text outputs the activity also gives parsed, for ``jsonpath`` tolerances: ``{"body": "json"}``."""
    output: Callable[[Mapping[str, Any]], Any] | None = None
    """The activity's output in the shape Chaos Toolkit's provider returns, for a ``jsonpath``
    tolerance without ``target``, which matches that whole shape. None: the shapes are the same."""
    check: str | None = None
    """The activity's argument that an action's ``"x-chaoskit": {"check": false}`` sets; None when
    that extension does not apply."""
    as_provider: Callable[[Mapping[str, JsonValue]], dict[str, JsonValue] | None] | None = None
    """The provider's keys (all but ``type``) for the activity's arguments: how Chaos Toolkit controls
    see such a step. None (or a None answer): they see ``{type: chaoskit, activity, arguments}``."""


def table(*providers: Provider) -> dict[str, Provider]:
    """Providers by type, in the order given (messages list them in that order)."""
    return {provider.type: provider for provider in providers}


def provider_of(
    activity: str, arguments: Mapping[str, JsonValue], providers: Mapping[str, Provider] | None = None
) -> dict[str, JsonValue] | None:
    """The Chaos Toolkit provider (``{type, ...}``) that runs as ``activity`` with ``arguments``
    (``BUILT_IN``'s unless ``providers`` is given); None when no type of provider does."""
    for provider in (BUILT_IN if providers is None else providers).values():
        if provider.activity == activity and provider.as_provider is not None:
            found = provider.as_provider(arguments)
            if found is not None:
                return {"type": provider.type, **found}
    return None


def listed(names: list[str]) -> str:
    """``python, process and http`` (``no`` for none)."""
    if len(names) <= 1:
        return names[0] if names else "no"
    return f"{', '.join(names[:-1])} and {names[-1]}"


# --- python ---------------------------------------------------------------------------------


def _python(body: Mapping[str, Any], at: paths.Location, report: Report) -> dict[str, JsonValue] | None:
    module, func = body.get("module"), body.get("func")
    if not isinstance(module, str) or not isinstance(func, str):
        report.issue(at, "a python provider needs module: and func:")
        return None
    arguments = body.get("arguments") or {}
    return {"function": f"{module}:{func}", "arguments": arguments, "dialect": "chaostoolkit"}


def _python_back(args: Mapping[str, JsonValue]) -> dict[str, JsonValue] | None:
    function = args.get("function")
    if not isinstance(function, str) or ":" not in function:
        return None
    module, func = function.split(":", 1)
    return {"module": module, "func": func, "arguments": args.get("arguments") or {}}


# --- process --------------------------------------------------------------------------------


def _process(body: Mapping[str, Any], at: paths.Location, report: Report) -> dict[str, JsonValue] | None:
    path = body.get("path")
    if not isinstance(path, str):
        report.issue(at, "a process provider needs path:")
        return None
    raw = body.get("arguments")
    # Failures are worded for a Chaos Toolkit file, and a timeout fails the step as it does there.
    args: dict[str, JsonValue] = {"dialect": "chaostoolkit"}
    if isinstance(raw, str):
        # Chaos Toolkit runs "<path> <arguments>" through a shell when arguments is text.
        args.update(shell=True, command=f"{_shell_word(path)} {raw}".rstrip())
    else:
        if isinstance(raw, Mapping):
            report.warn(
                (*at, "arguments"),
                "process arguments as a mapping are deprecated in Chaos Toolkit (they run as "
                "name value pairs); give them as a list",
            )
            raw = [part for pair in raw.items() for part in pair]
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            report.issue((*at, "arguments"), "give process arguments as a string or a list")
            return None
        # As Chaos Toolkit does: null and empty items are left out, the rest become text.
        args["argv"] = [path, *(_ctk_text(a) for a in raw if a is not None and a != "")]
    if "timeout" in body:
        args["timeout"] = body["timeout"]
    return args


def _process_back(args: Mapping[str, JsonValue]) -> dict[str, JsonValue] | None:
    argv, command = args.get("argv"), args.get("command")
    provider: dict[str, JsonValue]
    if isinstance(argv, list) and argv:
        provider = {"path": argv[0], "arguments": argv[1:]}
    elif isinstance(command, str):
        provider = {"path": command, "arguments": ""}
    else:
        return None
    if "timeout" in args:
        provider["timeout"] = args["timeout"]
    return provider


def _process_output(value: Mapping[str, Any]) -> Any:
    return {"status": value.get("exit_code"), **{k: value.get(k) for k in ("stdout", "stderr")}}


def _shell_word(text: str) -> str:
    # Templates stay unquoted so that they are still filled in; anything else odd is quoted.
    return text if _PLACEHOLDER.search(text) or "$" in text else shlex.quote(text)


def _ctk_text(value: Any) -> str:
    """An argument as Chaos Toolkit passes it: Python's ``str`` (``True``, not ``true``)."""
    return str(value)


# --- http -----------------------------------------------------------------------------------


def _http(body: Mapping[str, Any], at: paths.Location, report: Report) -> dict[str, JsonValue] | None:
    url = body.get("url")
    if not isinstance(url, str):
        report.issue(at, "an http provider needs url:")
        return None
    method = str(body.get("method", "GET")).upper()
    args: dict[str, JsonValue] = {"url": url, "method": method}
    headers = body.get("headers") or {}
    if not isinstance(headers, Mapping):
        report.issue((*at, "headers"), "expected headers as a mapping of name: value")
        return None
    arguments = body.get("arguments")
    if arguments is not None and arguments != {}:
        sent = _http_arguments(arguments, method, headers, at, report)
        if sent is None:
            return None
        args.update(sent[0])
        headers = sent[1]
    if headers:
        args["headers"] = dict(headers)
    timeout = body.get("timeout")
    numbers = [t for t in timeout if isinstance(t, int | float)] if isinstance(timeout, list) else []
    if numbers:
        # (connect, read): chaoskit has one timeout; the longer one keeps CTK's patience.
        timeout = max(numbers)
    if timeout is not None:
        args["timeout"] = timeout
    if "verify_tls" in body:
        args["verify"] = body["verify_tls"]
    return args


def _http_arguments(
    arguments: Any, method: str, headers: Mapping[str, Any], at: paths.Location, report: Report
) -> tuple[dict[str, JsonValue], Mapping[str, Any]] | None:
    """What the request sends for Chaos Toolkit's ``arguments``, and its headers then."""
    if method == "GET":
        if not isinstance(arguments, Mapping):
            report.issue((*at, "arguments"), "GET arguments are query parameters: give a mapping")
            return None
        return {"params": {str(k): v for k, v in arguments.items() if v is not None}}, headers
    if headers.get("Content-Type") == "application/json":
        # Chaos Toolkit sends JSON only when the request says so, with exactly this header.
        return {"json": arguments}, headers
    if isinstance(arguments, str):
        return {"body": arguments}, headers
    if isinstance(arguments, Mapping):
        if not any(str(name).lower() == "content-type" for name in headers):
            headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        return {"body": _form(arguments)}, headers
    report.issue(
        (*at, "arguments"),
        "arguments of a non-GET request are a form (a mapping), text, or JSON with "
        "headers: {Content-Type: application/json}",
    )
    return None


def _http_back(args: Mapping[str, JsonValue]) -> dict[str, JsonValue] | None:
    return dict(args) if isinstance(args.get("url"), str) else None


def _http_output(value: Mapping[str, Any]) -> Any:
    """The body parsed when the answer is ``application/json``, as Chaos Toolkit does."""
    headers = value.get("headers")
    content_type = headers.get("content-type") if isinstance(headers, Mapping) else None
    body = value.get("json") if content_type == "application/json" else value.get("body")
    return {"status": value.get("status"), "headers": headers, "body": body}


def _form_part(text: str) -> str:
    """URL-encoded, except templates, which are filled in later (their values as they are)."""
    return "".join(
        part if _TEMPLATE.fullmatch(part) else urllib.parse.quote_plus(part) for part in _TEMPLATE.split(text)
    )


def _form(arguments: Mapping[str, Any]) -> str:
    """A form body as ``requests`` encodes ``data=``: lists repeat the name, nulls are left out."""
    pairs: list[str] = []
    for name, value in arguments.items():
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                pairs.append(f"{_form_part(str(name))}={_form_part(_ctk_text(item))}")
    return "&".join(pairs)


# --- the table ------------------------------------------------------------------------------

BUILT_IN = table(
    Provider(type="python", activity="python.call", arguments=_python, as_provider=_python_back),
    Provider(
        type="process",
        activity="process.command",
        arguments=_process,
        targets={"status": "exit_code", "stdout": "stdout", "stderr": "stderr"},
        number_at="exit_code",
        text_at="stdout",
        output=_process_output,
        check="check",
        as_provider=_process_back,
    ),
    Provider(
        type="http",
        activity="http.request",
        arguments=_http,
        targets={"status": "status", "headers": "headers", "body": "body"},
        number_at="status",
        text_at="body",
        parsed={"body": "json"},
        output=_http_output,
        as_provider=_http_back,
    ),
)
"""The Chaos Toolkit providers chaoskit runs, by type."""


def with_secrets(value: Any, names: Mapping[str, str]) -> Any:
    """Chaos Toolkit's ``${key}`` for a secret in the provider's scopes → ``${secrets.<name>}``."""
    if isinstance(value, str):
        return _PLACEHOLDER.sub(
            lambda m: f"${{secrets.{names[m.group(1)]}}}" if m.group(1) in names else m.group(0), value
        )
    if isinstance(value, list):
        return [with_secrets(item, names) for item in value]
    if isinstance(value, Mapping):
        return {key: with_secrets(item, names) for key, item in value.items()}
    return value
