//! Prometheus metrics: every metric once in [`METRICS`] (name constant,
//! kind, help, buckets), one registry per service (not a process-global
//! recorder, so several services in one test process keep separate
//! counts), typed recording methods, and the HTTP middleware.
//! Labels come from closed sets only: site keys, channel slugs, error kinds,
//! switch reasons, triggers,
//! route templates, methods, status codes. Never a URL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::model::{ErrorKind, HealthResult, RunTrigger, SwitchReason};
use crate::proxy::path_cache::PathCacheStats;

/// What kind of series a metric is (its `# TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up (`_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets.
    Histogram,
}

impl MetricKind {
    /// The name Prometheus prints after `# TYPE <name>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// One exported metric: everything the registry and the docs need.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    /// The exported name, `f1stream_*`.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// The `# HELP` text (`promtool check metrics` requires one).
    pub help: &'static str,
    /// Histogram bucket bounds in seconds or ratios; empty for the others.
    pub buckets: &'static [f64],
}

/// Defines every metric once: a name constant (documented by its help text)
/// and its entry in [`METRICS`], in this order. Adding a metric is one line
/// here.
macro_rules! metrics_table {
    ($($constant:ident = $name:literal, $kind:ident, $help:literal $(, $buckets:expr)?;)+) => {
        $(
            #[doc = $help]
            pub const $constant: &str = $name;
        )+

        /// Every metric the service exports, with its kind, help and buckets.
        pub const METRICS: &[MetricDef] = &[
            $(MetricDef {
                name: $constant,
                kind: MetricKind::$kind,
                help: $help,
                buckets: metrics_table!(@buckets $($buckets)?),
            },)+
        ];
    };
    (@buckets) => { &[] };
    (@buckets $buckets:expr) => { &$buckets };
}

metrics_table! {
    EXTRACTOR_UP = "f1stream_extractor_up", Gauge,
        "1 if the extractor's last run returned streams without error.";
    EXTRACTOR_STREAMS = "f1stream_extractor_streams", Gauge,
        "Active streams per extractor.";
    EXTRACTOR_LIVE_STREAMS = "f1stream_extractor_live_streams", Gauge,
        "Active healthy streams per extractor.";
    EXTRACTOR_RUN_DURATION = "f1stream_extractor_run_duration_seconds", Histogram,
        "Time one extractor took in a run, in seconds.", RUN_BUCKETS;
    HEALTH_CHECK_DURATION = "f1stream_health_check_duration_seconds", Histogram,
        "Response time of health checks, in seconds, by result.", CHECK_BUCKETS;
    HEALTH_CHECKS = "f1stream_health_checks_total", Counter,
        "Health checks, by result (live or the error kind).";
    HEALTH_CHECK_PHASE = "f1stream_health_check_phase_seconds", Histogram,
        "Phases of a health check (ttfb, transfer), in seconds.", CHECK_BUCKETS;
    HEALTH_CHECK_THROUGHPUT_RATIO = "f1stream_health_check_throughput_ratio", Histogram,
        "Segment probe throughput divided by the declared BANDWIDTH.", RATIO_BUCKETS;
    EXTRACTION_RUNS = "f1stream_extraction_runs_total", Counter,
        "Extraction runs, by trigger.";
    EXTRACTION_RUN_DURATION = "f1stream_extraction_run_duration_seconds", Histogram,
        "Wall time of a whole extraction run, in seconds.", RUN_BUCKETS;
    PROXY_REQUESTS = "f1stream_proxy_requests_total", Counter,
        "Proxy and relay requests, by endpoint and status.";
    PROXY_UPSTREAM_SECONDS = "f1stream_proxy_upstream_seconds", Histogram,
        "Time to the upstream's response head, in seconds, by endpoint.", UPSTREAM_BUCKETS;
    RELAY_BYTES = "f1stream_relay_bytes_total", Counter,
        "Bytes relayed to clients.";
    RELAY_ACTIVE = "f1stream_relay_active", Gauge,
        "Relays in flight.";
    RELAY_REFUSALS = "f1stream_relay_refusals_total", Counter,
        "Relays refused with 429 because a limit was full, by limit (total, per_client).";
    SIGNATURE_CACHE_HITS = "f1stream_proxy_signature_cache_hits_total", Counter,
        "Signed proxy paths found remembered instead of signed again.";
    SIGNATURE_CACHE_MISSES = "f1stream_proxy_signature_cache_misses_total", Counter,
        "Signed proxy paths signed because they were not remembered.";
    SIGNATURE_CACHE_ENTRIES = "f1stream_proxy_signature_cache_entries", Gauge,
        "Signed proxy paths remembered now.";
    SIGNATURE_CACHE_BYTES = "f1stream_proxy_signature_cache_bytes", Gauge,
        "Bytes of URLs and paths the remembered signed paths take.";
    HTTP_REQUESTS = "f1stream_http_requests_total", Counter,
        "HTTP requests, by route template, method and status.";
    HTTP_REQUEST_DURATION = "f1stream_http_request_duration_seconds", Histogram,
        "HTTP request latency, in seconds, by route template and method.", HTTP_BUCKETS;
    SCHEDULE_LIVE = "f1stream_schedule_live", Gauge,
        "1 while a session's fast-polling window is open.";
    SCHEDULE_NEXT_SESSION = "f1stream_schedule_next_session_timestamp_seconds", Gauge,
        "Start of the next session (unix seconds), 0 when none is known.";
    CHANNEL_SWITCHES = "f1stream_channel_switches_total", Counter,
        "Source changes of failover channels, by channel and reason.";
    CHANNEL_UP = "f1stream_channel_up", Gauge,
        "1 while a failover channel has a source to play, by channel.";
    CHANNEL_PLAYLIST_REQUESTS = "f1stream_channel_playlist_requests_total", Counter,
        "Requests for a failover channel's playlist, by channel.";
    BUILD_INFO = "f1stream_build_info", Gauge,
        "Always 1; the version label tells which build is running.";
}

/// Every metric name, in table order, for documentation and dashboard checks.
pub const ALL: [&str; METRICS.len()] = {
    let mut names = [""; METRICS.len()];
    let mut i = 0;
    while i < METRICS.len() {
        names[i] = METRICS[i].name;
        i += 1;
    }
    names
};

/// The `# HELP` text of metric `name` (empty for a name not in [`METRICS`]).
pub fn help(name: &str) -> &'static str {
    METRICS
        .iter()
        .find(|metric| metric.name == name)
        .map_or("", |metric| metric.help)
}

/// Health check and phase buckets: 5 ms to 30 s.
const CHECK_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0,
];
/// Throughput ratios: below 1 cannot keep up in real time.
const RATIO_BUCKETS: [f64; 10] = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0, 8.0, 16.0, 64.0];
/// Upstream response head of the proxy: 1 ms to 30 s.
const UPSTREAM_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Runs and extractors: 10 ms to 10 min.
const RUN_BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 600.0,
];
/// HTTP latency: 1 ms to 60 s (relays are long).
const HTTP_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 15.0, 60.0,
];

/// Result label of a health check: `live` or its error kind.
pub fn result_label(health: &HealthResult) -> &'static str {
    match health.error_kind {
        None if health.is_live => "live",
        None => ErrorKind::Other.as_str(),
        Some(kind) => kind.as_str(),
    }
}

/// One service's metrics registry.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with the histogram buckets of [`METRICS`] and the label sets that
    /// exist regardless of configuration already present at zero.
    pub fn new() -> Self {
        let mut builder = PrometheusBuilder::new();
        for metric in METRICS.iter().filter(|metric| !metric.buckets.is_empty()) {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(metric.name.to_owned()), metric.buckets)
                .expect("bucket lists are not empty");
        }
        let recorder = builder.build_recorder();
        // The exporter keeps one description per name, whatever the type.
        for metric in METRICS {
            recorder.describe_gauge(
                KeyName::from_const_str(metric.name),
                None,
                SharedString::const_str(metric.help),
            );
        }
        let handle = recorder.handle();
        let metrics = Self { recorder, handle };
        metrics
            .gauge(BUILD_INFO, vec![Label::new("version", env!("CARGO_PKG_VERSION"))])
            .set(1.0);
        // Registering a series is what makes it render; the handles are
        // looked up again when used.
        for trigger in RunTrigger::ALL {
            let _ = metrics.counter(EXTRACTION_RUNS, vec![Label::new("trigger", trigger.as_str())]);
        }
        let _ = metrics.histogram(EXTRACTION_RUN_DURATION, Vec::new());
        let _ = metrics.counter(RELAY_BYTES, Vec::new());
        let _ = metrics.gauge(RELAY_ACTIVE, Vec::new());
        for limit in crate::proxy::limits::RelayLimit::ALL {
            let _ = metrics.counter(RELAY_REFUSALS, vec![Label::new("limit", limit.as_str())]);
        }
        for endpoint in ["proxy", "relay"] {
            let _ = metrics.counter(
                PROXY_REQUESTS,
                vec![Label::new("endpoint", endpoint), Label::new("status", "200")],
            );
            let _ = metrics.histogram(PROXY_UPSTREAM_SECONDS, vec![Label::new("endpoint", endpoint)]);
        }
        metrics.set_schedule(false, None);
        metrics.set_signature_cache(PathCacheStats::default());
        metrics
    }

    /// Creates every per-extractor series at zero, so dashboards and alerts
    /// see each configured extractor from startup.
    pub fn register_extractors<'a>(&self, site_keys: impl IntoIterator<Item = &'a str>) {
        for site_key in site_keys {
            let site = || vec![Label::new("site_key", site_key.to_owned())];
            self.set_extractor_state(site_key, false, 0, 0);
            let _ = self.histogram(EXTRACTOR_RUN_DURATION, site());
            let results = std::iter::once("live").chain(ErrorKind::ALL.iter().map(|k| k.as_str()));
            for result in results {
                let labels = || {
                    vec![
                        Label::new("site_key", site_key.to_owned()),
                        Label::new("result", result),
                    ]
                };
                let _ = self.counter(HEALTH_CHECKS, labels());
                let _ = self.histogram(HEALTH_CHECK_DURATION, labels());
            }
            let _ = self.histogram(HEALTH_CHECK_THROUGHPUT_RATIO, site());
            for phase in ["ttfb", "transfer"] {
                let _ = self.histogram(
                    HEALTH_CHECK_PHASE,
                    vec![
                        Label::new("site_key", site_key.to_owned()),
                        Label::new("phase", phase),
                    ],
                );
            }
        }
    }

    /// Creates every per-channel series at zero, so dashboards and alerts
    /// see each configured channel from startup.
    pub fn register_channels<'a>(&self, slugs: impl IntoIterator<Item = &'a str>) {
        for slug in slugs {
            self.set_channel_up(slug, false);
            let _ = self.counter(
                CHANNEL_PLAYLIST_REQUESTS,
                vec![Label::new("channel", slug.to_owned())],
            );
            for reason in SwitchReason::ALL {
                let _ = self.counter(CHANNEL_SWITCHES, Self::switch_labels(slug, reason));
            }
        }
    }

    fn switch_labels(slug: &str, reason: SwitchReason) -> Vec<Label> {
        vec![
            Label::new("channel", slug.to_owned()),
            Label::new("reason", reason.as_str()),
        ]
    }

    /// Records a channel's change of source.
    pub fn record_channel_switch(&self, slug: &str, reason: SwitchReason) {
        self.counter(CHANNEL_SWITCHES, Self::switch_labels(slug, reason))
            .increment(1);
    }

    /// Sets whether a channel has a source to play.
    pub fn set_channel_up(&self, slug: &str, up: bool) {
        self.gauge(CHANNEL_UP, vec![Label::new("channel", slug.to_owned())])
            .set(if up { 1.0 } else { 0.0 });
    }

    /// Counts one request for a channel's playlist.
    pub fn record_channel_playlist_request(&self, slug: &str) {
        self.counter(
            CHANNEL_PLAYLIST_REQUESTS,
            vec![Label::new("channel", slug.to_owned())],
        )
        .increment(1);
    }

    /// The Prometheus text exposition of everything recorded.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }

    fn key(name: &'static str, labels: Vec<Label>) -> Key {
        Key::from_parts(name, labels)
    }

    /// The counter `name{labels}`.
    pub fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder
            .register_counter(&Self::key(name, labels), &METADATA)
    }

    /// The gauge `name{labels}`.
    pub fn gauge(&self, name: &'static str, labels: Vec<Label>) -> Gauge {
        self.recorder.register_gauge(&Self::key(name, labels), &METADATA)
    }

    /// The histogram `name{labels}`.
    pub fn histogram(&self, name: &'static str, labels: Vec<Label>) -> Histogram {
        self.recorder
            .register_histogram(&Self::key(name, labels), &METADATA)
    }

    /// Records one stream's check under its extractor.
    pub fn record_check(&self, site_key: &str, health: &HealthResult) {
        let result = result_label(health);
        let labels = || {
            vec![
                Label::new("site_key", site_key.to_owned()),
                Label::new("result", result),
            ]
        };
        self.counter(HEALTH_CHECKS, labels()).increment(1);
        if let Some(ms) = health.response_time_ms {
            self.histogram(HEALTH_CHECK_DURATION, labels())
                .record(ms as f64 / 1000.0);
        }
        if let Some(ratio) = health.throughput_ratio {
            self.histogram(
                HEALTH_CHECK_THROUGHPUT_RATIO,
                vec![Label::new("site_key", site_key.to_owned())],
            )
            .record(ratio);
        }
        if let Some(ttfb) = health.ttfb_ms {
            let phase = |phase: &'static str| {
                vec![
                    Label::new("site_key", site_key.to_owned()),
                    Label::new("phase", phase),
                ]
            };
            self.histogram(HEALTH_CHECK_PHASE, phase("ttfb"))
                .record(ttfb as f64 / 1000.0);
            if let Some(total) = health.response_time_ms {
                let transfer = total.saturating_sub(ttfb);
                self.histogram(HEALTH_CHECK_PHASE, phase("transfer"))
                    .record(transfer as f64 / 1000.0);
            }
        }
    }

    /// Records how long one extractor took in a run.
    pub fn record_extractor_run(&self, site_key: &str, duration: Duration) {
        self.histogram(
            EXTRACTOR_RUN_DURATION,
            vec![Label::new("site_key", site_key.to_owned())],
        )
        .record(duration.as_secs_f64());
    }

    /// Records a finished run.
    pub fn record_run(&self, trigger: RunTrigger, duration: Duration) {
        self.counter(EXTRACTION_RUNS, vec![Label::new("trigger", trigger.as_str())])
            .increment(1);
        self.histogram(EXTRACTION_RUN_DURATION, Vec::new())
            .record(duration.as_secs_f64());
    }

    /// Sets an extractor's gauges from its stored state.
    pub fn set_extractor_state(&self, site_key: &str, up: bool, streams: i64, live_streams: i64) {
        let site = || vec![Label::new("site_key", site_key.to_owned())];
        self.gauge(EXTRACTOR_UP, site()).set(if up { 1.0 } else { 0.0 });
        self.gauge(EXTRACTOR_STREAMS, site()).set(streams as f64);
        self.gauge(EXTRACTOR_LIVE_STREAMS, site())
            .set(live_streams as f64);
    }

    /// Records one proxy or relay request's outcome.
    pub fn record_proxy_request(&self, endpoint: &'static str, status: u16) {
        self.counter(
            PROXY_REQUESTS,
            vec![
                Label::new("endpoint", endpoint),
                Label::new("status", status.to_string()),
            ],
        )
        .increment(1);
    }

    /// Records the time to an upstream's response head.
    pub fn record_upstream_head(&self, endpoint: &'static str, elapsed: Duration) {
        self.histogram(PROXY_UPSTREAM_SECONDS, vec![Label::new("endpoint", endpoint)])
            .record(elapsed.as_secs_f64());
    }

    /// Sets the calendar gauges.
    pub fn set_schedule(&self, live_window_open: bool, next_session_unix: Option<i64>) {
        self.gauge(SCHEDULE_LIVE, Vec::new())
            .set(if live_window_open { 1.0 } else { 0.0 });
        self.gauge(SCHEDULE_NEXT_SESSION, Vec::new())
            .set(next_session_unix.unwrap_or(0) as f64);
    }

    /// Copies the signer's memory counts (read when `/metrics` is scraped:
    /// the signer counts under its own locks, not through this registry).
    pub fn set_signature_cache(&self, stats: PathCacheStats) {
        self.counter(SIGNATURE_CACHE_HITS, Vec::new())
            .absolute(stats.hits);
        self.counter(SIGNATURE_CACHE_MISSES, Vec::new())
            .absolute(stats.misses);
        self.gauge(SIGNATURE_CACHE_ENTRIES, Vec::new())
            .set(stats.entries as f64);
        self.gauge(SIGNATURE_CACHE_BYTES, Vec::new())
            .set(stats.bytes as f64);
    }

    /// Counts a relay refused because `limit` was full.
    pub fn relay_refused(&self, limit: crate::proxy::limits::RelayLimit) {
        self.counter(RELAY_REFUSALS, vec![Label::new("limit", limit.as_str())])
            .increment(1);
    }

    /// Handles for one relay: bytes relayed and the in-flight gauge, which
    /// drops back when the returned guard is dropped.
    pub fn relay_started(&self) -> RelayMeter {
        let active = self.gauge(RELAY_ACTIVE, Vec::new());
        active.increment(1.0);
        RelayMeter {
            bytes: self.counter(RELAY_BYTES, Vec::new()),
            active,
        }
    }
}

/// Counts a relay's bytes and keeps it counted as active until dropped.
pub struct RelayMeter {
    /// Add relayed bytes here.
    pub bytes: Counter,
    active: Gauge,
}

impl Drop for RelayMeter {
    fn drop(&mut self) {
        self.active.decrement(1.0);
    }
}

/// Axum middleware: counts requests and times them by route template (the
/// matched path, never the raw one), method and status.
pub async fn track_http(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics
        .counter(
            HTTP_REQUESTS,
            vec![
                Label::new("route", route.clone()),
                Label::new("method", method.clone()),
                Label::new("status", status),
            ],
        )
        .increment(1);
    metrics
        .histogram(
            HTTP_REQUEST_DURATION,
            vec![Label::new("route", route), Label::new("method", method)],
        )
        .record(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_series_render_at_zero_before_anything_happens() {
        let metrics = Metrics::new();
        metrics.register_extractors(["demo"]);
        let text = metrics.render();
        assert!(
            text.contains("f1stream_extractor_up{site_key=\"demo\"} 0"),
            "{text}"
        );
        assert!(text.contains("f1stream_health_checks_total{site_key=\"demo\",result=\"timeout\"} 0"));
        assert!(text.contains("f1stream_extraction_runs_total{trigger=\"manual\"} 0"));
        assert!(text.contains("f1stream_relay_bytes_total 0"));
    }

    #[test]
    fn every_metric_has_help_text() {
        let metrics = Metrics::new();
        metrics.register_extractors(["demo"]);
        let text = metrics.render();
        for name in ALL {
            assert!(!help(name).is_empty(), "{name} has no help text");
            // HTTP series exist only after a request; the rest from startup.
            if text.contains(&format!("# TYPE {name} ")) {
                assert!(
                    text.contains(&format!("# HELP {name} {}", help(name))),
                    "{name}: {text}"
                );
            }
        }
        assert!(text.contains(&format!("# HELP {EXTRACTOR_UP} ")));
    }

    #[test]
    fn every_table_entry_is_unique_named_f1stream_and_has_help() {
        let mut names = std::collections::HashSet::new();
        for metric in METRICS {
            assert!(names.insert(metric.name), "{} is listed twice", metric.name);
            assert!(metric.name.starts_with("f1stream_"), "{}", metric.name);
            assert!(!metric.help.trim().is_empty(), "{} has no help text", metric.name);
            assert_eq!(help(metric.name), metric.help);
            assert_eq!(
                metric.kind == MetricKind::Histogram,
                !metric.buckets.is_empty(),
                "{}: histograms and only histograms have buckets",
                metric.name
            );
            assert!(
                metric.buckets.windows(2).all(|pair| pair[0] < pair[1]),
                "{}: buckets ascend",
                metric.name
            );
            assert_eq!(
                metric.kind == MetricKind::Counter,
                metric.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                metric.name
            );
        }
        assert_eq!(ALL.len(), METRICS.len());
        assert!(ALL.iter().zip(METRICS).all(|(name, metric)| *name == metric.name));
        assert_eq!(help("f1stream_no_such_metric"), "");
    }

    #[test]
    fn every_exported_type_is_the_kind_in_the_table() {
        let metrics = Metrics::new();
        metrics.register_extractors(["demo"]);
        metrics.register_channels(["best"]);
        let text = metrics.render();
        let mut typed = 0;
        for metric in METRICS {
            if let Some(line) = text
                .lines()
                .find(|line| line.starts_with(&format!("# TYPE {} ", metric.name)))
            {
                typed += 1;
                assert_eq!(
                    line,
                    format!("# TYPE {} {}", metric.name, metric.kind.as_str()),
                    "{}",
                    metric.name
                );
            }
        }
        // HTTP series exist only after a request; every other one from startup.
        assert_eq!(typed, METRICS.len() - 2, "{text}");
    }

    #[test]
    fn relay_meter_counts_bytes_and_active_relays() {
        let metrics = Metrics::new();
        let meter = metrics.relay_started();
        meter.bytes.increment(1234);
        assert!(metrics.render().contains("f1stream_relay_active 1"));
        drop(meter);
        let text = metrics.render();
        assert!(text.contains("f1stream_relay_active 0"), "{text}");
        assert!(text.contains("f1stream_relay_bytes_total 1234"));
    }

    #[test]
    fn separate_registries_do_not_share_counts() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.record_run(RunTrigger::Manual, Duration::from_millis(5));
        assert!(
            a.render()
                .contains("f1stream_extraction_runs_total{trigger=\"manual\"} 1")
        );
        assert!(
            b.render()
                .contains("f1stream_extraction_runs_total{trigger=\"manual\"} 0")
        );
    }
}
