#!/usr/bin/env python3
"""Helpers of .ci/prometheus-check.sh (stdlib only, loopback only).

  origin DIR PORT                    serve DIR as a tiny HLS origin
  prom-config SRC DST TARGET         dashboards/prometheus.yml -> DST, scraping TARGET every 1s
  wait-up PROM SECONDS               until Prometheus has scraped the service (up == 1)
  traffic BASE PROXY_PATH BAD_PATH   proxy a playlist, relay a segment, provoke a 502
  wait-data PROM SECONDS             until the run and the relay are scraped
  check PROM DASHBOARD ALERTS        query every panel and alert expression
"""

import http.server
import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

TIMEOUT = 10


def origin(directory, port):
    class Handler(http.server.SimpleHTTPRequestHandler):
        extensions_map = {
            **http.server.SimpleHTTPRequestHandler.extensions_map,
            ".m3u8": "application/vnd.apple.mpegurl",
            ".ts": "video/mp2t",
        }

        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=directory, **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
    server.serve_forever()


def prom_config(src, dst, target):
    text = open(src).read()
    rewritten, n = re.subn(r"127\.0\.0\.1:8080", target, text)
    assert n == 1, f"{src}: expected one 127.0.0.1:8080 target, found {n}"
    rewritten, n = re.subn(r"(scrape_interval|evaluation_interval): *15s", r"\1: 1s", rewritten)
    assert n == 2, f"{src}: expected scrape_interval and evaluation_interval of 15s"
    open(dst, "w").write(rewritten)


def get(url, data=None):
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        return response.status, response.read()


def get_status(url):
    try:
        return get(url)
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def query(prom, expr):
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        _, body = get(url)
    except urllib.error.HTTPError as err:
        body = err.read()
    return json.loads(body)


def scalar(prom, expr):
    """The single value of `expr`, or None."""
    answer = query(prom, expr)
    result = answer.get("data", {}).get("result", [])
    return float(result[0]["value"][1]) if answer.get("status") == "success" and result else None


def wait_for(what, seconds, ready):
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    sys.exit(f"timed out after {seconds}s waiting for {what}")


def wait_up(prom, seconds):
    wait_for("Prometheus to scrape f1-stream", seconds,
             lambda: scalar(prom, 'up{job="f1-stream"}') == 1)


def traffic(base, proxy_path, bad_path):
    status, playlist = get(base + proxy_path)
    assert status == 200, f"proxy answered {status}"
    uris = [line for line in playlist.decode().splitlines() if line and not line.startswith("#")]
    assert uris, f"proxied playlist has no URIs:\n{playlist.decode()}"
    segment = urllib.parse.urljoin(base + proxy_path, uris[0])
    assert urllib.parse.urlsplit(segment).path.startswith("/relay/"), f"not a relay URI: {segment}"
    relayed = 0
    for _ in range(3):
        status, body = get(segment)
        assert status == 200, f"relay answered {status}"
        relayed += len(body)
    # Twice, a scrape apart: the 5xx series is born at the first one, so
    # only the second shows up in rate() (the 5xx panel and alert).
    for attempt in range(2):
        if attempt:
            time.sleep(1.5)
        status, _ = get_status(base + bad_path)
        assert 500 <= status < 600, f"proxying a missing upstream answered {status}, expected 5xx"
    print(f"traffic: proxied a playlist, relayed {relayed} bytes, got {status} for a missing upstream")


def wait_data(prom, seconds):
    def ready():
        manual = scalar(prom, 'f1stream_extraction_runs_total{trigger="manual"}')
        relayed = scalar(prom, "f1stream_relay_bytes_total")
        return manual is not None and manual >= 1 and relayed is not None and relayed > 0

    wait_for("the manual run and the relay in Prometheus", seconds, ready)
    time.sleep(3)  # a few more 1 s scrapes, so rates see the increase


def substitute(expr):
    expr = expr.replace("${site_key}", ".*").replace("$site_key", ".*")
    expr = expr.replace("${__rate_interval}", "1m").replace("$__rate_interval", "1m")
    assert "$" not in expr, f"unknown variable in {expr}"
    return expr


def panels(items):
    for panel in items:
        if panel.get("type") == "row":
            yield from panels(panel.get("panels", []))
        else:
            yield panel


def has_finite_value(result):
    values = [s["value"][1] for s in result]
    return any(math.isfinite(float(v)) for v in values)


def check(prom, dashboard_path, alerts_path):
    dashboard = json.load(open(dashboard_path))
    failures = []
    with_data = 0
    targets = 0
    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            targets += 1
            expr = substitute(target["expr"])
            answer = query(prom, expr)
            where = f"panel {panel['title']!r} {target.get('refId')}: {expr}"
            if answer.get("status") != "success":
                failures.append(f"{where}\n    invalid: {answer.get('error')}")
                continue
            result = answer["data"]["result"]
            if answer["data"]["resultType"] != "vector" or not result:
                failures.append(f"{where}\n    returned no data")
            elif not has_finite_value(result):
                failures.append(f"{where}\n    returned only NaN/Inf: {result}")
            else:
                with_data += 1

    for variable in dashboard["templating"]["list"]:
        if variable.get("type") != "query":
            continue
        found = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["query"]["query"])
        assert found, f"variable {variable['name']}: not label_values(metric, label)"
        metric, label = found.groups()
        _, body = get(f"{prom}/api/v1/label/{label}/values?" + urllib.parse.urlencode({"match[]": metric}))
        values = json.loads(body)["data"]
        if not values:
            failures.append(f"variable {variable['name']}: label_values({metric}, {label}) is empty")
        else:
            print(f"variable {variable['name']}: {values}")

    _, body = get(f"{prom}/api/v1/rules")
    rules = [r for g in json.loads(body)["data"]["groups"] for r in g["rules"] if r["type"] == "alerting"]
    declared = sum(1 for line in open(alerts_path) if line.strip().startswith("- alert:"))
    if len(rules) != declared or declared == 0:
        failures.append(f"Prometheus loaded {len(rules)} alerting rules, alerts.yml declares {declared}")
    alerts_ok = 0
    for rule in rules:
        answer = query(prom, rule["query"])
        where = f"alert {rule['name']}: {rule['query']}"
        if answer.get("status") != "success":
            failures.append(f"{where}\n    invalid: {answer.get('error')}")
        elif rule.get("health") != "ok":
            failures.append(f"{where}\n    rule health {rule.get('health')}: {rule.get('lastError')}")
        else:
            alerts_ok += 1
            print(f"alert {rule['name']}: valid, {len(answer['data']['result'])} series now")

    for failure in failures:
        print("FAIL " + failure)
    print(f"{with_data}/{targets} panel queries returned data, {alerts_ok}/{len(rules)} alert rules valid")
    if failures:
        sys.exit(1)


def main():
    command, args = sys.argv[1], sys.argv[2:]
    commands = {
        "origin": origin,
        "prom-config": prom_config,
        "wait-up": wait_up,
        "traffic": traffic,
        "wait-data": wait_data,
        "check": check,
    }
    commands[command](*args)


if __name__ == "__main__":
    main()
