#!/usr/bin/env bash
# Stops the real node scripts/lib/kube/node-up.sh started and leaves the host as it found it:
# pods deleted while the kubelet still runs, processes stopped by the pids recorded, kube-proxy's
# and the kubelet's iptables rules and chains removed (only those not in the baseline taken at
# start: other engineers' dockerds change iptables too), bridges and routes gone, leftover mounts
# and kubepods cgroups removed, and the sysctls the kubelet and kube-proxy changed restored.
# Safe to run when nothing (or half of it) is running.
#
# Called by scripts/kube-down with RUN, BIN, API_PORT and HERE set.
set -uo pipefail
: "${RUN:?}" "${BIN:?}" "${API_PORT:?}" "${HERE:?}"
# shellcheck source=scripts/lib/common.sh
. "$HERE/lib/common.sh"
# shellcheck source=scripts/lib/kube/node-env.sh
. "$HERE/lib/kube/node-env.sh"
[ -d "$NODE_RUN" ] || exit 0

alive() { [ -f "$NODE_RUN/$1.pid" ] && kill -0 "$(cat "$NODE_RUN/$1.pid")" 2>/dev/null; }
node_docker() { docker --host "unix://$NODE_DOCKER_SOCK" "$@"; }

# With the kubelet running, deleting the node's pods also tears down their CNI networks.
if alive kubelet; then
  python3 - "$RUN" "$API_PORT" "$NODE_NAME" <<'PY' || true
import json, ssl, sys, time, urllib.error, urllib.request
run, port, node = sys.argv[1:]
context = ssl.create_default_context(cafile=f"{run}/pki/ca.crt")
token = open(f"{run}/pki/admin.token").read().strip()
def call(method, path):
    request = urllib.request.Request(f"https://127.0.0.1:{port}{path}", method=method,
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, context=context, timeout=5) as response:
        return json.load(response)
def pods():
    return call("GET", f"/api/v1/pods?fieldSelector=spec.nodeName%3D{node}")["items"]
for pod in pods():
    meta = pod["metadata"]
    try:
        call("DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}?gracePeriodSeconds=0")
    except urllib.error.HTTPError as e:
        if e.code != 404:  # already gone (its namespace was being deleted): nothing to do
            raise
deadline = time.monotonic() + 20
while pods() and time.monotonic() < deadline:
    time.sleep(0.5)
PY
fi

for name in kube-scheduler kube-proxy kubelet; do
  stop_pid "$NODE_RUN/$name.pid" &
done
wait
if node_docker info >/dev/null 2>&1; then
  ids=$(node_docker ps -aq)
  [ -n "$ids" ] && echo "$ids" | xargs -r docker --host "unix://$NODE_DOCKER_SOCK" rm -f >/dev/null
fi
stop_pid "$NODE_RUN/dockerd.pid"
# The relay forks a child per connection, all in the session it leads: the whole group goes.
if alive api-relay; then
  kill -TERM -- "-$(cat "$NODE_RUN/api-relay.pid")" 2>/dev/null
  rm -f "$NODE_RUN/api-relay.pid"
fi

# The host-wide state belongs to the node that claimed it: another runtime's node is left alone.
owner=$(cat "$NODE_OWNER" 2>/dev/null || true)
if [ -n "$owner" ] && [ "$owner" != "$NODE_RUN" ]; then
  exit 0
fi
[ -x "$BIN/kube-proxy" ] && "$BIN/kube-proxy" --cleanup >/dev/null 2>&1

# Rules and chains of ours (kube-proxy's, the kubelet's KUBE-*, our confinement chain) that were
# not there before node-up.sh ran.
ours='KUBE-|CHAOSKIT-KUBE-NODE|ck-k(node|pod|dock)'
for ipt in iptables ip6tables; do
  for table in filter nat mangle; do
    baseline="$NODE_RUN/$ipt-$table.baseline"
    [ -f "$baseline" ] || baseline=/dev/null
    $ipt-save -t "$table" 2>/dev/null | grep -E '^-A ' | grep -E "$ours" | grep -vxFf "$baseline" \
      | while read -r rule; do eval "$ipt -t $table -D ${rule#-A }" 2>/dev/null; done
    for chain in $($ipt-save -t "$table" 2>/dev/null | grep -oE '^:(KUBE-[^ ]+|CHAOSKIT-KUBE-NODE)' | tr -d :); do
      grep -q "^:$chain " "$baseline" && continue
      $ipt -t "$table" -F "$chain" 2>/dev/null
      $ipt -t "$table" -X "$chain" 2>/dev/null
    done
  done
done

ip route del unreachable "$SIM_POD_CIDR" 2>/dev/null
ip route del unreachable "$SIM_HOST_CIDR" 2>/dev/null
for bridge in "$POD_BRIDGE" "$NODE_BRIDGE" "$NODE_DOCKER_BRIDGE"; do
  ip link del "$bridge" 2>/dev/null
done

# dockerd's netns/default and the kubelet's volume mounts (service-account token tmpfs).
findmnt -rn -o TARGET | grep -F "$NODE_RUN/" | sort -r | while read -r target; do
  umount "$target" 2>/dev/null || umount -l "$target" 2>/dev/null
done
for cgroup in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
  [ -d "$cgroup" ] && find "$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null
done
if [ -f "$NODE_RUN/fixed-paths.baseline" ]; then
  for path in "${NODE_FIXED_PATHS[@]}"; do
    grep -qxF "$path" "$NODE_RUN/fixed-paths.baseline" || rm -rf "$path"
  done
fi
if [ -f "$NODE_RUN/sysctl.baseline" ]; then
  while IFS= read -r setting; do sysctl -q -w "$setting" >/dev/null; done <"$NODE_RUN/sysctl.baseline"
fi

# Say what is left, so that a teardown that stops being clean is noticed at once.
left=()
for ipt in iptables ip6tables; do
  n=$($ipt-save 2>/dev/null | grep -E "$ours" | grep -cvxFf <(cat "$NODE_RUN/$ipt"-*.baseline 2>/dev/null; echo '#') || true)
  [ "$n" = 0 ] || left+=("$n $ipt lines naming KUBE-/CHAOSKIT-KUBE-NODE/ck-k*")
done
for bridge in "$POD_BRIDGE" "$NODE_BRIDGE" "$NODE_DOCKER_BRIDGE"; do
  ip link show "$bridge" >/dev/null 2>&1 && left+=("bridge $bridge")
done
if [ -f "$NODE_RUN/sysctl.baseline" ]; then
  while IFS== read -r key value; do
    [ "$(sysctl -n "$key")" = "$value" ] || left+=("sysctl $key=$(sysctl -n "$key") (was $value)")
  done <"$NODE_RUN/sysctl.baseline"
fi
ls -d /sys/fs/cgroup/*/kubepods >/dev/null 2>&1 && left+=("kubepods cgroups")
if [ ${#left[@]} -gt 0 ]; then
  printf 'kube-down: the real node left on the host: %s\n' "${left[@]}" >&2
  exit 1
fi
rm -f "$NODE_OWNER"
rm -rf --one-file-system "$NODE_RUN/cni" "$NODE_RUN/kubelet" "$NODE_RUN/dockershim" "$NODE_RUN/docker" "$NODE_RUN/kubelet-pki" \
  "$NODE_RUN/volume-plugins" \
  "$NODE_RUN"/*.baseline
exit 0
