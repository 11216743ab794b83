//! Composition root: builds the shared client, database, extractors and
//! runner from a [`Config`], serves the router, and runs the background
//! polling loop until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, AppState};
use crate::channel::{Channels, ChannelsParts};
use crate::config::{Config, ExtractorConfig};
use crate::db::{Database, ExtractorRecord};
use crate::extraction::{Extraction, ExtractionParts};
use crate::health::HealthChecker;
use crate::metrics::Metrics;
use crate::model::RunTrigger;
use crate::net::Http;
use crate::proxy::token::Signer;
use crate::proxy::upstream::Upstream;
use crate::proxy::{Proxy, ProxyParts};
use crate::schedule::{PollPolicy, Schedule, ScheduleParts, Scheduler, SystemClock};
use crate::sources::{self, SourceContext};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Database(#[from] crate::db::DbError),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// No signing key could be generated or read.
    #[error("cannot set up the proxy signing key: {0}")]
    SigningKey(String),
}

/// The assembled service.
#[derive(Clone)]
pub struct App {
    config: Arc<Config>,
    db: Database,
    extraction: Extraction,
    proxy: Arc<Proxy>,
    schedule: Schedule,
    metrics: Arc<Metrics>,
    channels: Channels,
    viewers: Arc<crate::api::viewers::Viewers>,
    page_policy: axum::http::HeaderValue,
    /// Where the `/metrics`-only listener bound, once [`App::serve`] has
    /// bound it (`server.metrics_listen` may name port 0).
    metrics_address: Arc<std::sync::OnceLock<std::net::SocketAddr>>,
}

impl App {
    /// Opens the database (migrating it), records the configured extractors
    /// and wires the runner. Nothing runs until [`App::serve`].
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let db = Database::open_with_max_size(&config.database.url, config.database.max_size_mb).await?;
        // The first reads and writes are still part of opening: damage they
        // meet is reported like damage found by the open itself.
        let opened = match db.sync_extractors(&extractor_records(&config.extractors)).await {
            Ok(()) => Self::with_database(config, db.clone()).await,
            Err(e) => Err(e.into()),
        };
        opened.map_err(|e| match e {
            StartError::Database(e) => StartError::Database(db.open_failure(&e)),
            other => other,
        })
    }

    /// Like [`App::build`] over an already open database.
    pub async fn with_database(config: Config, db: Database) -> Result<Self, StartError> {
        let http = Http::new(&config.network, &config.health.user_agent)?;
        let checker = HealthChecker::new(http.clone(), &config.health);
        let extractors = sources::build_registry(&config.extractors);
        let upstream = Upstream::new(
            http.clone(),
            Duration::from_secs(config.proxy.relay_first_byte_timeout_secs),
            Duration::from_secs(config.proxy.relay_idle_timeout_secs),
            config.proxy.max_playlist_bytes,
        );
        let src_headers: std::collections::HashMap<_, _> = extractors
            .iter()
            .map(|e| (e.site_key.clone(), e.headers.clone()))
            .collect();
        let proxy = Proxy::new(ProxyParts {
            upstream: upstream.clone(),
            signer: Signer::with_path_cache(
                &signing_key(&config, &db).await?,
                config.proxy.signature_cache_entries,
            ),
            require_signature: config.proxy.require_signature,
            src_headers: src_headers.clone(),
            playlist_timeout: Duration::from_secs(config.proxy.playlist_timeout_secs),
            relay_limits: crate::proxy::limits::RelayLimits::new(
                config.proxy.max_relays,
                config.proxy.max_relays_per_client,
            ),
        });
        let schedule = Schedule::new(ScheduleParts {
            db: db.clone(),
            http: http.clone(),
            config: config.schedule.clone(),
            clock: Arc::new(SystemClock),
        });
        let metrics = Arc::new(Metrics::new());
        metrics.register_extractors(config.extractors.iter().map(|e| e.site_key.as_str()));
        let extraction = Extraction::new(ExtractionParts {
            extractors,
            sources: SourceContext {
                http,
                max_document_bytes: config.extraction.max_source_bytes,
            },
            checker,
            db: db.clone(),
            extractor_timeout: Duration::from_secs(config.extraction.extractor_timeout_secs),
            concurrency: config.health.concurrency,
            metrics: Arc::clone(&metrics),
            failures_before_down: config.health.failures_before_down,
        });
        extraction.publish_extractor_state().await?;
        let channels = Channels::new(ChannelsParts {
            channels: config.channels(),
            db: db.clone(),
            upstream,
            signer: proxy.signer.clone(),
            src_headers,
            schedule: schedule.clone(),
            order: config.ranking.default_order,
            playlist_timeout: Duration::from_secs(config.proxy.playlist_timeout_secs),
            public_base: config.server.public_url.trim_end_matches('/').to_owned(),
            metrics: Arc::clone(&metrics),
        });
        Ok(Self {
            channels,
            viewers: Arc::new(crate::api::viewers::Viewers::new(&config.auth.viewers)),
            page_policy: crate::api::page::content_security_policy(&config.server),
            config: Arc::new(config),
            db,
            extraction,
            proxy: Arc::new(proxy),
            schedule,
            metrics,
            metrics_address: Arc::default(),
        })
    }

    /// The F1 calendar service.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The database.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// The extraction runner.
    pub fn extraction(&self) -> &Extraction {
        &self.extraction
    }

    /// Signs proxy URLs with this app's key (for `f1-stream sign`).
    pub fn signer(&self) -> &Signer {
        &self.proxy.signer
    }

    /// The HTTP router over this app's state.
    pub fn router(&self) -> Router {
        api::router(self.state())
    }

    fn state(&self) -> AppState {
        AppState {
            config: Arc::clone(&self.config),
            db: self.db.clone(),
            extraction: self.extraction.clone(),
            proxy: Arc::clone(&self.proxy),
            schedule: self.schedule.clone(),
            metrics: Arc::clone(&self.metrics),
            channels: self.channels.clone(),
            viewers: Arc::clone(&self.viewers),
            page_policy: self.page_policy.clone(),
        }
    }

    /// The failover channels.
    pub fn channels(&self) -> &Channels {
        &self.channels
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The address the `/metrics`-only listener is bound to: `None` before
    /// [`App::serve`] bound it, or without `server.metrics_listen`.
    pub fn metrics_address(&self) -> Option<std::net::SocketAddr> {
        self.metrics_address.get().copied()
    }

    /// Serves only `/metrics` on `server.metrics_listen` until `stop`.
    async fn spawn_metrics_listener(
        &self,
        address: std::net::SocketAddr,
        mut stop: watch::Receiver<bool>,
    ) -> std::io::Result<tokio::task::JoinHandle<()>> {
        let listener = TcpListener::bind(address).await?;
        let bound = listener.local_addr()?;
        let _ = self.metrics_address.set(bound);
        tracing::info!("serving /metrics on {bound}");
        let router = api::metrics_router(self.state());
        let limits = self.head_limits();
        Ok(tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            };
            if let Err(e) = crate::http_server::serve(listener, router, limits, stopped).await {
                tracing::error!(error = %e, "metrics listener failed");
            }
        }))
    }

    /// `server.header_read_timeout_secs` and `server.max_header_bytes`.
    fn head_limits(&self) -> crate::http_server::HeadLimits {
        crate::http_server::HeadLimits {
            read_timeout: Duration::from_secs(self.config.server.header_read_timeout_secs),
            max_bytes: self.config.server.max_header_bytes,
        }
    }

    /// Serves on `listener` and runs the polling loop (and the retention of
    /// old checks) until `shutdown` resolves; then stops polling, lets open requests finish for up to
    /// `server.shutdown_grace_secs`, and closes the database.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let poller = tokio::spawn(poll(
            self.extraction.clone(),
            self.schedule.clone(),
            Arc::clone(&self.config),
            stop_rx.clone(),
        ));
        let calendar = tokio::spawn(self.schedule.clone().maintain(stop_rx.clone()));
        let retention = tokio::spawn(crate::retention::run(
            self.db.clone(),
            crate::retention::RetentionPolicy::days(self.config.database.retention_days),
            stop_rx.clone(),
        ));
        let metrics_server = match self.config.server.metrics_listen {
            Some(address) => Some(self.spawn_metrics_listener(address, stop_rx.clone()).await?),
            None => None,
        };
        if let Ok(address) = listener.local_addr()
            && crate::api::access::mutations_local_only(address, self.config.auth.admin_token.expose())
        {
            tracing::warn!(
                %address,
                "auth.admin_token is not set: POST /extract and POST /schedule/refresh answer only \
                 requests from this machine that came through no proxy (set auth.admin_token to allow others)"
            );
        }
        let mut grace_rx = stop_rx;
        let server = crate::http_server::serve(listener, self.router(), self.head_limits(), async move {
            shutdown.await;
            tracing::info!("shutting down");
            let _ = stop_tx.send(true);
        });
        let grace = Duration::from_secs(self.config.server.shutdown_grace_secs);
        let result = tokio::select! {
            result = server => result,
            _ = async {
                let _ = grace_rx.wait_for(|stopped| *stopped).await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(seconds = grace.as_secs(), "shutdown grace period over; cutting open requests");
                Ok(())
            }
        };
        poller.abort();
        calendar.abort();
        retention.abort();
        if let Some(metrics_server) = metrics_server {
            metrics_server.abort();
        }
        self.db.close().await;
        result
    }
}

/// The configured extractors as the database records them. The mapping
/// lives here, in the composition root, so neither `config` nor `db` knows
/// the other's types.
pub fn extractor_records(extractors: &[ExtractorConfig]) -> Vec<ExtractorRecord<'_>> {
    extractors
        .iter()
        .map(|extractor| ExtractorRecord {
            site_key: &extractor.site_key,
            site_name: &extractor.site_name,
            kind: extractor.kind.as_str(),
            enabled: extractor.enabled,
        })
        .collect()
}

/// The background loop: a run at startup (if configured), then runs planned
/// on the F1 calendar (see [`crate::schedule::planner`]): every
/// `extraction.interval_secs`, and every `live_interval_secs` inside a
/// session's window, starting exactly at its opening. Runs are awaited one
/// at a time and the runner coalesces with manual ones, so they never overlap.
async fn poll(extraction: Extraction, schedule: Schedule, config: Arc<Config>, stop: watch::Receiver<bool>) {
    let scheduler = Scheduler::new(
        schedule.clock(),
        schedule.subscribe(),
        PollPolicy::from_config(&config),
    );
    let run = move |trigger: RunTrigger, _decision| {
        let extraction = extraction.clone();
        async move {
            // Errors are logged by the run; the loop carries on.
            let _ = extraction.run(trigger).await;
        }
    };
    scheduler.run(config.extraction.run_on_startup, run, stop).await;
}

/// Setting under which a generated signing key is kept.
const SIGNING_KEY_SETTING: &str = "proxy_signing_key";
/// Bytes of a generated signing key.
const SIGNING_KEY_BYTES: usize = 32;

/// The text a signing key comes as; [`key_bytes`] turns either into the HMAC
/// key, which is always bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyText<'a> {
    /// `proxy.signing_key`: the string's UTF-8 bytes are the key, so any
    /// passphrase works and the same string always signs the same way.
    Configured(&'a str),
    /// A generated key as the database keeps it: 32 random bytes written
    /// base64url without padding; decoded back to those bytes.
    Stored(&'a str),
}

/// The HMAC key bytes of `text` (see [`KeyText`]).
fn key_bytes(text: KeyText<'_>) -> Result<Vec<u8>, StartError> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    match text {
        KeyText::Configured(key) => Ok(key.as_bytes().to_vec()),
        KeyText::Stored(encoded) => URL_SAFE_NO_PAD.decode(encoded.as_bytes()).map_err(|_| {
            StartError::SigningKey(format!("stored setting {SIGNING_KEY_SETTING} is not base64url"))
        }),
    }
}

/// The proxy's HMAC key: `proxy.signing_key` when set, else one generated
/// once (32 random bytes) and kept in the database, so signed URLs survive
/// restarts. Both go through [`key_bytes`].
async fn signing_key(config: &Config, db: &Database) -> Result<Vec<u8>, StartError> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    if !config.proxy.signing_key.is_empty() {
        return key_bytes(KeyText::Configured(config.proxy.signing_key.expose()));
    }
    let mut fresh = [0u8; SIGNING_KEY_BYTES];
    getrandom::fill(&mut fresh).map_err(|e| StartError::SigningKey(e.to_string()))?;
    let stored = db
        .setting_or_insert(SIGNING_KEY_SETTING, &URL_SAFE_NO_PAD.encode(fresh))
        .await?;
    key_bytes(KeyText::Stored(&stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_key_is_its_utf8_bytes() {
        let key = key_bytes(KeyText::Configured("pässword")).expect("any string is a key");
        assert_eq!(key, "pässword".as_bytes());
    }

    #[test]
    fn a_stored_key_is_its_base64url_decoded_bytes() {
        // What `signing_key` stores for the 32 bytes 0, 1, ..., 31.
        let stored = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
        let key = key_bytes(KeyText::Stored(stored)).expect("decodes");
        assert_eq!(key, (0u8..32).collect::<Vec<u8>>());
        assert_ne!(
            key,
            stored.as_bytes(),
            "the stored text is not the key, its bytes are"
        );
        assert!(matches!(
            key_bytes(KeyText::Stored("not base64url!")),
            Err(StartError::SigningKey(_))
        ));
    }
}
