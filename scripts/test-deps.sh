#!/usr/bin/env bash
# Install and start everything the test suite talks to, on Debian (run as root, as CI does):
# PostgreSQL, Redis, pcscd + the vpcd virtual reader, the fonts the first-password slips
# embed (IPAex Gothic, DejaVu Sans Mono) with poppler-utils and zbar-tools that read them
# back (tests/admin/pdf_layout.py), Chromium, Xvfb/xdotool, Node + npm
# openid-client and axe-core (tests/browser), wrk + npm oidc-provider (the bench harness's
# smoke test), docker-compose and
# nginx (tests/deploy: no Docker engine, Debian's docker-compose checks docker/compose.yaml and
# nginx runs docker/nginx/nginx.conf). Idempotent: already-installed packages and running
# services are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

# The system packages are installed once: after a run that found (or installed) them all,
# a stamp holding the wanted list lets later runs skip the checks and apt-get entirely, as
# long as the list is the same and the commands the tests start are still there. Delete
# .venv/.test-deps-packages to check every package again.
PACKAGES="postgresql redis-server pcscd vsmartcard-vpcd libpcsclite-dev swig build-essential \
python3-dev chromium fonts-noto-cjk xvfb xdotool python3-tk wrk \
fonts-ipaexfont-gothic fonts-dejavu-core poppler-utils zbar-tools"
STAMP=.venv/.test-deps-packages
stamp_is_good() {
  [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PACKAGES" ] || return 1
  local cmd
  for cmd in psql pg_isready redis-server redis-cli chromium node npm docker-compose Xvfb wrk \
             pdftoppm pdffonts zbarimg; do
    command -v "$cmd" >/dev/null 2>&1 || return 1
  done
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]
}

if stamp_is_good; then
  echo "test-deps: system packages installed (as $STAMP records)"
else
  need_pkgs=()
  # postgresql also brings /usr/lib/postgresql/*/bin/{initdb,pg_ctl}, and redis-server brings
  # Sentinel (redis-server --sentinel): tests/multi_instance starts private servers with them.
  have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
  for pkg in $PACKAGES; do
    have "$pkg" || need_pkgs+=("$pkg")
  done
  # Node may come from elsewhere (nodesource's nodejs bundles npm and conflicts with Debian's):
  # ask for the commands, not the packages.
  command -v node >/dev/null 2>&1 || need_pkgs+=(nodejs)
  command -v npm >/dev/null 2>&1 || need_pkgs+=(npm)
  # tests/deploy: the compose file's checker and the reverse proxy (any install will do).
  command -v docker-compose >/dev/null 2>&1 || need_pkgs+=(docker-compose)
  nginx_installed_here=0
  if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    need_pkgs+=(nginx-light); nginx_installed_here=1
  fi
  if [ ${#need_pkgs[@]} -gt 0 ]; then
    echo "test-deps: installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
    # The tests start nginx themselves on free ports; the package's own service on :80 (where
    # an init system started it) is not wanted.
    if [ "$nginx_installed_here" = 1 ] && command -v systemctl >/dev/null 2>&1 \
       && [ -d /run/systemd/system ]; then
      systemctl disable --now nginx >/dev/null 2>&1 || true
    fi
  fi
  mkdir -p "$(dirname "$STAMP")"
  printf '%s' "$PACKAGES" > "$STAMP"
fi

# PostgreSQL: trust auth on loopback, database "test".
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.5; done
fi
if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
  hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -n1)
  if ! grep -q "mynagate-tests" "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust # mynagate-tests\nhost all all ::1/128 trust # mynagate-tests' "$hba"
    version=$(ls /etc/postgresql | sort -V | tail -n1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    sleep 1
  fi
  psql -h 127.0.0.1 -U postgres -tc "select 1 from pg_database where datname='test'" | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -c 'create database test' >/dev/null
fi
echo "test-deps: PostgreSQL ready"

# Redis (no persistence: test state only).
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do redis-cli ping >/dev/null 2>&1 && break; sleep 0.2; done
fi
echo "test-deps: Redis ready"

# pcscd with the vpcd virtual reader.
if [ -f scripts/pcsc-up.sh ]; then bash scripts/pcsc-up.sh; fi

# The independent relying party (npm openid-client v6).
if [ -f tests/rp_node/package.json ] && [ -x .venv/bin/python ]; then
  (cd tests/rp_node && { [ -d node_modules/openid-client ] || npm ci --no-audit --no-fund --silent || npm install --no-audit --no-fund --silent; })
  echo "test-deps: openid-client installed"
fi
# axe-core, which the browser journeys inject into every page they visit (tests/browser/a11y.py).
if [ -f tests/browser/package.json ]; then
  (cd tests/browser && { [ -f node_modules/axe-core/axe.min.js ] || npm ci --no-audit --no-fund --silent || npm install --no-audit --no-fund --silent; })
  echo "test-deps: axe-core installed"
fi

# The bench harness's peer (npm oidc-provider v9), for its smoke test (tests/bench).
if [ -f bench/peer/package.json ]; then
  (cd bench/peer && { [ -d node_modules/oidc-provider ] || npm ci --no-audit --no-fund --silent || npm install --no-audit --no-fund --silent; })
  echo "test-deps: oidc-provider installed"
fi
echo "test-deps: done"
