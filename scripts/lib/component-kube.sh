# The Kubernetes cluster for tests/k8s (sourced by scripts/test): etcd + kube-apiserver +
# kube-controller-manager, and a real node (kubelet on a dockerd of its own, kube-proxy,
# kube-scheduler, CNI), all built from Debian's source package by scripts/kube-up.
#
# A developer's own KUBECONFIG is deliberately ignored (the suite drains nodes); to run the suite
# against another disposable cluster (kind), set CHAOSKIT_TEST_KUBECONFIG to its kubeconfig.

APT_PACKAGES+=(golang-1.19-go rsync make golang-github-modern-go-reflect2-dev etcd-server openssl curl ca-certificates)
# The real node: its container engine, CNI plugins, what kube-proxy and the kubelet call, and what
# the pause and busybox images are made from.
APT_PACKAGES+=(docker.io containernetworking-plugins conntrack socat ebtables ethtool iptables iproute2
  busybox-static gcc libc6-dev)

component_kube_down() {
  scripts/kube-down
}

component_kube_up() {
  if [ -n "${CHAOSKIT_TEST_KUBECONFIG:-}" ]; then
    export KUBECONFIG=$CHAOSKIT_TEST_KUBECONFIG
    echo "using the cluster in CHAOSKIT_TEST_KUBECONFIG=$KUBECONFIG"
    return 0
  fi
  step "Kubernetes: control plane and a real node (scripts/kube-up)"
  local kubeconfig
  STOPPERS+=(component_kube_down)
  kubeconfig=$(scripts/kube-up | tail -n 1)
  export KUBECONFIG=$kubeconfig
  echo "KUBECONFIG=$KUBECONFIG"
}
