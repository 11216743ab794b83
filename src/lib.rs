//! f1-stream: a self-hosted aggregator of HLS streams for Formula 1 sessions.
//!
//! Modules, lowest first (nothing imports upward):
//! - [`config`]: the schema of SPEC §4, layered loading and validation.
//! - [`model`]: plain domain types (candidates, health results, triggers).
//! - [`hls`]: allocation-free readers of playlist text.
//! - [`db`]: SQLite: open, migrate, store runs (with rollups and state changes),
//!   ranking and history queries.
//! - [`net`]: the shared HTTP client and the private-address guard.
//! - [`sources`]: extractor trait and the `demo`, `static`, `m3u`, `json` kinds.
//! - [`health`]: one URL's health check.
//! - [`extraction`]: a run: sources → dedupe → bounded checks → store.
//! - [`retention`]: batched pruning of old raw checks, optimize, incremental vacuum.
//! - [`schedule`]: the F1 calendar (fetch, persist, session status) and the
//!   adaptive polling plan built on it.
//! - [`proxy`]: the HLS proxy's playlist and relay pipelines (no web framework),
//!   URL codec and signing, byte-preserving playlist rewriter.
//! - [`metrics`]: metric names, the per-service registry and HTTP middleware.
//! - [`api`]: routes, handlers, DTOs, `ApiError`.
//! - [`app`]: composition root and `serve(listener, shutdown)`.
//! - [`cli`]: the command line.

#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod db;
pub mod extraction;
pub mod health;
pub mod hls;
pub mod metrics;
pub mod model;
pub mod net;
pub mod proxy;
pub mod retention;
pub mod schedule;
pub mod sources;
