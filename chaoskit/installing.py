"""The command that adds an extra (``docker``, ``prometheus``, ...) to *this* chaoskit.

Messages say ``pip install 'chaoskit[docker]'`` where they are written; ``install_hints`` rewrites
that, where a user reads it, into the command right for how chaoskit was installed: pipx, a
virtualenv (activated or not), a checkout (``-e`` when editable), or a distribution's Python that
refuses pip (PEP 668).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import sysconfig
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

EXTRA_HINT = re.compile(r"pip install '?chaoskit\[([\w,-]+)\]'?")
"""How messages name an extra to install; ``install_hints`` replaces each."""


def install_command(extra: str) -> str:
    """How to add ``extra`` to this chaoskit: from the checkout it came from (``-e`` when editable)
    or from the index, with the installer that owns chaoskit's own interpreter."""
    source = _source()
    if source is None:
        package = f"'chaoskit[{extra}]'"
    else:
        path, editable = source
        package = f"{'-e ' if editable else ''}'{_shown(path)}[{extra}]'"
    if _pipx_venv() is not None:
        return f"pipx runpip {_pipx_venv()} install {package}"
    if _externally_managed():
        # pip refuses to touch this Python; pipx gives chaoskit and its extra a venv of their own.
        return f"pipx install {package}"
    pip = shutil.which("pip")
    if pip is not None and Path(pip).parent == Path(sys.executable).parent:
        return f"pip install {package}"
    # A venv used without activating it (.venv/bin/chaoskit): the pip on PATH is another one.
    return f"{_shown(Path(sys.executable).parent)}/{Path(sys.executable).name} -m pip install {package}"


def install_hints(text: str) -> str:
    """``text`` with each ``pip install 'chaoskit[X]'`` replaced by the command right for this install."""
    return EXTRA_HINT.sub(lambda m: install_command(m.group(1)), text)


def _shown(path: Path) -> str:
    """``path`` as a user would type it here: relative when it is under the working directory."""
    try:
        relative = path.resolve().relative_to(Path.cwd().resolve())
    except (OSError, ValueError):
        return str(path)
    return "." if relative == Path() else f"./{relative}"


def _source() -> tuple[Path, bool] | None:
    """The checkout chaoskit was installed from, and whether editably; None for an index install."""
    try:
        direct = metadata.distribution("chaoskit").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        direct = None
    if direct is None:
        return None
    try:
        info = json.loads(direct)
    except ValueError:
        return None
    url = urlparse(str(info.get("url", "")))
    if url.scheme != "file" or "dir_info" not in info:
        return None
    return Path(unquote(url.path)), bool(info["dir_info"].get("editable", False))


def _pipx_venv() -> str | None:
    """The name of the pipx venv chaoskit runs in (``$PIPX_HOME/venvs/<name>``), else None."""
    prefix = Path(sys.prefix)
    home = os.environ.get("PIPX_HOME")
    if prefix.parent.name == "venvs" and (
        "pipx" in prefix.parent.parent.name or (home and prefix.parent.parent == Path(home))
    ):
        return prefix.name
    return None


def _externally_managed() -> bool:
    """Whether this is a distribution's own Python, outside any venv, whose pip refuses installs."""
    if sys.prefix != sys.base_prefix:
        return False
    return (Path(sysconfig.get_path("stdlib")) / "EXTERNALLY-MANAGED").exists()
