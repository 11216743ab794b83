//! f1-stream: a self-hosted aggregator of HLS streams for Formula 1 sessions.
//!
//! Modules, lowest first (nothing imports upward; docs/ARCHITECTURE.md
//! says who may use whom and draws the request paths):
//! - [`model`]: plain domain types (candidates, health results, triggers,
//!   ranking order, the site-key rule).
//! - [`config`]: the configuration schema, layered loading and validation.
//! - [`hls`]: the one reader of HLS text: the playlist rule, lines,
//!   attribute lists, master/media, live/event/VOD, summaries, segments.
//! - [`net`]: the shared HTTP client, the private-address guard and the one
//!   guarded fetch.
//! - [`db`]: SQLite: open, migrate, store runs (with rollups and state changes),
//!   ranking and history queries.
//! - [`sources`]: extractor trait and the `demo`, `static`, `m3u`, `json` kinds.
//! - [`health`]: one URL's health check.
//! - [`proxy`]: the HLS proxy's playlist and relay pipelines (no web framework),
//!   URL codec and signing, byte-preserving playlist rewriter.
//! - [`metrics`]: the metric table, the per-service registry and HTTP middleware.
//! - [`schedule`]: the F1 calendar (fetch, persist, session status) and the
//!   adaptive polling plan built on it.
//! - [`extraction`]: a run: sources → dedupe → bounded checks → store.
//! - [`channel`]: failover channels: the pure stitcher and the engine that
//!   switches sources.
//! - [`retention`]: batched pruning of old raw checks, optimize, incremental vacuum.
//! - [`api`]: routes, handlers, DTOs, `ApiError`.
//! - [`http_server`]: the listener: hyper connections with bounds on a
//!   request's head (time, size) and the peer's address.
//! - [`app`]: composition root and `serve(listener, shutdown)`.
//! - [`cli`]: the command line.

#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod channel;
pub mod cli;
pub mod config;
pub mod db;
pub mod extraction;
pub mod health;
pub mod hls;
pub mod http_server;
pub mod metrics;
pub mod model;
pub mod net;
pub mod proxy;
pub mod retention;
pub mod schedule;
pub mod sources;
