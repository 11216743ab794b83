//! The Grafana dashboard and the Prometheus alert rules in `dashboards/`
//! only use metrics and labels the service exports: every `f1stream_*` name
//! in a panel, a variable or an alert must be in `f1_stream::metrics::ALL`
//! and appear in a real `/metrics` exposition with the labels the query
//! selects or groups by. A renamed metric or label fails here, not silently
//! in a user's Grafana.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common::TestService;
use f1_stream::metrics::ALL;
use regex::Regex;
use serde_json::Value;

/// What the service exports: metric name to its type and label names.
#[derive(Debug, Default)]
struct Exposition {
    types: BTreeMap<String, String>,
    labels: BTreeMap<String, BTreeSet<String>>,
}

impl Exposition {
    fn parse(text: &str) -> Self {
        let mut exposition = Self::default();
        let sample = Regex::new(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ").expect("regex");
        let label = Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*""#).expect("regex");
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                    exposition.types.insert(name.to_owned(), kind.to_owned());
                }
            } else if let Some(caps) = sample.captures(line) {
                let names = exposition.labels.entry(caps[1].to_owned()).or_default();
                if let Some(labels) = caps.get(2) {
                    names.extend(label.captures_iter(labels.as_str()).map(|c| c[1].to_owned()));
                }
            }
        }
        exposition
    }

    /// The metric a series name belongs to (`x_bucket` etc. of histogram
    /// `x`), if the service exports it.
    fn metric_of<'a>(&self, series: &'a str) -> Option<&'a str> {
        if self.types.contains_key(series) {
            return Some(series);
        }
        ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
            let base = series.strip_suffix(suffix)?;
            (self.types.get(base).map(String::as_str) == Some("histogram")).then_some(base)
        })
    }

    /// Label names of the series `series` (a metric or a histogram's part).
    fn labels_of(&self, series: &str) -> BTreeSet<String> {
        self.labels.get(series).cloned().unwrap_or_default()
    }
}

/// A series name used in an expression and the label names its selector
/// matches on, with their matcher (`site_key=~"$site_key"`).
#[derive(Debug)]
struct Selector {
    series: String,
    matchers: Vec<(String, String)>,
}

/// Every `f1stream_*` selector and every label named in `by (...)` or
/// `on (...)` in one PromQL expression.
fn parse_expr(expr: &str) -> (Vec<Selector>, BTreeSet<String>) {
    let name = Regex::new(r"f1stream_[a-z0-9_]+").expect("regex");
    let matcher =
        Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)""#).expect("regex");
    let grouping = Regex::new(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)").expect("regex");
    let mut selectors = Vec::new();
    for found in name.find_iter(expr) {
        let rest = &expr[found.end()..];
        let matchers = match rest.strip_prefix('{') {
            Some(inner) => {
                let end = inner
                    .find('}')
                    .unwrap_or_else(|| panic!("unclosed selector in {expr}"));
                matcher
                    .captures_iter(&inner[..end])
                    .map(|c| (c[1].to_owned(), format!("{}\"{}\"", &c[2], &c[3])))
                    .collect()
            }
            None => Vec::new(),
        };
        selectors.push(Selector {
            series: found.as_str().to_owned(),
            matchers,
        });
    }
    let grouped = grouping
        .captures_iter(expr)
        .flat_map(|c| {
            c[1].split(',')
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
        })
        .collect();
    (selectors, grouped)
}

fn repo_file(path: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn dashboard() -> Value {
    serde_json::from_str(&repo_file("dashboards/f1-stream.json")).expect("dashboard is JSON")
}

/// Every panel that is not a row, including those inside collapsed rows.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in list.as_array().expect("panels is an array") {
            if panel["type"] == "row" {
                if let Some(inner) = panel.get("panels") {
                    walk(inner, out);
                }
            } else {
                out.push(panel);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Every `expr:` of `alerts.yml`, plain or as a `|`/`>` block scalar,
/// with the alert's name. A tiny line parser: the file is ours and simple.
fn alert_exprs(yaml: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = yaml.lines().collect();
    let indent = |line: &str| line.len() - line.trim_start().len();
    let mut alert = String::new();
    let mut exprs = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start().trim_start_matches("- ");
        if let Some(name) = trimmed.strip_prefix("alert:") {
            alert = name.trim().trim_matches('"').to_owned();
        } else if let Some(value) = trimmed.strip_prefix("expr:") {
            let value = value.trim();
            if value.starts_with('|') || value.starts_with('>') {
                let own = indent(line);
                let mut block = Vec::new();
                while i + 1 < lines.len() && (lines[i + 1].trim().is_empty() || indent(lines[i + 1]) > own) {
                    i += 1;
                    block.push(lines[i].trim());
                }
                exprs.push((alert.clone(), block.join(" ").trim().to_owned()));
            } else {
                let unquoted = value
                    .strip_prefix('\'')
                    .and_then(|v| v.strip_suffix('\''))
                    .map(|v| v.replace("''", "'"))
                    .unwrap_or_else(|| value.to_owned());
                exprs.push((alert.clone(), unquoted));
            }
        }
        i += 1;
    }
    exprs
}

/// The service's real `/metrics` after one request, so the HTTP series
/// exist too.
async fn live_exposition() -> Exposition {
    let service = TestService::start("").await;
    assert_eq!(service.get_json("/health").await.0, 200);
    let text = reqwest::get(service.url("/metrics"))
        .await
        .expect("answers")
        .text()
        .await
        .expect("body");
    service.stop().await;
    Exposition::parse(&text)
}

/// Checks one expression against `ALL` and the exposition; returns the
/// metrics it uses. Dashboard queries (`panel`) must also filter every
/// per-extractor metric by the `$site_key` variable.
fn check_expr(exposition: &Exposition, place: &str, expr: &str, panel: bool) -> BTreeSet<String> {
    let (selectors, grouped) = parse_expr(expr);
    let mut metrics = BTreeSet::new();
    let mut available = BTreeSet::new();
    for selector in &selectors {
        let metric = exposition.metric_of(&selector.series).unwrap_or_else(|| {
            panic!(
                "{place}: {} is not exported by the service (expr: {expr})",
                selector.series
            )
        });
        assert!(
            ALL.contains(&metric),
            "{place}: {metric} is not in f1_stream::metrics::ALL (expr: {expr})"
        );
        let labels = exposition.labels_of(&selector.series);
        for (label, _) in &selector.matchers {
            assert!(
                labels.contains(label),
                "{place}: {} has no label {label} (it has {labels:?}; expr: {expr})",
                selector.series
            );
        }
        if panel && labels.contains("site_key") {
            assert!(
                selector
                    .matchers
                    .iter()
                    .any(|(l, m)| l == "site_key" && m == "=~\"$site_key\""),
                "{place}: {} has a site_key label but is not filtered by site_key=~\"$site_key\" \
                 (expr: {expr})",
                selector.series
            );
        }
        available.extend(labels);
        metrics.insert(metric.to_owned());
    }
    for label in grouped {
        assert!(
            available.contains(&label),
            "{place}: groups by {label}, which none of its metrics has (expr: {expr})"
        );
    }
    metrics
}

#[test]
fn dashboard_panels_have_the_datasource_variable_and_targets() {
    let dashboard = dashboard();
    assert!(dashboard["schemaVersion"].as_u64().expect("schemaVersion") >= 39);
    let panels = panels(&dashboard);
    assert!(panels.len() >= 12, "only {} panels", panels.len());
    let mut ids = BTreeSet::new();
    for panel in &panels {
        let title = panel["title"].as_str().expect("every panel has a title");
        assert!(
            ids.insert(panel["id"].as_u64().expect("panel id")),
            "{title}: duplicate id"
        );
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}: datasource");
        assert_eq!(
            panel["datasource"]["type"], "prometheus",
            "{title}: datasource type"
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no target");
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or_default();
            assert!(
                expr.contains("f1stream_"),
                "{title}: target without an f1stream expr"
            );
            if let Some(ds) = target.get("datasource") {
                assert_eq!(ds["uid"], "${datasource}", "{title}: target datasource");
            }
        }
    }
}

#[test]
fn dashboard_variables_exist() {
    let dashboard = dashboard();
    let variables = dashboard["templating"]["list"].as_array().expect("variables");
    let find = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no variable {name}"))
    };
    let datasource = find("datasource");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");
    let site_key = find("site_key");
    assert_eq!(site_key["type"], "query");
    assert_eq!(site_key["datasource"]["uid"], "${datasource}");
    assert_eq!(
        site_key["query"]["query"],
        "label_values(f1stream_extractor_up, site_key)"
    );
    assert_eq!(site_key["multi"], true);
    assert_eq!(site_key["includeAll"], true);
}

#[test]
fn alert_parser_reads_plain_quoted_and_block_exprs() {
    let yaml = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        for: 1m\n\
                \x20     - alert: B\n        expr: |\n          sum(x)\n            > 1\n        labels: {}\n\
                \x20     - alert: C\n        expr: 'a{b=\"c\"} == 0'\n";
    assert_eq!(
        alert_exprs(yaml),
        vec![
            ("A".to_owned(), "up == 0".to_owned()),
            ("B".to_owned(), "sum(x) > 1".to_owned()),
            ("C".to_owned(), "a{b=\"c\"} == 0".to_owned()),
        ]
    );
}

#[test]
fn expr_parser_finds_histogram_parts_matchers_and_grouping() {
    let (selectors, grouped) = parse_expr(
        "histogram_quantile(0.95, sum by (le, site_key) \
         (rate(f1stream_health_check_duration_seconds_bucket{site_key=~\"$site_key\"}[$__rate_interval])))",
    );
    assert_eq!(selectors.len(), 1);
    assert_eq!(
        selectors[0].series,
        "f1stream_health_check_duration_seconds_bucket"
    );
    assert_eq!(
        selectors[0].matchers,
        vec![("site_key".to_owned(), "=~\"$site_key\"".to_owned())]
    );
    assert_eq!(grouped, BTreeSet::from(["le".to_owned(), "site_key".to_owned()]));
}

#[tokio::test]
async fn every_metric_in_the_dashboard_and_alerts_is_exported() {
    let exposition = live_exposition().await;
    for name in ALL {
        assert!(
            exposition.types.contains_key(name),
            "{name} is in ALL but not in /metrics"
        );
    }

    let dashboard = dashboard();
    let mut used = BTreeSet::new();
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().unwrap_or_default();
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("target expr");
            let place = format!("panel {title:?} target {}", target["refId"]);
            used.extend(check_expr(&exposition, &place, expr, true));
        }
    }
    let label_of = Regex::new(r",\s*([a-z_]+)\s*\)$").expect("regex");
    for variable in dashboard["templating"]["list"].as_array().expect("variables") {
        if variable["type"] == "query" {
            let query = variable["query"]["query"].as_str().expect("variable query");
            let place = format!("variable {}", variable["name"]);
            let found = check_expr(&exposition, &place, query, false);
            assert!(!found.is_empty(), "{place}: uses no f1stream metric");
            let label = &label_of.captures(query).expect("label_values(metric, label)")[1];
            for metric in &found {
                assert!(
                    exposition.labels_of(metric).contains(label),
                    "{place}: {metric} has no label {label}"
                );
            }
        }
    }
    // The overview shows each part of the service.
    for needed in [
        "f1stream_extractor_up",
        "f1stream_extractor_live_streams",
        "f1stream_extractor_streams",
        "f1stream_health_check_duration_seconds",
        "f1stream_health_checks_total",
        "f1stream_health_check_phase_seconds",
        "f1stream_extraction_run_duration_seconds",
        "f1stream_extractor_run_duration_seconds",
        "f1stream_extraction_runs_total",
        "f1stream_proxy_requests_total",
        "f1stream_proxy_upstream_seconds",
        "f1stream_relay_bytes_total",
        "f1stream_relay_active",
        "f1stream_http_requests_total",
        "f1stream_http_request_duration_seconds",
    ] {
        assert!(used.contains(needed), "no panel shows {needed}");
    }

    let alerts = alert_exprs(&repo_file("dashboards/alerts.yml"));
    let alert_count = repo_file("dashboards/alerts.yml")
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count();
    assert_eq!(alerts.len(), alert_count, "every alert has one expr");
    let mut alerted = BTreeSet::new();
    for (alert, expr) in &alerts {
        alerted.extend(check_expr(&exposition, &format!("alert {alert}"), expr, false));
    }
    for needed in [
        "f1stream_extractor_up",
        "f1stream_schedule_live",
        "f1stream_extractor_live_streams",
        "f1stream_proxy_requests_total",
    ] {
        assert!(alerted.contains(needed), "no alert uses {needed}");
    }
}

#[tokio::test]
async fn a_renamed_metric_is_caught() {
    let exposition = live_exposition().await;
    let renamed = "sum by (site_key) (f1stream_extractor_livestreams{site_key=~\"$site_key\"})";
    let caught = std::panic::catch_unwind(|| check_expr(&exposition, "test", renamed, true));
    assert!(caught.is_err(), "a metric the service does not export passed");
    let unfiltered = "sum by (site_key) (f1stream_extractor_live_streams)";
    let caught = std::panic::catch_unwind(|| check_expr(&exposition, "test", unfiltered, true));
    assert!(
        caught.is_err(),
        "a per-extractor metric without the site_key filter passed"
    );
    let wrong_label = "sum by (route) (f1stream_relay_bytes_total)";
    let caught = std::panic::catch_unwind(|| check_expr(&exposition, "test", wrong_label, true));
    assert!(caught.is_err(), "grouping by a label the metric lacks passed");
}
