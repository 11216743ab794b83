//! The HLS proxy, free of the web framework (the HTTP layer in
//! `api::proxy` only maps requests to it and its answers back):
//!
//! - [`pipeline`]: the [`Proxy`] both endpoints share, token authorization,
//!   the one error type and the [`Answer`] handed to the HTTP layer;
//! - [`playlist`]: `/proxy`, fetch → LL-HLS blocking reload → rewrite;
//! - [`relay`]: `/relay`, forwarded range → streamed upstream bytes;
//! - [`upstream`]: the upstream I/O both pipelines use;
//! - [`token`]: the URL codec and signatures, pure; [`kind`]: which
//!   endpoint a URL targets;
//! - [`rewrite`]: the byte-preserving playlist rewriter, pure;
//! - [`path_cache`]: the memory of signed paths that spares reloads most of
//!   the signing.

pub mod kind;
pub mod limits;
pub mod path_cache;
pub mod pipeline;
pub mod playlist;
pub mod relay;
pub mod rewrite;
pub mod token;
pub mod upstream;

pub use pipeline::{Answer, Proxy, ProxyError, ProxyParts};
