//! The `static` extractor: a fixed list of streams from the config file.

use futures::future::BoxFuture;
use reqwest::header::HeaderMap;

use super::{Source, SourceContext, SourceError};
use crate::config::StaticStream;
use crate::model::StreamCandidate;

/// Returns its configured list as is.
#[derive(Debug, Clone)]
pub struct StaticSource {
    streams: Vec<StreamCandidate>,
}

impl StaticSource {
    /// From the `streams` of a `static` extractor.
    pub fn from_config(streams: &[StaticStream]) -> Self {
        Self {
            streams: streams
                .iter()
                .map(|s| StreamCandidate {
                    url: s.url.clone(),
                    title: s.title.clone(),
                    quality: s.quality.clone(),
                    session: s.session,
                })
                .collect(),
        }
    }
}

impl Source for StaticSource {
    fn extract<'a>(
        &'a self,
        _ctx: &'a SourceContext,
        _headers: &'a HeaderMap,
    ) -> BoxFuture<'a, Result<Vec<StreamCandidate>, SourceError>> {
        Box::pin(async move { Ok(self.streams.clone()) })
    }
}
