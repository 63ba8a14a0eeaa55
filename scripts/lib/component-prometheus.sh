# Prometheus for tests/integration/prometheus: only the binary from Debian's package. Each test
# module starts its own Prometheus on 127.0.0.1 (a free port, a config and rule file the test writes,
# a tmp data dir) and stops it, so nothing is started here.
# Sourced by scripts/test after scripts/lib/common.sh.

APT_PACKAGES+=(prometheus openssl)

# The package enables and, where an init system runs, starts its own service on install; the tests
# never use it, so it is stopped and disabled (by its unit name, nothing broader) to leave nothing
# running that the tests did not start.
component_prometheus_up() {
  if [ ! -x /usr/bin/prometheus ]; then
    echo "prometheus: /usr/bin/prometheus is missing (apt-get install prometheus)" >&2
    return 0 # the suites fail under CI=true and say how to get it
  fi
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus.service 2>/dev/null; then
    echo "prometheus: stopping the packaged prometheus.service (the tests start their own)"
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/prometheus ] && /etc/init.d/prometheus status >/dev/null 2>&1; then
    echo "prometheus: stopping the packaged prometheus service (the tests start their own)"
    /etc/init.d/prometheus stop >/dev/null 2>&1 || true
  fi
  echo "prometheus: $(/usr/bin/prometheus --version 2>&1 | head -1)"
}
