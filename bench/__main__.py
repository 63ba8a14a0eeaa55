"""``python -m bench [NAME ...] [-- ARGS]``: run every benchmark this machine can (or the named ones).

To add one: a module ``bench/<name>.py`` with ``missing() -> str | None`` (why it can't run here,
or None) and ``main(argv: list[str]) -> int``; then one line in ``BENCHES``.
"""

from __future__ import annotations

import importlib
import sys

BENCHES: dict[str, str] = {
    # name: module, kept sorted
    "chaostoolkit": "bench.chaostoolkit",
    "crash": "bench.crash",
    "crash_soak": "bench.crash_soak",
    "engine": "bench.engine",
    "fuzz": "bench.fuzz",
    "halt": "bench.halt",
    "http_load": "bench.http_load",
    "k8s": "bench.k8s",
    "prometheus": "bench.prometheus",
    "proxy": "bench.proxy",
    "proxy_http": "bench.proxy_http",
    "revert": "bench.revert",
    "soak": "bench.soak",
    "startup": "bench.startup",
}


def main(argv: list[str]) -> int:
    names, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    status = 0
    for name in names or list(BENCHES):
        module = importlib.import_module(BENCHES[name])
        why = module.missing()
        if why:
            print(f"== {name}: skipped ({why})")
            continue
        print(f"== {name}")
        status = max(status, int(module.main(extra)))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
