#!/usr/bin/env bash
# What `make demo` / `make test` need outside Python, checked before anything runs.
#
#   bash deploy/system-prereqs.sh demo   # Debian packages for the demo (the PDF renderer's libraries)
#   bash deploy/system-prereqs.sh test   # those, the test-only packages, and the database servers
#
# Packages come from deploy/system-packages.txt. Run as root (as CI does), missing packages are
# installed with apt-get and stopped database servers are started; otherwise it stops with one
# message giving the exact command to run. Nothing is installed when everything is there.
set -euo pipefail
scope=${1:?usage: system-prereqs.sh demo|test}
here=$(cd "$(dirname "$0")" && pwd)

wanted=()
while read -r pkg needed _; do
  case "$pkg" in ''|'#'*) continue ;; esac
  if [ "$needed" = demo ] || [ "$needed" = faster ] || [ "$scope" = test ]; then wanted+=("$pkg"); fi
done < "$here/system-packages.txt"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
is_root() { [ "$(id -u)" = 0 ]; }

if ! command -v dpkg-query >/dev/null; then
  echo "note: not a Debian system, so the system packages are not checked; make sure the equivalents of" \
       "${wanted[*]} are installed (see deploy/system-packages.txt)" >&2
else
  missing=()
  for pkg in "${wanted[@]}"; do installed "$pkg" || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    if is_root && command -v apt-get >/dev/null; then
      echo "installing Debian packages: ${missing[*]}"
      apt_log=$(mktemp)
      if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
               "${missing[@]}"; } >"$apt_log" 2>&1; then
        cat "$apt_log" >&2
        echo "could not install ${missing[*]} (apt-get's output above)" >&2
        exit 1
      fi
      rm -f "$apt_log"
    else
      # only the "faster" ones missing: the demo works, so say so and go on
      required=()
      for pkg in "${missing[@]}"; do
        grep -Eq "^$pkg[[:space:]]+faster[[:space:]]" "$here/system-packages.txt" || required+=("$pkg")
      done
      if [ ${#required[@]} -eq 0 ]; then
        echo "note: ${missing[*]} not installed: PDFs render more slowly (sudo apt-get install -y ${missing[*]})" >&2
      else
        echo "make $scope needs Debian packages that are not installed: ${missing[*]}" >&2
        echo "install them, then run make $scope again:" >&2
        echo "    sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
        exit 1
      fi
    fi
  fi
fi

[ "$scope" = test ] || exit 0

# The server-backed tests (tests/servers) use a local PostgreSQL and MariaDB, and the Celery test a
# local Redis as its broker, unless they are pointed elsewhere (CRM_KPIS_TEST_PG_URL,
# CRM_KPIS_TEST_MYSQL_URL, CRM_KPIS_TEST_REDIS_URL).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pg_start='pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | head -1) main start'
maria_start='start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd'
redis_start='mkdir -p /var/lib/redis /var/log/redis && redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log'
check_server() {  # name, port, override variable, start command
  local name=$1 port=$2 override=$3 start=$4
  [ -n "${!override:-}" ] && return 0
  port_open "$port" && return 0
  if is_root && eval "$start" >/dev/null 2>&1; then
    echo "started $name"
    for _ in $(seq 1 60); do port_open "$port" && return 0; sleep 1; done
  fi
  echo "make test needs $name on 127.0.0.1:$port and it is not accepting connections." >&2
  echo "start it (as root: $start), or point the tests at another server with $override" >&2
  exit 1
}
check_server PostgreSQL 5432 CRM_KPIS_TEST_PG_URL "$pg_start"
check_server MariaDB 3306 CRM_KPIS_TEST_MYSQL_URL "$maria_start"
check_server Redis 6379 CRM_KPIS_TEST_REDIS_URL "$redis_start"
