#!/usr/bin/env bash
# Sourced (not run) by the CI scripts that start the service against a local
# origin (.ci/prometheus-check.sh, .ci/schemathesis.sh): a temp dir whose
# background processes (their pids go in `pids`) are stopped on exit, with
# the tail of every *.log in it printed when the script failed; a free port;
# HTTP GET and waiting for a URL; the tiny HLS origin's files; and the part
# of the service's config both share.

tmp=$(mktemp -d)
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    timeout 10 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ]; then
    for log in "$tmp"/*.log; do
      [ -f "$log" ] && { echo "--- $(basename "$log") (last 40 lines)"; tail -n 40 "$log"; }
    done
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT

# A TCP port free on 127.0.0.1 at the time of asking.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Writes into folder $1 a master playlist, the live media playlist it
# names and that playlist's two MPEG-TS-sized segments.
write_hls_files() {
  mkdir -p "$1"
  printf '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1500000,RESOLUTION=1280x720\nmedia.m3u8\n' >"$1/master.m3u8"
  printf '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:6.0,\nseg1.ts\n#EXTINF:6.0,\nseg2.ts\n' >"$1/media.m3u8"
  head -c 188000 /dev/zero | tr '\0' 'G' >"$1/seg1.ts"
  cp "$1/seg1.ts" "$1/seg2.ts"
}

# The body of URL $1 on stdout; fails on an HTTP error or after 10 s.
http_get() {
  python3 -c 'import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=10).read())' "$1"
}

# POSTs an empty body to URL $1, the answer's body on stdout; fails on an
# HTTP error or after 30 s.
http_post() {
  python3 -c 'import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=b"", method="POST"), timeout=30).read())' "$1"
}

# Waits up to about 20 s for URL $1 to answer 2xx; fails if it never does.
wait_for() {
  for _ in $(seq 100); do
    http_get "$1" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  http_get "$1" >/dev/null
}

# Prints the start of a service config: listening on 127.0.0.1:$1, its
# database in $tmp, loopback origins allowed, a run at start, 5 s timeouts.
# The caller appends its own [proxy], [schedule] and [[extractors]].
service_config_head() {
  cat <<EOF
[server]
listen = "127.0.0.1:$1"

[database]
url = "sqlite://$tmp/f1-stream.db"

[network]
allow_private_networks = true

[extraction]
run_on_startup = true
extractor_timeout_secs = 5

[health]
timeout_secs = 5

EOF
}
