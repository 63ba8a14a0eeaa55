# Helpers shared by scripts/test and the component files. Sourced, not run.

step() { printf '\n==> %s\n' "$*"; }

# Components append to these from their component-*.sh file.
APT_PACKAGES=(python3-venv)

apt_install_all() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "all present"
  fi
}

# The virtualenv lives outside the checkout; it is reinstalled when pyproject.toml changes.
VENV=${CHAOSKIT_VENV:-$CHAOSKIT_CACHE/venv}
ensure_venv() {
  local stamp="$VENV/.chaoskit-pyproject.sha"
  local want
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  # Editable installs point at one checkout: reinstall when the venv imports chaoskit from elsewhere.
  local here
  here=$(cd /tmp && "$VENV/bin/python" -c "import chaoskit, os; print(os.path.dirname(os.path.dirname(os.path.realpath(chaoskit.__file__))))" 2>/dev/null || true)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ "$here" != "$(pwd -P)" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e ".[test]"
    echo "$want" > "$stamp"
  else
    echo "up to date ($VENV)"
  fi
}

# wait_for DESCRIPTION SECONDS COMMAND... : poll COMMAND every 0.5 s until it succeeds.
wait_for() {
  local what=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "timed out after ${seconds}s waiting for $what" >&2
      return 1
    fi
    sleep 0.5
  done
}

# stop_pid PIDFILE : TERM the process we started (by pid), then KILL after 20 s.
stop_pid() {
  local pidfile=$1 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}
