//! The `demo` extractor: public HLS test streams, so a fresh install shows
//! something without configuration.

use futures::future::BoxFuture;
use reqwest::header::HeaderMap;

use super::{Source, SourceContext, SourceError};
use crate::model::StreamCandidate;

/// (url, title, quality) of the built-in test streams.
const DEMO_STREAMS: [(&str, &str, &str); 3] = [
    (
        "https://test-streams.mux.dev/x36xhzz/x36xhzz.m3u8",
        "Big Buck Bunny (Mux test stream)",
        "1080p",
    ),
    (
        "https://devstreaming-cdn.apple.com/videos/streaming/examples/bipbop_16x9/bipbop_16x9_variant.m3u8",
        "Apple bipbop 16x9 (test stream)",
        "1080p",
    ),
    (
        "https://cph-p2p-msl.akamaized.net/hls/live/2000341/test/master.m3u8",
        "Akamai live test stream",
        "720p",
    ),
];

/// Lists [`DEMO_STREAMS`].
#[derive(Debug, Clone, Copy)]
pub struct DemoSource;

impl Source for DemoSource {
    fn extract<'a>(
        &'a self,
        _ctx: &'a SourceContext,
        _headers: &'a HeaderMap,
    ) -> BoxFuture<'a, Result<Vec<StreamCandidate>, SourceError>> {
        let streams = DEMO_STREAMS
            .iter()
            .map(|(url, title, quality)| StreamCandidate {
                title: Some((*title).to_owned()),
                quality: Some((*quality).to_owned()),
                ..StreamCandidate::new(*url)
            })
            .collect();
        Box::pin(async move { Ok(streams) })
    }
}
