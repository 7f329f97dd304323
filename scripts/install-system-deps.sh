#!/usr/bin/env bash
# The real servers the integration tests and benchmarks start: MariaDB (the
# OBServer's SQL side), Prometheus, Alertmanager, Prometheus' node_exporter (the
# peer), supervisord (the peer of ocp_agentd) and libfaketime (the fault suite's
# clock steps). Installs only what is missing.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "$1" ]; }
have /usr/sbin/mariadbd               || need+=(mariadb-server)
have prometheus                       || need+=(prometheus)
have prometheus-alertmanager          || need+=(prometheus-alertmanager)
have prometheus-node-exporter         || need+=(prometheus-node-exporter)
have supervisord                      || need+=(supervisor)
have rg                               || need+=(ripgrep)
have openssl                          || need+=(openssl)
# the console's browser test (tests/test_server_browser.py): headless Chromium driven by selenium
have /usr/bin/chromium                || need+=(chromium)
have /usr/bin/chromedriver            || need+=(chromium-driver)
# the fault suite steps the agent's wall clock with libfaketime (tests/faults/test_clock.py)
have faketime                         || need+=(faketime)
# mysqlclient (the bench's C-driver peer) builds against these
have pkg-config                       || need+=(pkg-config)
[ -e /usr/include/mariadb/mysql.h ]   || need+=(libmariadb-dev)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${need[*]} (run this script as root, or apt-get install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# the Debian packages start their services; the tests start their own instances
for svc in mariadb prometheus prometheus-alertmanager prometheus-node-exporter supervisor; do
  (service "$svc" stop >/dev/null 2>&1 || true)
done
