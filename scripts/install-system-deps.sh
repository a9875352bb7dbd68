#!/usr/bin/env bash
# Installs the Debian packages gridpatrol needs, only when they are missing:
#   postgresql-15-postgis-3  (PostgreSQL 15 itself comes with it)  – the embedded PostGIS
#   chromium                 (with --test)                          – the browser tests and screenshots
#   fonts-wqy-microhei       (with --test)                          – so screenshots show Chinese names
#   wrk                      (with --bench)                         – the HTTP load generator of the benchmarks
#   postgresql-15-pgrouting  (with --bench)                         – pgr_chinesePostman, a patrol reference
#   etcd-server, python3-venv (with --test, --cluster, --bench)      – the local Patroni cluster (gis.db.cluster):
#                                                                      etcd, and Patroni's virtualenv as root
# Skips the server packages when DATABASE_URL points at an existing database.
set -euo pipefail

want=()
if [[ -z "${DATABASE_URL:-}" && ! -f /usr/share/postgresql/15/extension/postgis.control ]]; then
  want+=(postgresql-15-postgis-3)
fi
if [[ "${1:-}" == "--bench" ]]; then
  command -v wrk >/dev/null || want+=(wrk)
  if [[ -z "${DATABASE_URL:-}" && ! -f /usr/share/postgresql/15/extension/pgrouting.control ]]; then
    want+=(postgresql-15-pgrouting)
  fi
fi
if [[ "${1:-}" == "--test" || "${1:-}" == "--cluster" || "${1:-}" == "--bench" ]]; then
  command -v etcd >/dev/null || want+=(etcd-server)
  /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || want+=(python3-venv)
fi
if [[ "${1:-}" == "--test" ]]; then
  [[ -x /usr/bin/chromium ]] || want+=(chromium)
  [[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]] || want+=(fonts-wqy-microhei)
fi
[[ ${#want[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    SUDO=sudo
  else
    echo "gridpatrol needs Debian packages: ${want[*]}" >&2
    echo "install them as root: apt-get update && apt-get install -y ${want[*]}" >&2
    exit 1
  fi
else
  SUDO=
fi
echo "installing ${want[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
