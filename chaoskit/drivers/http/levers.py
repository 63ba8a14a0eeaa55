"""The ``http(s)://`` halt lever: a URL (an incident tool, a status page's API) that chaoskit reads
and never writes. The engine polls it through the driver contract, as it does ``kubernetes://``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from chaoskit import errors
from chaoskit.drivers import contract

_TRUE = {"true", "yes", "1", "on"}


class HttpLever(contract.Lever):
    """GET answering 200 with ``{"halted": true, ...}`` means halted; 404 or 204 mean not halted;
    anything else, or no answer, is a problem (not a halt). Read-only: pull it where it is kept."""

    def read(self, timeout: float) -> Mapping[str, str] | None:
        request = urllib.request.Request(self.uri, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status = int(response.status)
                raw = response.read(1 << 16)
        except urllib.error.HTTPError as e:
            e.close()
            if e.code == 404:
                return None
            raise errors.ChaoskitError(f"the halt lever {self.uri} answered {e.code} {e.reason}") from e
        except (urllib.error.URLError, OSError, ValueError) as e:
            why = getattr(e, "reason", None) or e
            raise errors.ChaoskitError(f"the halt lever {self.uri} can't be reached: {why}") from e
        if status == 204:
            return None
        if status != 200:
            raise errors.ChaoskitError(f"the halt lever {self.uri} answered {status}")
        return self._fields(raw)

    def _fields(self, raw: bytes) -> Mapping[str, str]:
        """The answer as a lever's text fields; only ``halted: true`` (or text that says so, or no
        ``halted`` at all) is a halt."""
        try:
            data: Any = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise errors.ChaoskitError(f"the halt lever {self.uri} can't be read: {e}") from e
        if not isinstance(data, dict):
            raise errors.ChaoskitError(f"the halt lever {self.uri} is not a JSON object")
        flag = data.get("halted", True)
        if isinstance(flag, str):
            flag = flag.strip().lower() in _TRUE
        if flag is not True:
            return {"halted": "false"}
        told = {key: str(data[key]) for key in ("reason", "by", "at") if data.get(key)}
        return {**told, "halted": "true"}

    def write(self, fields: Mapping[str, str], timeout: float) -> None:
        raise errors.UsageError(
            f"the halt lever {self.uri} is a URL: chaoskit only reads it",
            hint="pull it in the tool that serves it (e.g. declare the incident); "
            "`chaoskit halt` pulls the local lever and file or kubernetes:// levers",
        )
