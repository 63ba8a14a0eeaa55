# Redis, Redis Sentinel and PostgreSQL 15 for tests/integration/datastores: only the programs from
# Debian's packages. The tests start their own servers on 127.0.0.1 (free ports, data directories
# of their own, PostgreSQL as the postgres user, which it requires) and stop them, so nothing is
# started here. Sourced by scripts/test after scripts/lib/common.sh.

APT_PACKAGES+=(redis-server redis-sentinel postgresql-15)

# The packages enable and, where an init system runs, start their own services on install; the
# tests never use them, so they are stopped (by their unit names, nothing broader) to leave nothing
# running that the tests did not start.
component_datastores_up() {
  local unit
  for unit in redis-server redis-sentinel postgresql; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$unit.service" 2>/dev/null; then
      echo "datastores: stopping the packaged $unit.service (the tests start their own)"
      systemctl disable --now "$unit.service" >/dev/null 2>&1 || true
    elif [ -x "/etc/init.d/$unit" ] && "/etc/init.d/$unit" status >/dev/null 2>&1; then
      echo "datastores: stopping the packaged $unit service (the tests start their own)"
      "/etc/init.d/$unit" stop >/dev/null 2>&1 || true
    fi
  done
  if ! command -v redis-server >/dev/null 2>&1 || [ ! -x /usr/lib/postgresql/15/bin/postgres ]; then
    echo "datastores: redis-server or postgresql-15 is missing (apt-get install redis-server redis-sentinel postgresql-15)" >&2
    return 0 # the suite fails under CI=true and says how to get them
  fi
  echo "datastores: $(redis-server --version | cut -d' ' -f1-3), $(/usr/lib/postgresql/15/bin/postgres --version)"
}
