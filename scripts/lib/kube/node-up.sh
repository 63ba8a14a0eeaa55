#!/usr/bin/env bash
# Starts the test cluster's real node next to the control plane scripts/kube-up started: a dockerd
# of its own, a kubelet (1.20, dockershim), kube-proxy and kube-scheduler, with the CNI bridge and
# host-local plugins from Debian's containernetworking-plugins. Pods really run on it, get IPs and
# reach each other through Services.
#
# The node is named $KUBE_REAL_NODE_NAME, labelled chaoskit.io/real-node=true and tainted
# chaoskit.io/real-node=true:NoSchedule, and only the scheduler profile "chaoskit-real-node"
# places pods on it: the simulated kubelet (tests/k8s/kubelet.py) keeps every other pod, so the
# fast multi-node tests behave as before. tests/k8s/clusters.py says how a test asks for the node.
#
# Everything runs on bridges and in network namespaces made here; pods can reach nothing but each
# other, the node and the host's loopback services (see confine below). scripts/lib/kube/node-down.sh
# undoes every change to the host. The facts behind each flag are in
# ../shared/notes/kubernetes-real-node.md.
#
# Called by scripts/kube-up with RUN (its runtime dir), BIN, API_PORT and HERE set.
set -euo pipefail
: "${RUN:?}" "${BIN:?}" "${API_PORT:?}" "${HERE:?}"
# shellcheck source=scripts/lib/common.sh
. "$HERE/lib/common.sh"
# shellcheck source=scripts/lib/kube/node-env.sh
. "$HERE/lib/kube/node-env.sh"

mkdir -p "$NODE_RUN" "$NODE_DOCKER_DATA" "$NODE_RUN/cni/net.d" "$NODE_RUN/cni/cache" "$NODE_RUN/cni/ipam"

start() {
  local name=$1
  shift
  setsid "$@" >"$NODE_RUN/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$NODE_RUN/$name.pid"
}

# The host state node-down.sh restores: sysctls the kubelet and kube-proxy change, and the
# iptables rules present before anything of ours was added.
baseline() {
  local key
  : >"$NODE_RUN/sysctl.baseline"
  for key in "${NODE_SYSCTLS[@]}"; do
    echo "$key=$(sysctl -n "$key")" >>"$NODE_RUN/sysctl.baseline"
  done
  local ipt table path
  for ipt in iptables ip6tables; do
    for table in filter nat mangle; do
      $ipt-save -t "$table" >"$NODE_RUN/$ipt-$table.baseline"
    done
  done
  : >"$NODE_RUN/fixed-paths.baseline"
  for path in "${NODE_FIXED_PATHS[@]}"; do
    [ -e "$path" ] && echo "$path" >>"$NODE_RUN/fixed-paths.baseline"
  done
  return 0
}

bridges() {
  local name cidr
  while read -r name cidr; do
    ip link add "$name" type bridge
    [ -n "$cidr" ] && ip addr add "$cidr" dev "$name"
    ip link set "$name" up
  done <<BRIDGES
$NODE_BRIDGE $NODE_IP/24
$NODE_DOCKER_BRIDGE $NODE_DOCKER_BRIDGE_CIDR
BRIDGES
  # An unprogrammed ClusterIP, and the simulated nodes' made-up pod and host addresses that
  # kube-proxy may program for other tests' Services, must never follow the default route off
  # the machine.
  ip route add "$SERVICE_CIDR" dev "$NODE_BRIDGE"
  ip route add unreachable "$SIM_POD_CIDR"
  ip route add unreachable "$SIM_HOST_CIDR"
}

# The FORWARD policy here is DROP. Pods may talk to pods on their bridge; anything from the pod
# bridge (or the node dockerd's bridge, which nothing should use) to another interface is
# refused at once. Our chain is first in FORWARD, ahead of kube-proxy's KUBE-FORWARD (whose
# masquerade-mark rule would otherwise accept it).
confine() {
  local ipt
  for ipt in iptables ip6tables; do
    $ipt -N "$NODE_CHAIN"
    $ipt -A "$NODE_CHAIN" -i "$POD_BRIDGE" -o "$POD_BRIDGE" -j ACCEPT
    $ipt -A "$NODE_CHAIN" -i "$POD_BRIDGE" -j REJECT
    $ipt -A "$NODE_CHAIN" -i "$NODE_DOCKER_BRIDGE" -j REJECT
    $ipt -A "$NODE_CHAIN" -o "$NODE_DOCKER_BRIDGE" -j REJECT
    $ipt -I FORWARD 1 -j "$NODE_CHAIN"
  done
}

first_in_forward() {
  # kube-proxy prepends its jumps when it first syncs; ours goes back to the top afterwards.
  if [ "$(iptables -S FORWARD | sed -n 2p)" != "-A FORWARD -j $NODE_CHAIN" ]; then
    iptables -D FORWARD -j "$NODE_CHAIN"
    iptables -I FORWARD 1 -j "$NODE_CHAIN"
  fi
}

node_docker() { docker --host "unix://$NODE_DOCKER_SOCK" "$@"; }

start_dockerd() {
  rm -f "$NODE_DOCKER_SOCK" "$NODE_RUN/dockerd.pidfile"
  # A proxy on a closed local port makes any accidental image pull fail at once instead of
  # trying a registry.
  HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY= \
    start dockerd dockerd \
    --data-root "$NODE_DOCKER_DATA" --exec-root "$NODE_RUN/docker" \
    --host "unix://$NODE_DOCKER_SOCK" --pidfile "$NODE_RUN/dockerd.pidfile" \
    --bridge "$NODE_DOCKER_BRIDGE" --iptables=false --ip-masq=false --ip-forward=false \
    --ip6tables=false --exec-opt native.cgroupdriver=cgroupfs
  wait_for "the node's dockerd" 90 node_docker info || { tail -n 30 "$NODE_RUN/dockerd.log" >&2; exit 1; }
}

images() {
  local work
  if ! node_docker image inspect "$PAUSE_IMAGE" >/dev/null 2>&1; then
    work=$(mktemp -d "$NODE_RUN/pause.XXXXXX")
    tar -xzf "$(ls "$CHAOSKIT_CACHE"/kube/src/kubernetes_*.orig.tar.gz)" -C "$work" --strip-components=4 \
      --wildcards '*/build/pause/linux/pause.c'
    gcc -Os -static -o "$work/pause" "$work/pause.c"
    tar -C "$work" -c pause | node_docker import --change 'ENTRYPOINT ["/pause"]' - "$PAUSE_IMAGE" >/dev/null
    rm -rf "$work"
    echo "built $PAUSE_IMAGE"
  fi
  if ! node_docker image inspect "$BUSYBOX_IMAGE" >/dev/null 2>&1; then
    work=$(mktemp -d "$NODE_RUN/busybox.XXXXXX")
    mkdir -p "$work/bin" "$work/etc" "$work/tmp"
    cp /bin/busybox "$work/bin/busybox"
    "$work/bin/busybox" --install -s "$work/bin"
    # --install -s links to the path it ran from: point them at /bin/busybox inside the image.
    find "$work/bin" -type l -exec ln -sf /bin/busybox {} \;
    printf 'root:x:0:0:root:/:/bin/sh\n' >"$work/etc/passwd"
    printf 'root:x:0:\n' >"$work/etc/group"
    tar -C "$work" -c . | node_docker import --change 'CMD ["/bin/sh"]' - "$BUSYBOX_IMAGE" >/dev/null
    rm -rf "$work"
    echo "built $BUSYBOX_IMAGE"
  fi
}

cni() {
  cat >"$NODE_RUN/cni/net.d/10-chaoskit.conflist" <<CNI
{
  "cniVersion": "0.4.0",
  "name": "chaoskit",
  "plugins": [
    {"type": "bridge", "bridge": "$POD_BRIDGE", "isGateway": true, "hairpinMode": true, "ipMasq": false,
     "ipam": {"type": "host-local", "dataDir": "$NODE_RUN/cni/ipam",
              "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}}
  ]
}
CNI
  echo "nameserver 127.0.0.1" >"$NODE_RUN/resolv.conf"
}

scheduler_config() {
  cat >"$NODE_RUN/scheduler.yaml" <<YAML
apiVersion: kubescheduler.config.k8s.io/v1beta1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $RUN/kubeconfig
leaderElection:
  leaderElect: false
profiles:
- schedulerName: $NODE_SCHEDULER
YAML
}

kubelet_config() {
  cat >"$NODE_RUN/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
registerWithTaints:
- key: chaoskit.io/real-node
  value: "true"
  effect: NoSchedule
YAML
}

# The API server listens on 127.0.0.1 only, and pods can't reach the host's loopback: a relay on
# the node IP (the address scripts/kube-up advertises for the "kubernetes" Service) lets in-cluster
# clients (the operator's Jobs, the node agent) reach it through the Service, with its own TLS.
api_relay() {
  start api-relay socat "TCP-LISTEN:$API_PORT,bind=$NODE_IP,fork,reuseaddr" "TCP:127.0.0.1:$API_PORT"
  wait_for "the API relay on $NODE_IP:$API_PORT" 20 curl -sf --max-time 3 --cacert "$RUN/pki/ca.crt" \
    -H "@$RUN/pki/auth.header" --resolve "kubernetes:$API_PORT:$NODE_IP" "https://kubernetes:$API_PORT/readyz" \
    || { tail -n 10 "$NODE_RUN/api-relay.log" >&2; exit 1; }
}

start_node() {
  start kubelet "$BIN/kubelet" \
    --config "$NODE_RUN/kubelet.yaml" \
    --kubeconfig "$RUN/kubeconfig" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --address "$NODE_IP" \
    --node-labels "chaoskit.io/real-node=true" \
    --read-only-port 0 --healthz-bind-address 127.0.0.1 --healthz-port "$NODE_KUBELET_HEALTHZ_PORT" \
    --port "$NODE_KUBELET_PORT" \
    --client-ca-file "$RUN/pki/ca.crt" --anonymous-auth=false \
    --authentication-token-webhook --authorization-mode Webhook \
    --container-runtime docker --docker-endpoint "unix://$NODE_DOCKER_SOCK" \
    --container-runtime-endpoint "unix://$NODE_RUN/dockershim.sock" \
    --experimental-dockershim-root-directory "$NODE_RUN/dockershim" \
    --root-dir "$NODE_RUN/kubelet" --volume-plugin-dir "$NODE_RUN/volume-plugins" \
    --cert-dir "$NODE_RUN/kubelet-pki" \
    --pod-infra-container-image "$PAUSE_IMAGE" --cgroup-driver cgroupfs \
    --network-plugin cni --cni-bin-dir /usr/lib/cni --cni-conf-dir "$NODE_RUN/cni/net.d" \
    --cni-cache-dir "$NODE_RUN/cni/cache" \
    --resolv-conf "$NODE_RUN/resolv.conf" \
    --fail-swap-on=false \
    --image-gc-high-threshold 100 --image-gc-low-threshold 99 \
    --eviction-hard 'memory.available<100Mi,nodefs.available<1%,imagefs.available<1%' \
    --node-status-update-frequency 2s
  start kube-proxy "$BIN/kube-proxy" \
    --kubeconfig "$RUN/kubeconfig" \
    --proxy-mode iptables --cluster-cidr "$POD_CIDR" --hostname-override "$NODE_NAME" \
    --metrics-bind-address "127.0.0.1:$NODE_PROXY_METRICS_PORT" \
    --healthz-bind-address "127.0.0.1:$NODE_PROXY_HEALTHZ_PORT" \
    --nodeport-addresses "$NODE_IP/32" \
    --conntrack-max-per-core 0 --conntrack-tcp-timeout-established 0 --conntrack-tcp-timeout-close-wait 0
  start kube-scheduler "$BIN/kube-scheduler" \
    --config "$NODE_RUN/scheduler.yaml" --port 0 --secure-port 0
}

node_ready() {
  curl -sf --max-time 3 --cacert "$RUN/pki/ca.crt" -H "@$RUN/pki/auth.header" \
    "https://127.0.0.1:$API_PORT/api/v1/nodes/$NODE_NAME" | python3 -c '
import json, sys
conditions = json.load(sys.stdin).get("status", {}).get("conditions", [])
sys.exit(0 if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions) else 1)'
}

claim() {
  local owner
  owner=$(cat "$NODE_OWNER" 2>/dev/null || true)
  if [ -n "$owner" ] && [ "$owner" != "$NODE_RUN" ] && [ -d "$owner" ]; then
    echo "kube-up: a real node started from another runtime directory ($owner) runs on this host," \
      "and there can be one: stop it (CHAOSKIT_RUNTIME=${owner%/kube/node} scripts/kube-down)," \
      "or start this cluster without one (KUBE_REAL_NODE=0)" >&2
    exit 1
  fi
  echo "$NODE_RUN" >"$NODE_OWNER"
}

claim
baseline
bridges
confine
api_relay
start_dockerd
images
cni
scheduler_config
kubelet_config
start_node
wait_for "the real node $NODE_NAME Ready" 120 node_ready || { tail -n 30 "$NODE_RUN/kubelet.log" >&2; exit 1; }
wait_for "kube-proxy's first sync" 60 iptables -t nat -S KUBE-SERVICES \
  || { tail -n 30 "$NODE_RUN/kube-proxy.log" >&2; exit 1; }
first_in_forward
echo "real node $NODE_NAME Ready ($NODE_IP, pods in $POD_CIDR)"
