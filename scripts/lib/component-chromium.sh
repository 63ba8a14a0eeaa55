# Headless Chromium for tests/integration/test_reports*.py: renders the HTML report to a PNG and
# dumps its DOM. Nothing to start: the tests run it per page. Sourced by scripts/test.

APT_PACKAGES+=(chromium)

component_chromium_up() {
  local binary
  binary=$(command -v chromium || true)
  if [ -z "$binary" ]; then
    echo "chromium: not installed (apt-get install chromium)" >&2
    return 0
  fi
  export CHAOSKIT_CHROMIUM=$binary
  echo "chromium: $("$binary" --version 2>/dev/null || echo "$binary")"
}
