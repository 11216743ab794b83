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
use crate::config::Config;
use crate::db::Database;
use crate::extraction::{Extraction, ExtractionParts};
use crate::health::HealthChecker;
use crate::model::RunTrigger;
use crate::net::{self, AddressGuard};
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
}

/// The assembled service.
#[derive(Clone)]
pub struct App {
    config: Arc<Config>,
    db: Database,
    extraction: Extraction,
    checker: HealthChecker,
}

impl App {
    /// Opens the database (migrating it), records the configured extractors
    /// and wires the runner. Nothing runs until [`App::serve`].
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let db = Database::open(&config.database.url).await?;
        db.sync_extractors(&config.extractors).await?;
        Self::with_database(config, db)
    }

    /// Like [`App::build`] over an already open database.
    pub fn with_database(config: Config, db: Database) -> Result<Self, StartError> {
        let guard = AddressGuard::new(config.network.allow_private_networks);
        let client = net::build_client(&config.network, &config.health.user_agent)?;
        let checker = HealthChecker::new(client.clone(), guard, &config.health);
        let extraction = Extraction::new(ExtractionParts {
            extractors: sources::build_registry(&config.extractors),
            sources: SourceContext {
                client,
                guard,
                max_document_bytes: config.extraction.max_source_bytes,
            },
            checker: checker.clone(),
            db: db.clone(),
            extractor_timeout: Duration::from_secs(config.extraction.extractor_timeout_secs),
            concurrency: config.health.concurrency,
        });
        Ok(Self {
            config: Arc::new(config),
            db,
            extraction,
            checker,
        })
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

    /// The health checker (for `f1-stream check`).
    pub fn checker(&self) -> &HealthChecker {
        &self.checker
    }

    /// The HTTP router over this app's state.
    pub fn router(&self) -> Router {
        api::router(AppState {
            config: Arc::clone(&self.config),
            db: self.db.clone(),
            extraction: self.extraction.clone(),
        })
    }

    /// Serves on `listener` and runs the polling loop until `shutdown`
    /// resolves; then stops polling, lets open requests finish for up to
    /// `server.shutdown_grace_secs`, and closes the database.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let poller = tokio::spawn(poll(
            self.extraction.clone(),
            Arc::clone(&self.config),
            stop_rx.clone(),
        ));
        let mut grace_rx = stop_rx;
        let server = axum::serve(listener, self.router()).with_graceful_shutdown(async move {
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
        self.db.close().await;
        result
    }
}

/// The background loop: a run at startup (if configured), then one every
/// `extraction.interval_secs`. Runs never overlap: the runner coalesces.
async fn poll(extraction: Extraction, config: Arc<Config>, mut stop: watch::Receiver<bool>) {
    let interval = Duration::from_secs(config.extraction.interval_secs);
    let mut trigger = config.extraction.run_on_startup.then_some(RunTrigger::Startup);
    loop {
        if let Some(trigger) = trigger.take() {
            tokio::select! {
                // Errors are logged by the run; the loop carries on.
                _ = extraction.run(trigger) => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => trigger = Some(RunTrigger::Schedule),
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}
