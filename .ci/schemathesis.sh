#!/usr/bin/env bash
# Contract test: schemathesis (PyPI, pinned) generates requests from the
# service's own /openapi.json and checks every answer against it: no server
# errors, documented status codes, content types and response schemas. The
# document itself is first checked against the OpenAPI 3.1 meta-schema
# (openapi-spec-validator, PyPI, pinned), and its examples against their
# schemas (.ci/openapi_examples.py).
#
# The service runs from the debug binary with a temp SQLite database, a
# `static` extractor on a local HLS origin (python3 -m http.server on
# 127.0.0.1) and the calendar URL on that same origin, so nothing leaves the
# machine: schemathesis talks only to the service, the service only to the
# origin. Bounded: examples per operation, a per-request timeout and a hard
# time limit. No operation is excluded here; schemathesis itself skips
# `GET /openapi.json`, the document it loaded (that one is checked by the
# validator above and by tests/openapi.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

SCHEMATHESIS_VERSION=4.32.5
SPEC_VALIDATOR_VERSION=0.9.0
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-50}
CHECKS=${SCHEMATHESIS_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance}
# A hard bound on the schemathesis run; a run that needs longer fails.
MAX_TIME=${SCHEMATHESIS_MAX_TIME:-900}
target=${CARGO_TARGET_DIR:-target}
venv=$(realpath -m "$target/schemathesis-venv")

if [ ! -x "$venv/bin/openapi-spec-validator" ] \
  || ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION, openapi-spec-validator $SPEC_VALIDATOR_VERSION (PyPI) into $venv"
  python3 -m venv "$venv"
  timeout 600 "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "schemathesis==$SCHEMATHESIS_VERSION" "openapi-spec-validator==$SPEC_VALIDATOR_VERSION"
fi

echo "== cargo build (debug binary)"
cargo build --locked --quiet --bin f1-stream
bin=$(realpath "$target/debug/f1-stream")

source .ci/lib.sh

# The local origin: a master and a live media playlist with segments, and an
# Ergast-format calendar for /schedule/refresh.
origin_port=$(free_port)
write_hls_files "$tmp/www"
cp tests/fixtures/schedule/season_2026.json "$tmp/www/calendar.json"
python3 -m http.server "$origin_port" --bind 127.0.0.1 --directory "$tmp/www" >"$tmp/origin.log" 2>&1 &
pids+=($!)
origin="http://127.0.0.1:$origin_port"
# The startup run checks the origin's streams: it must be listening first.
wait_for "$origin/master.m3u8"

service_port=$(free_port)
service="http://127.0.0.1:$service_port"
{ service_config_head "$service_port"; cat <<EOF; } >"$tmp/config.toml"
[proxy]
signing_key = "schemathesis-ci-signing-key"

[schedule]
enabled = false
url = "$origin/calendar.json"

[[extractors]]
site_key = "local"
site_name = "Local origin"
kind = "static"
streams = [{ url = "$origin/master.m3u8", title = "Local race", session = "race" }]
EOF

RUST_LOG=warn "$bin" serve -c "$tmp/config.toml" >"$tmp/service.log" 2>&1 &
pids+=($!)

echo "== waiting for $service/health"
wait_for "$service/health"

echo "== openapi-spec-validator (OpenAPI 3.1 meta-schema)"
http_get "$service/openapi.json" >"$tmp/openapi.json"
"$venv/bin/openapi-spec-validator" "$tmp/openapi.json"
"$venv/bin/python" .ci/openapi_examples.py "$tmp/openapi.json"

# Random tokens only ever meet the signature check (403). So that the
# proxy's success answers are checked against the document too, half of the
# generated token/url/sig/src values are real signed ones: `f1-stream sign`
# for the playlist, the relay token read from playlists the proxy rewrote.
proxy_path=$("$bin" sign -c "$tmp/config.toml" --src local "$origin/master.m3u8")
media_path=$(http_get "$service$proxy_path" | grep -o '/proxy/[^[:space:]]*' | sed -n 1p)
relay_path=$(http_get "$service$media_path" | grep -o '/relay/[^[:space:]]*' | sed -n 1p)
proxy_token=$(echo "$proxy_path" | cut -d/ -f3)
relay_token=$(echo "$relay_path" | cut -d/ -f3)
[ -n "$proxy_token" ] && [ -n "$relay_token" ] || { echo "no signed proxy/relay token"; exit 1; }
cat >"$tmp/schemathesis.toml" <<EOF
[dictionaries.proxy_token]
values = ["$proxy_token"]
[dictionaries.relay_token]
values = ["$relay_token"]
[dictionaries.proxy_url]
values = ["$(echo "$proxy_token" | cut -d. -f1)"]
[dictionaries.proxy_sig]
values = ["$(echo "$proxy_token" | cut -d. -f2)"]
[dictionaries.relay_url]
values = ["$(echo "$relay_token" | cut -d. -f1)"]
[dictionaries.relay_sig]
values = ["$(echo "$relay_token" | cut -d. -f2)"]
[dictionaries.src]
values = ["local"]

[[operations]]
include-path = "/proxy/{token}/{name}"
parameters = { "path.token" = { dictionary = "proxy_token", probability = 0.5 } }

[[operations]]
include-path = "/relay/{token}/{name}"
parameters = { "path.token" = { dictionary = "relay_token", probability = 0.5 } }

[[operations]]
include-path = "/proxy"
parameters = { "query.url" = { dictionary = "proxy_url", probability = 0.5 }, "query.sig" = { dictionary = "proxy_sig", probability = 0.5 }, "query.src" = { dictionary = "src", probability = 0.5 } }

[[operations]]
include-path = "/relay"
parameters = { "query.url" = { dictionary = "relay_url", probability = 0.5 }, "query.sig" = { dictionary = "relay_sig", probability = 0.5 }, "query.src" = { dictionary = "src", probability = 0.5 } }
EOF

echo "== schemathesis $SCHEMATHESIS_VERSION: $MAX_EXAMPLES examples per operation, at most ${MAX_TIME}s"
# Not --max-time: schemathesis would keep fuzzing until that budget is spent.
# Run from $tmp: schemathesis keeps a crash cache in its working directory.
set +e
(
  cd "$tmp"
  timeout "$MAX_TIME" "$venv/bin/schemathesis" --no-color --config-file "$tmp/schemathesis.toml" \
    run "$service/openapi.json" \
    --url "$service" \
    --checks "$CHECKS" \
    --max-examples "$MAX_EXAMPLES" \
    --request-timeout 20 \
    --seed "${SCHEMATHESIS_SEED:-20260308}" \
    --generation-database none \
    --warnings off
) >"$tmp/schemathesis.log" 2>&1
status=$?
set -e
if [ "$status" -eq 0 ]; then
  tail -n 25 "$tmp/schemathesis.log"
else
  cat "$tmp/schemathesis.log"
fi
echo "== schemathesis finished in $((SECONDS - started))s (exit $status)"
exit "$status"
