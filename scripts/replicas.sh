#!/usr/bin/env bash
# Several Streamlit processes of the app behind nginx, sticky per browser (a class that
# outgrows one process: Python runs one script at a time per process).
#
#   bash scripts/replicas.sh [REPLICAS] [LISTEN]     # defaults: one per core (at least 2), 8501
#   e.g. bash scripts/replicas.sh 2 127.0.0.1:8080
#
# Each replica listens on 127.0.0.1 only (DLTL_REPLICA_PORT, default 8600, and up); nginx
# (Debian's package, apt-get install nginx) listens on LISTEN with deploy/nginx.conf.template.
# Shared by all replicas: the disk cache (DLTL_CACHE_DIR: feature and image caches, written
# atomically; single-flight locks are files there, so a configuration is computed once
# across replicas), one cookie secret (each replica accepts the others' XSRF cookies), and
# the heavy-job budget: DLTL_MAX_JOBS (default 1 on <= 2 cores, else 2) is the total for
# the machine, split between the replicas (at least 1 each). Ctrl-C (or SIGTERM) stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
cores=$(nproc)
replicas=${1:-$(( cores > 2 ? cores : 2 ))}
listen=${2:-8501}
first_port=${DLTL_REPLICA_PORT:-8600}
python=${DLTL_PYTHON:-.venv/bin/python}
nginx_bin=${DLTL_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$nginx_bin" ] || { echo "nginx not found: apt-get install nginx" >&2; exit 2; }
[[ "$replicas" =~ ^[1-9][0-9]?$ ]] || { echo "REPLICAS must be 1-99, got $replicas" >&2; exit 2; }
total_jobs=${DLTL_MAX_JOBS:-$(( cores <= 2 ? 1 : 2 ))}
per_replica=$(( total_jobs / replicas > 0 ? total_jobs / replicas : 1 ))
run=$(mktemp -d "${TMPDIR:-/tmp}/dltl-replicas-XXXXXX")
secret=$("$python" -c 'import secrets; print(secrets.token_hex(32))')
export DLTL_CACHE_DIR=${DLTL_CACHE_DIR:-$HOME/.cache/dltl}

pids=()
stop() {
  trap - EXIT INT TERM
  [ -f "$run/nginx.pid" ] && kill "$(cat "$run/nginx.pid")" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$run"
}
trap stop EXIT INT TERM

servers=""
for ((i = 0; i < replicas; i++)); do
  port=$(( first_port + i ))
  DLTL_MAX_JOBS=$per_replica STREAMLIT_SERVER_COOKIE_SECRET="$secret" "$python" -m streamlit run streamlit_app.py --server.port "$port" \
    --server.address 127.0.0.1 --server.headless true --server.fileWatcherType none \
    > "$run/replica-$i.log" 2>&1 &
  pids+=($!)
  echo $! > "$run/replica-$i.pid"
  servers+="        server 127.0.0.1:$port max_fails=0;"$'\n'
done
for ((i = 0; i < replicas; i++)); do
  port=$(( first_port + i ))
  for _ in $(seq 1 240); do
    curl -sf "http://127.0.0.1:$port/_stcore/health" > /dev/null && break
    kill -0 "${pids[$i]}" 2>/dev/null || { echo "replica $i failed:" >&2; tail -20 "$run/replica-$i.log" >&2; exit 1; }
    sleep 0.5
  done
done
mkdir -p "$run"/{body,proxy,fastcgi,uwsgi,scgi}
SERVERS="$servers" RUN="$run" LISTEN="$listen" "$python" - <<'PY' > "$run/nginx.conf"
import os, pathlib
text = pathlib.Path("deploy/nginx.conf.template").read_text()
for key in ("RUN", "LISTEN", "SERVERS"):
    text = text.replace(f"@{key}@", os.environ[key].rstrip("\n"))
print(text.replace("@DAEMON@", "off"))
PY
echo "DLTL: $replicas replicas (ports $first_port-$(( first_port + replicas - 1 )), $per_replica heavy job(s) each) behind nginx on $listen (run folder $run)"
"$nginx_bin" -p "$run" -c "$run/nginx.conf" -e "$run/nginx-error.log" &
pids+=($!)
wait -n "${pids[@]}"
