#!/usr/bin/env bash
# Real-Prometheus check of dashboards/: starts f1-stream against a local HLS
# origin and a real Prometheus (Debian's package) on 127.0.0.1, generates
# traffic, then queries every dashboard panel expression and every alert
# expression through Prometheus's HTTP API. Also `promtool check metrics` on
# /metrics and `promtool check rules` / `check config` on dashboards/.
# Loopback only, bounded in time, stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
helper=.ci/prometheus_check.py

if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  echo "== installing prometheus (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get update -qq
  # The package's postinst may try to start a service; without an init
  # system that is refused, which is fine: we start our own below.
  timeout 300 apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

echo "== promtool check rules / config"
promtool check rules dashboards/alerts.yml
promtool check config dashboards/prometheus.yml

echo "== cargo build (debug binary)"
cargo build --locked --quiet --bin f1-stream
bin=${CARGO_TARGET_DIR:-target}/debug/f1-stream

source .ci/lib.sh

# A tiny HLS origin: a master, a live media playlist with segments, a
# non-HLS file; missing paths answer 404.
origin_port=$(free_port)
write_hls_files "$tmp/www"
echo "this is not a playlist" >"$tmp/www/notes.m3u8"
python3 $helper origin "$tmp/www" "$origin_port" >"$tmp/origin.log" 2>&1 &
pids+=($!)
origin="http://127.0.0.1:$origin_port"

service_port=$(free_port)
service="http://127.0.0.1:$service_port"
{ service_config_head "$service_port"; cat <<EOF; } >"$tmp/config.toml"
[schedule]
enabled = false

[[extractors]]
site_key = "local"
site_name = "Local origin"
kind = "static"
streams = [
  { url = "$origin/master.m3u8", title = "Master", quality = "720p", session = "race" },
  { url = "$origin/media.m3u8", title = "Media", session = "race" },
  { url = "$origin/missing.m3u8", title = "Missing" },
  { url = "$origin/notes.m3u8", title = "Not HLS" },
]

[[extractors]]
site_key = "broken"
site_name = "Broken list"
kind = "m3u"
url = "$origin/missing-list.m3u"
EOF

wait_for "$origin/master.m3u8"

# Signed proxy paths (sign opens the database, so before the service runs).
proxy_path=$(timeout 30 "$bin" --config "$tmp/config.toml" sign "$origin/media.m3u8")
bad_path=$(timeout 30 "$bin" --config "$tmp/config.toml" sign "$origin/gone.m3u8")

echo "== starting f1-stream on $service"
RUST_LOG=info "$bin" --config "$tmp/config.toml" serve >"$tmp/service.log" 2>&1 &
pids+=($!)
wait_for "$service/health"

prom_port=$(free_port)
prom="http://127.0.0.1:$prom_port"
python3 $helper prom-config dashboards/prometheus.yml "$tmp/prometheus.yml" "127.0.0.1:$service_port"
cp dashboards/alerts.yml "$tmp/alerts.yml"
echo "== starting Prometheus $(prometheus --version 2>&1 | head -n1 | awk '{print $3}') on $prom"
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" --storage.tsdb.retention.time=1h \
  >"$tmp/prometheus.log" 2>&1 &
pids+=($!)
timeout 60 python3 $helper wait-up "$prom" 45

echo "== traffic: POST /extract, proxy, relay"
http_post "$service/extract"
echo
timeout 60 python3 $helper traffic "$service" "$proxy_path" "$bad_path"
timeout 60 python3 $helper wait-data "$prom" 30

echo "== querying Prometheus with every panel and alert expression"
queries=0
timeout 120 python3 $helper check "$prom" dashboards/f1-stream.json dashboards/alerts.yml || queries=$?

echo "== promtool check metrics"
lint=0
http_get "$service/metrics" >"$tmp/metrics.txt"
promtool check metrics <"$tmp/metrics.txt" || lint=$?
echo "/metrics: $(grep -c '^f1stream_' "$tmp/metrics.txt") f1stream samples, promtool exit $lint"

if [ "$queries" -ne 0 ] || [ "$lint" -ne 0 ]; then
  echo "prometheus check FAILED (queries exit $queries, promtool check metrics exit $lint)"
  exit 1
fi
echo "prometheus check passed in $((SECONDS - started))s"
