# The Docker engine for tests/integration/docker: our own dockerd (own data root, socket, exec root,
# pidfile) and two test images made with `docker import` (nothing can be pulled here).
# Sourced by scripts/test after scripts/lib/common.sh. Never touches the system's default socket.

APT_PACKAGES+=(docker.io busybox-static iptables iproute2 util-linux)  # util-linux: nsenter, for the faults inside containers

CHAOSKIT_DOCKER_DATA=${CHAOSKIT_CACHE}/docker
CHAOSKIT_DOCKER_RUN=${CHAOSKIT_RUNTIME}/docker
CHAOSKIT_DOCKER_SOCK=${CHAOSKIT_RUNTIME}/docker.sock
CHAOSKIT_DOCKER_PIDFILE=${CHAOSKIT_RUNTIME}/dockerd.pid
CHAOSKIT_DOCKER_LOG=${CHAOSKIT_RUNTIME}/dockerd.log
# Set when this shell started dockerd, so that only that one is stopped.
CHAOSKIT_DOCKER_STARTED=0

_docker() { docker --host "unix://$CHAOSKIT_DOCKER_SOCK" "$@"; }

_docker_running() { _docker info >/dev/null 2>&1; }

# _docker_copy_with_libs ROOTFS BINARY... : copy binaries and every library ldd lists for them.
_docker_copy_with_libs() {
  local root=$1 bin lib
  shift
  for bin in "$@"; do
    mkdir -p "$root$(dirname "$bin")"
    cp -L "$bin" "$root$bin"
    for lib in $(ldd "$bin" 2>/dev/null | grep -oE '/[^ ]+'); do
      mkdir -p "$root$(dirname "$lib")"
      [ -e "$root$lib" ] || cp -L "$lib" "$root$lib"
    done
  done
}

_docker_busybox_root() {
  local root=$1 applet
  mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/run" "$root/www"
  cp /bin/busybox "$root/bin/busybox"
  for applet in sh httpd nc sleep wget cat echo ls ps kill ip; do
    ln -sf busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\n' >"$root/etc/group"
}

# _docker_import NAME HASH ROOTFS CMD : import once per content hash; `latest` follows the newest.
_docker_import() {
  local name=$1 hash=$2 root=$3 cmd=$4
  if _docker image inspect "$name:$hash" >/dev/null 2>&1; then
    echo "image $name:$hash cached"
  else
    tar -C "$root" -c . | _docker import --change "CMD $cmd" - "$name:$hash" >/dev/null
    echo "image $name:$hash built"
  fi
  _docker tag "$name:$hash" "$name:latest"
}

_docker_build_images() {
  local work hash lib
  work=$(mktemp -d "$CHAOSKIT_RUNTIME/docker-images.XXXXXX")

  # HTTP target: busybox httpd serving /www on port 80.
  _docker_busybox_root "$work/http"
  echo "chaoskit test target" >"$work/http/www/index.html"
  hash=$( (sha256sum /bin/busybox; echo v1) | sha256sum | cut -c1-12)
  _docker_import chaoskit-test/http "$hash" "$work/http" '["/bin/httpd", "-f", "-p", "80", "-h", "/www"]'

  # Network helper: iptables (nft and legacy backends) and tc with their libraries and xtables modules.
  _docker_busybox_root "$work/net"
  _docker_copy_with_libs "$work/net" /usr/sbin/xtables-nft-multi /usr/sbin/xtables-legacy-multi /usr/sbin/tc
  for lib in /usr/lib/x86_64-linux-gnu/xtables/*.so; do
    _docker_copy_with_libs "$work/net" "$lib"
  done
  for name in iptables iptables-save iptables-restore ip6tables; do
    ln -sf xtables-nft-multi "$work/net/usr/sbin/$name"
  done
  for name in iptables-legacy iptables-legacy-save; do
    ln -sf xtables-legacy-multi "$work/net/usr/sbin/$name"
  done
  cp /etc/protocols "$work/net/etc/protocols" 2>/dev/null || true
  [ -f /etc/ethertypes ] && cp /etc/ethertypes "$work/net/etc/ethertypes"
  hash=$( (cd "$work/net" && find . -type f -print0 | sort -z | xargs -0 sha256sum; echo v1) | sha256sum | cut -c1-12)
  _docker_import chaoskit-test/nethelper "$hash" "$work/net" '["/bin/sh"]'

  rm -rf "$work"
}

component_docker_up() {
  step "Docker engine (own dockerd on $CHAOSKIT_DOCKER_SOCK)"
  if ! command -v dockerd >/dev/null 2>&1; then
    echo "dockerd is not installed (docker.io); the docker suite will fail under CI=true" >&2
    return 0
  fi
  mkdir -p "$CHAOSKIT_DOCKER_DATA" "$CHAOSKIT_DOCKER_RUN"
  if _docker_running; then
    echo "reusing the dockerd already answering on $CHAOSKIT_DOCKER_SOCK (left running at the end)"
  else
    # A pidfile left by a killed dockerd makes the next one refuse to start.
    if [ -f "$CHAOSKIT_DOCKER_PIDFILE" ] && ! kill -0 "$(cat "$CHAOSKIT_DOCKER_PIDFILE")" 2>/dev/null; then
      rm -f "$CHAOSKIT_DOCKER_PIDFILE"
    fi
    rm -f "$CHAOSKIT_DOCKER_SOCK"
    setsid dockerd \
      --data-root "$CHAOSKIT_DOCKER_DATA" \
      --exec-root "$CHAOSKIT_DOCKER_RUN" \
      --host "unix://$CHAOSKIT_DOCKER_SOCK" \
      --pidfile "$CHAOSKIT_DOCKER_PIDFILE" \
      >>"$CHAOSKIT_DOCKER_LOG" 2>&1 </dev/null &
    CHAOSKIT_DOCKER_STARTED=1
    STOPPERS+=(component_docker_down)
    if ! wait_for "dockerd" 90 _docker_running; then
      tail -n 30 "$CHAOSKIT_DOCKER_LOG" >&2
      return 1
    fi
    echo "dockerd up (pid $(cat "$CHAOSKIT_DOCKER_PIDFILE"), log $CHAOSKIT_DOCKER_LOG)"
  fi
  export DOCKER_HOST="unix://$CHAOSKIT_DOCKER_SOCK"
  _docker_build_images
  export CHAOSKIT_DOCKER_HTTP_IMAGE=chaoskit-test/http:latest
  export CHAOSKIT_DOCKER_HELPER_IMAGE=chaoskit-test/nethelper:latest
  if [ "$CHAOSKIT_DOCKER_STARTED" = 0 ]; then
    STOPPERS+=(component_docker_sweep)
  fi
}

# Remove what the tests left: containers and networks labelled by chaoskit or by the test suite.
component_docker_sweep() {
  local ids
  ids=$(_docker ps -aq --filter label=chaoskit.run-id; _docker ps -aq --filter label=chaoskit.test)
  [ -n "$ids" ] && echo "$ids" | sort -u | xargs -r docker --host "unix://$CHAOSKIT_DOCKER_SOCK" rm -f >/dev/null
  ids=$(_docker network ls -q --filter label=chaoskit.test)
  [ -n "$ids" ] && echo "$ids" | xargs -r docker --host "unix://$CHAOSKIT_DOCKER_SOCK" network rm >/dev/null
  return 0
}

component_docker_down() {
  component_docker_sweep || true
  if [ "$CHAOSKIT_DOCKER_STARTED" = 1 ]; then
    stop_pid "$CHAOSKIT_DOCKER_PIDFILE"
  fi
}
