#!/usr/bin/env bash
# Builds the control plane (kube-apiserver, kube-controller-manager, kube-scheduler) and the real
# node (kubelet, kube-proxy) from Debian bookworm's `kubernetes` source package (no container image
# can be pulled here) and caches the binaries in $CHAOSKIT_CACHE/kube/bin. A second run finds them
# there and returns at once.
#
# All binaries come from one `make`: the Kubernetes build keeps its Go cache inside the source tree
# (hack/lib/golang.sh forces GOCACHE=_output/local/go/cache), so building them one by one, or
# deleting the tree between builds, compiles the shared packages again. The tree is kept in
# $CHAOSKIT_CACHE/kube/tree so that a recipe change rebuilds in seconds, not minutes.
#
# The facts behind each step are in ../shared/notes/kubernetes-test-cluster.md and
# ../shared/notes/kubernetes-real-node.md.
set -euo pipefail

CHAOSKIT_CACHE=${CHAOSKIT_CACHE:-/var/cache/chaoskit}
KUBE_CACHE=$CHAOSKIT_CACHE/kube
BIN=$KUBE_CACHE/bin
# Bump when the recipe changes so that cached binaries from an older recipe are rebuilt.
RECIPE=2
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

cached() {
  [ "$(cat "$BIN/.recipe" 2>/dev/null)" = "$RECIPE" ] || return 1
  local b
  for b in "${BINARIES[@]}"; do [ -x "$BIN/$b" ] || return 1; done
}

if cached; then
  echo "kube binaries cached in $BIN"
  exit 0
fi
# Two test runs starting on a cold cache build once: the second waits, then finds the binaries.
mkdir -p "$KUBE_CACHE"
exec 9>"$KUBE_CACHE/build.lock"
flock 9
if cached; then
  echo "kube binaries cached in $BIN (built by a concurrent run)"
  exit 0
fi

BUILD_PACKAGES=(golang-1.19-go rsync make golang-github-modern-go-reflect2-dev ca-certificates)
missing=()
for pkg in "${BUILD_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing build packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Other engineers' scripts install packages concurrently on shared machines.
  flock "$CHAOSKIT_CACHE/apt.lock" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update -qq && flock "$CHAOSKIT_CACHE/apt.lock" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
fi

# Only bookworm still ships the full source (newer releases strip it to kubectl). A private apt
# configuration adds the deb-src lines without touching the system's sources or lists.
APT_DIR=$KUBE_CACHE/apt
SRC_DIR=$KUBE_CACHE/src
mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$SRC_DIR"
cat > "$APT_DIR/sources.list" <<'LIST'
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
LIST
APT_OPTS=(-o "Dir::Etc::SourceList=$APT_DIR/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$APT_DIR/lists" -o "Dir::Cache=$APT_DIR/cache")

if ! ls "$SRC_DIR"/kubernetes_*.orig.tar.* >/dev/null 2>&1; then
  echo "fetching the kubernetes source package"
  apt-get "${APT_OPTS[@]}" update -qq
  (cd "$SRC_DIR" && apt-get "${APT_OPTS[@]}" source --download-only -qq kubernetes)
fi
ORIG=$(ls "$SRC_DIR"/kubernetes_*.orig.tar.* | grep -v '\.asc$' | head -n1)

TREE=$KUBE_CACHE/tree
if [ ! -f "$TREE/.unpacked" ]; then
  rm -rf "$TREE"
  mkdir -p "$TREE"
  echo "unpacking $(basename "$ORIG")"
  tar -xf "$ORIG" -C "$TREE" --strip-components=1
  touch "$TREE/.unpacked"
fi

# The vendored reflect2 v1.0.1 crashes under Go >= 1.18; Debian's 1.0.2 is a drop-in.
REFLECT2=$TREE/vendor/github.com/modern-go/reflect2
rm -rf "$REFLECT2"
mkdir -p "$REFLECT2"
cp -r /usr/share/gocode/src/github.com/modern-go/reflect2/. "$REFLECT2/"
rm -f "$REFLECT2/go.mod" "$REFLECT2/go.sum"

# This machine kind's root lacks CAP_SYS_RESOURCE, so the kernel refuses a negative oom_score_adj
# and runc fails every pod sandbox ("can't get final child's PID from pipe"). The kubelet asks for
# -998 (sandboxes) and -997 (Guaranteed pods): both become 0, which the kernel accepts.
sed -i 's/^\(\s*defaultSandboxOOMAdj\s*int\s*=\s*\)-998/\10/' "$TREE/pkg/kubelet/dockershim/docker_sandbox.go"
sed -i 's/^\(\s*guaranteedOOMScoreAdj\s*int\s*=\s*\)-997/\10/' "$TREE/pkg/kubelet/qos/policy.go"
grep -Eq 'defaultSandboxOOMAdj\s+int\s+=\s+0' "$TREE/pkg/kubelet/dockershim/docker_sandbox.go"
grep -Eq 'guaranteedOOMScoreAdj\s+int\s+=\s+0' "$TREE/pkg/kubelet/qos/policy.go"

# The tarball has no .git, so the version stamp comes from a file.
cat > "$KUBE_CACHE/version.env" <<'VERSION'
KUBE_GIT_VERSION='v1.20.2'
KUBE_GIT_MAJOR='1'
KUBE_GIT_MINOR='20'
KUBE_GIT_TREE_STATE='clean'
KUBE_GIT_COMMIT='faecb196815e248d3ecfb03c680a4507229c2a56'
VERSION

echo "building ${BINARIES[*]} (several minutes)"
export PATH=/usr/lib/go-1.19/bin:$PATH
export GOCACHE=$KUBE_CACHE/gocache GOPATH=$KUBE_CACHE/gopath
(
  cd "$TREE"
  # `make` (not a plain go build) generates the OpenAPI code the tarball lacks; GOPROXY=off
  # proves nothing is downloaded.
  CGO_ENABLED=0 GOPROXY=off KUBE_BUILD_PLATFORMS=linux/amd64 \
    KUBE_GIT_VERSION_FILE="$KUBE_CACHE/version.env" \
    make WHAT="${BINARIES[*]/#/cmd/}"
)
mkdir -p "$BIN"
for b in "${BINARIES[@]}"; do
  install -m 0755 "$TREE/_output/local/bin/linux/amd64/$b" "$BIN/$b"
done
echo "$RECIPE" > "$BIN/.recipe"
echo "kube binaries built into $BIN"
