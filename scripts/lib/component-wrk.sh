# wrk, the reference load generator: `python -m bench http_load` prints its figures beside
# http.load's on the same servers. Nothing to start. Sourced by scripts/test.

APT_PACKAGES+=(wrk)
