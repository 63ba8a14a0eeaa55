#!/usr/bin/env bash
# Builds the chaoskit image the operator's run Jobs and the node agent's DaemonSet use on the test
# node, without a registry or a Dockerfile build: the host's python3.11 (its stdlib without tests,
# tkinter, idlelib), chaoskit and the libraries it needs (copied from the test venv), util-linux's
# nsenter and iptables (with their shared libraries and xtables modules) onto a busybox-static
# rootfs, then `docker import`ed. ~2-5 s; the tarball is cached under $CHAOSKIT_CACHE/images keyed
# by the sources, and imported into the engine at DOCKER_HOST only when it lacks the tag.
#
#   scripts/lib/chaoskit-image.sh [DOCKER_HOST]    prints the image's name (chaoskit-test/chaoskit:<key>)
#
# The tag is not `latest`, so pods use it with the default pull policy IfNotPresent: no registry.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd -P)
CACHE=${CHAOSKIT_CACHE:-/var/cache/chaoskit}
VENV=${CHAOSKIT_VENV:-$CACHE/dev-venv}
PY=$VENV/bin/python
[ -x "$PY" ] || PY=$CACHE/venv/bin/python
# Debian's interpreter: its stdlib is where it expects it (/usr/lib/python3.11) in the image too.
HOST_PY=/usr/bin/python3.11
export DOCKER_HOST=${1:-${DOCKER_HOST:-unix://$CACHE/run/docker.sock}}

key=$( (cd "$ROOT" && find chaoskit -name '*.py' -o -name '*.yaml' -o -name py.typed | LC_ALL=C sort \
         | xargs sha256sum; sha256sum pyproject.toml "$0"; "$HOST_PY" --version) | sha256sum | cut -c1-12)
IMAGE=chaoskit-test/chaoskit:$key
TARBALL=$CACHE/images/chaoskit-$key.tar

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "$IMAGE"
  exit 0
fi

if [ ! -s "$TARBALL" ]; then
  mkdir -p "$CACHE/images"
  work=$(mktemp -d "$CACHE/images/build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  rootfs=$work/rootfs
  mkdir -p "$rootfs"/{bin,etc,tmp,usr/bin,usr/sbin,usr/local/bin,opt/chaoskit,var/run,var/lib,dev,proc,sys}
  chmod 1777 "$rootfs/tmp"
  cp /bin/busybox "$rootfs/bin/busybox"
  "$rootfs/bin/busybox" --install -s "$rootfs/bin"
  find "$rootfs/bin" -type l -exec ln -sf /bin/busybox {} \;

  # The interpreter and its stdlib, as the host has them.
  stdlib=$("$HOST_PY" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
  cp "$HOST_PY" "$rootfs/usr/bin/python3.11"
  ln -s python3.11 "$rootfs/usr/bin/python3"
  mkdir -p "$rootfs$stdlib"
  tar -C "$stdlib" --exclude=test --exclude=tests --exclude=tkinter --exclude=idlelib \
      --exclude=turtledemo --exclude=ensurepip --exclude=site-packages --exclude=dist-packages -c . \
    | tar -C "$rootfs$stdlib" -x

  # nsenter and iptables (the agent's tools), with the modules -m comment needs.
  cp "$(readlink -f "$(command -v nsenter)")" "$rootfs/usr/bin/nsenter"
  xtables=$(readlink -f "$(command -v iptables)")
  cp "$xtables" "$rootfs/usr/sbin/$(basename "$xtables")"
  for tool in iptables iptables-save iptables-restore; do
    ln -sf "$(basename "$xtables")" "$rootfs/usr/sbin/$tool"
  done
  modules=$(dirname "$(find /usr/lib /lib -path '*xtables/libxt_comment.so' | head -1)")
  mkdir -p "$rootfs$modules" && cp "$modules"/*.so "$rootfs$modules/"

  # chaoskit and the distributions it needs at run time (base, kubernetes, operator), from the venv.
  cp -r "$ROOT/chaoskit" "$rootfs/opt/chaoskit/chaoskit"
  find "$rootfs/opt/chaoskit" -name __pycache__ -prune -exec rm -rf {} +
  "$PY" - "$rootfs/opt/chaoskit" <<'PYEOF'
import importlib.metadata as md, pathlib, shutil, sys
from packaging.requirements import Requirement
target = pathlib.Path(sys.argv[1])
wanted = ["click", "pyyaml", "pydantic", "rich", "tenacity", "httpx", "kubernetes", "croniter"]
seen: set[str] = set()
while wanted:
    name = Requirement(wanted.pop()).name.lower().replace("_", "-")
    if name in seen:
        continue
    seen.add(name)
    dist = md.distribution(name)
    for text in dist.requires or []:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            wanted.append(text)
    for file in dist.files or []:
        source = pathlib.Path(dist.locate_file(file))
        if source.is_file() and "__pycache__" not in file.parts and not str(file).startswith(".."):
            (target / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / file)
# chaoskit's entry points: drivers register through them (the package is not installed here).
info = target / "chaoskit-0.dist-info"
info.mkdir(exist_ok=True)
(info / "METADATA").write_text("Metadata-Version: 2.1\nName: chaoskit\nVersion: 0\n")
(info / "entry_points.txt").write_text(md.distribution("chaoskit").read_text("entry_points.txt") or "")
PYEOF
  # Every shared library those need (ldd of each binary and extension module).
  { for f in "$rootfs/usr/bin/python3.11" "$rootfs/usr/bin/nsenter" "$rootfs/usr/sbin/$(basename "$xtables")" \
             "$rootfs$stdlib"/lib-dynload/*.so "$rootfs$modules"/*.so \
             $(find "$rootfs/opt/chaoskit" -name '*.so*'); do
      { ldd "$f" 2>/dev/null || true; } | awk '/=>/ {print $3} /^\s*\/lib/ {print $1}'
    done; } | { grep '^/' || true; } | sort -u | while read -r lib; do
      mkdir -p "$rootfs$(dirname "$lib")"
      cp -L "$lib" "$rootfs$lib"
      real=$(readlink -f "$lib"); mkdir -p "$rootfs$(dirname "$real")"; cp -L "$lib" "$rootfs$real" 2>/dev/null || true
    done
  mkdir -p "$rootfs/lib64" && cp -L /lib64/ld-linux-x86-64.so.2 "$rootfs/lib64/"

  printf '#!/usr/bin/python3.11\nimport sys\nfrom chaoskit.cli.main import main\nsys.exit(main())\n' \
    > "$rootfs/usr/local/bin/chaoskit"
  chmod 755 "$rootfs/usr/local/bin/chaoskit"
  printf 'root:x:0:0:root:/root:/bin/sh\nchaoskit:x:10001:10001::/tmp:/bin/sh\n' > "$rootfs/etc/passwd"
  printf 'root:x:0:\nchaoskit:x:10001:\n' > "$rootfs/etc/group"
  tar -C "$rootfs" -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
fi

docker import \
  --change 'ENV PYTHONPATH=/opt/chaoskit PATH=/usr/local/bin:/usr/sbin:/usr/bin:/bin HOME=/tmp PYTHONUNBUFFERED=1' \
  --change 'ENTRYPOINT ["/usr/local/bin/chaoskit"]' \
  --change 'CMD ["operator", "run"]' \
  "$TARBALL" "$IMAGE" >/dev/null
# Each source change makes a ~200 MB image: older ones go unless a container still uses them (rmi
# without -f refuses those), and only the three newest tarballs stay cached.
docker image ls --format '{{.Repository}}:{{.Tag}}' chaoskit-test/chaoskit | grep -vxF "$IMAGE" \
  | xargs -r docker rmi >/dev/null 2>&1 || true
ls -t "$CACHE"/images/chaoskit-*.tar 2>/dev/null | tail -n +4 | xargs -r rm -f
echo "$IMAGE"
