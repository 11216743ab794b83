//! Extractors: where stream URLs come from. One [`Source`] implementation per
//! kind; the registry turns configuration into runnable extractors. Sources
//! know nothing of health checks or the database.

mod demo;
mod json;
mod m3u;
mod static_list;

use std::sync::Arc;

use futures::future::BoxFuture;
use reqwest::header::HeaderMap;
use url::Url;

use crate::config::{ExtractorConfig, ExtractorKind};
use crate::hls;
use crate::model::StreamCandidate;
use crate::net::{self, Fetch, FetchError, FetchFailure, Http};

pub use json::{JsonSource, map_items};
pub use m3u::{M3uSource, parse_m3u};
pub use static_list::StaticSource;

/// Why a source produced no list.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The document could not be fetched.
    #[error("fetch failed: {0}")]
    Fetch(String),
    /// The document's server answered with an error status.
    #[error("HTTP {0}")]
    Status(u16),
    /// The document is larger than `extraction.max_source_bytes`.
    #[error("document exceeds {0} bytes")]
    TooLarge(u64),
    /// The document could not be read as its kind.
    #[error("invalid document: {0}")]
    Parse(String),
    /// A local file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
}

/// What a source may use: the shared client and limits.
#[derive(Debug, Clone)]
pub struct SourceContext {
    /// The shared, guarded HTTP client.
    pub http: Http,
    /// Largest document read.
    pub max_document_bytes: u64,
}

impl From<FetchError> for SourceError {
    fn from(err: FetchError) -> Self {
        match *err.failure() {
            FetchFailure::Status(status) => Self::Status(status),
            FetchFailure::TooLarge(limit) => Self::TooLarge(limit),
            _ => Self::Fetch(err.to_string()),
        }
    }
}

impl SourceContext {
    /// Fetches an http(s) document with `headers` through the guarded
    /// fetch, refusing anything larger than the limit while it streams in.
    /// Returns the body and the URL it came from after redirects (the base
    /// for its relative references).
    pub async fn fetch(&self, url: &Url, headers: &HeaderMap) -> Result<(bytes::Bytes, Url), SourceError> {
        let fetched = self
            .http
            .fetch(Fetch::get(url.clone(), self.max_document_bytes).headers(headers))
            .await?;
        Ok((fetched.body, fetched.final_url))
    }

    /// Reads a local file, refusing one larger than the limit.
    pub async fn read_file(&self, path: &str) -> Result<Vec<u8>, SourceError> {
        use tokio::io::AsyncReadExt;
        let io = |source| SourceError::Io {
            path: path.to_owned(),
            source,
        };
        let file = tokio::fs::File::open(path).await.map_err(io)?;
        let mut content = Vec::new();
        // Read one byte past the limit to tell "exactly at" from "over".
        file.take(self.max_document_bytes + 1)
            .read_to_end(&mut content)
            .await
            .map_err(io)?;
        if content.len() as u64 > self.max_document_bytes {
            return Err(SourceError::TooLarge(self.max_document_bytes));
        }
        Ok(content)
    }
}

/// A source of stream candidates.
pub trait Source: Send + Sync {
    /// Lists the streams the source offers now.
    fn extract<'a>(
        &'a self,
        ctx: &'a SourceContext,
        headers: &'a HeaderMap,
    ) -> BoxFuture<'a, Result<Vec<StreamCandidate>, SourceError>>;
}

/// A configured extractor: identity, request headers and its source.
pub struct Extractor {
    /// Unique key.
    pub site_key: String,
    /// Display name.
    pub site_name: String,
    /// Whether runs include it.
    pub enabled: bool,
    /// Headers sent with its document fetches and its streams' checks.
    pub headers: HeaderMap,
    source: Box<dyn Source>,
}

impl std::fmt::Debug for Extractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extractor")
            .field("site_key", &self.site_key)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl Extractor {
    /// An extractor around any source (tests use this for fake sources).
    pub fn new(config: &ExtractorConfig, source: Box<dyn Source>) -> Self {
        Self {
            site_key: config.site_key.clone(),
            site_name: config.site_name.clone(),
            enabled: config.enabled,
            headers: net::header_map(&config.headers),
            source,
        }
    }

    /// Runs the source and normalises its list: absolute http(s) URLs only,
    /// each once, in the source's order.
    pub async fn extract(&self, ctx: &SourceContext) -> Result<Vec<StreamCandidate>, SourceError> {
        let found = self.source.extract(ctx, &self.headers).await?;
        let mut seen = std::collections::HashSet::new();
        Ok(found
            .into_iter()
            .filter(|c| {
                Url::parse(&c.url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
                    && seen.insert(c.url.clone())
            })
            .collect())
    }
}

/// Builds every configured extractor (enabled or not) from validated config.
pub fn build_registry(configs: &[ExtractorConfig]) -> Vec<Arc<Extractor>> {
    configs
        .iter()
        .map(|config| {
            let source: Box<dyn Source> = match config.kind {
                ExtractorKind::Demo => Box::new(demo::DemoSource),
                ExtractorKind::Static => Box::new(StaticSource::from_config(&config.streams)),
                ExtractorKind::M3u => Box::new(M3uSource::from_config(config)),
                ExtractorKind::Json => Box::new(JsonSource::from_config(config)),
            };
            Arc::new(Extractor::new(config, source))
        })
        .collect()
}

/// Resolves a possibly relative `reference` against `base` (when the document
/// came from a URL) by the playlist rule ([`hls::uri::resolve`]); returns
/// absolute http(s) URLs only.
fn resolve(base: Option<&Url>, reference: &str) -> Option<String> {
    let reference = reference.trim();
    match base {
        Some(base) => hls::uri::resolve(base, reference),
        None => hls::uri::absolute(reference),
    }
    .map(String::from)
}

/// Reads a quality label such as `1080p`, `4K` or `HD` from free text.
fn detect_quality(text: &str) -> Option<String> {
    const LABELS: [&str; 10] = [
        "2160p", "1440p", "1080p", "720p", "540p", "480p", "360p", "4k", "uhd", "fhd",
    ];
    let lower = text.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if let Some(label) = LABELS.iter().find(|label| words.contains(label)) {
        return Some(label.to_ascii_uppercase().replace('P', "p"));
    }
    ["hd", "sd"]
        .iter()
        .find(|label| words.contains(label))
        .map(|label| label.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_is_read_from_whole_words() {
        assert_eq!(detect_quality("Sky F1 1080p").as_deref(), Some("1080p"));
        assert_eq!(detect_quality("F1 TV [4K]").as_deref(), Some("4K"));
        assert_eq!(detect_quality("Channel HD").as_deref(), Some("HD"));
        assert_eq!(detect_quality("Shadow"), None);
    }

    #[test]
    fn relative_references_resolve_against_the_document() {
        let base = Url::parse("https://example.com/lists/f1.m3u").expect("valid");
        assert_eq!(
            resolve(Some(&base), "../live/a.m3u8").as_deref(),
            Some("https://example.com/live/a.m3u8")
        );
        assert_eq!(resolve(None, "live/a.m3u8"), None);
        assert_eq!(resolve(None, "rtmp://x/y"), None);
    }
}
