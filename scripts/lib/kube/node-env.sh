# The real node's names, addresses and paths, shared by node-up.sh and node-down.sh. Sourced.
# Everything lives under $RUN/node (runtime) and $CHAOSKIT_CACHE/kube (images survive restarts).
# The addresses are private ranges no other chaoskit component uses; bridge names start with
# "ck-k" so that they are easy to tell from other engineers' bridges.

NODE_NAME=${KUBE_REAL_NODE_NAME:-chaoskit-real-1}
NODE_RUN=$RUN/node
NODE_DOCKER_DATA=${CHAOSKIT_CACHE:-/var/cache/chaoskit}/kube/node-docker
NODE_DOCKER_SOCK=$NODE_RUN/docker.sock
NODE_SCHEDULER=chaoskit-real-node

# The node's own address sits on an empty bridge: the kernel has no dummy links and the kubelet
# refuses a loopback node IP.
NODE_BRIDGE=ck-knode
NODE_IP=10.77.0.1
# Pods: the CNI bridge and host-local range.
POD_BRIDGE=ck-kpod
POD_CIDR=10.78.0.0/24
# The node dockerd needs a bridge of its own (with --bridge=none it deletes another dockerd's
# docker0); no container of ours uses it.
NODE_DOCKER_BRIDGE=ck-kdock
NODE_DOCKER_BRIDGE_CIDR=10.79.0.1/24
# scripts/kube-up's --service-cluster-ip-range, and the simulated kubelet's made-up pod and host
# addresses (tests/k8s/kubelet.py).
SERVICE_CIDR=10.0.0.0/24
SIM_POD_CIDR=10.244.0.0/16
SIM_HOST_CIDR=10.99.0.0/24

NODE_CHAIN=CHAOSKIT-KUBE-NODE
# Bridges, routes, iptables and sysctls are host-wide: one real node per host. This file names the
# runtime directory of the node that owns them.
NODE_OWNER=/run/chaoskit-kube-real-node
NODE_KUBELET_PORT=10250
NODE_KUBELET_HEALTHZ_PORT=10248
NODE_PROXY_METRICS_PORT=10249
NODE_PROXY_HEALTHZ_PORT=10256

PAUSE_IMAGE=k8s.gcr.io/pause:3.2
BUSYBOX_IMAGE=chaoskit-test/busybox:latest

# Set by the kubelet (overcommit, panic) and kube-proxy (route_localnet); restored on teardown.
NODE_SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.conf.all.route_localnet)
# Paths the 1.20 kubelet writes whatever its flags say.
NODE_FIXED_PATHS=(/var/log/pods /var/log/containers /var/lib/kubelet/device-plugins /var/lib/kubelet)
