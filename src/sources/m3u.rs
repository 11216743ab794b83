//! The `m3u` extractor: an IPTV-style M3U channel list from a URL or a file.
//! Titles come from `#EXTINF` (or `tvg-name`), groups from `group-title` or
//! `#EXTGRP`; `title_filter` keeps entries whose title or group matches.

use futures::future::BoxFuture;
use regex::Regex;
use reqwest::header::HeaderMap;
use url::Url;

use super::{Source, SourceContext, SourceError, detect_quality, resolve};
use crate::config::ExtractorConfig;
use crate::model::{SessionType, StreamCandidate};

/// Where the list lives.
#[derive(Debug, Clone)]
enum Location {
    Remote(Url),
    File(String),
}

/// Fetches and parses an M3U list.
#[derive(Debug, Clone)]
pub struct M3uSource {
    location: Location,
    title_filter: Option<Regex>,
}

impl M3uSource {
    /// From a validated `m3u` extractor config.
    pub fn from_config(config: &ExtractorConfig) -> Self {
        let target = config.url.clone().unwrap_or_default();
        let location = match Url::parse(&target) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Location::Remote(url),
            _ => Location::File(target),
        };
        Self {
            location,
            // Validated at config load; an invalid one cannot reach here.
            title_filter: config.title_filter.as_deref().and_then(|f| Regex::new(f).ok()),
        }
    }
}

impl Source for M3uSource {
    fn extract<'a>(
        &'a self,
        ctx: &'a SourceContext,
        headers: &'a HeaderMap,
    ) -> BoxFuture<'a, Result<Vec<StreamCandidate>, SourceError>> {
        Box::pin(async move {
            let (text, base) = match &self.location {
                Location::Remote(url) => {
                    let (body, final_url) = ctx.fetch(url, headers).await?;
                    (body.to_vec(), Some(final_url))
                }
                Location::File(path) => (ctx.read_file(path).await?, None),
            };
            Ok(parse_m3u(
                &String::from_utf8_lossy(&text),
                base.as_ref(),
                self.title_filter.as_ref(),
            ))
        })
    }
}

/// Attributes of the `#EXTINF` line waiting for its URL line.
#[derive(Debug, Default)]
struct Entry {
    title: Option<String>,
    group: Option<String>,
}

/// Parses M3U text. Relative URLs resolve against `base` (the list's URL);
/// without a base only absolute http(s) URLs are kept.
pub fn parse_m3u(text: &str, base: Option<&Url>, title_filter: Option<&Regex>) -> Vec<StreamCandidate> {
    let mut found = Vec::new();
    let mut entry = Entry::default();
    for line in text.lines() {
        let line = line.trim().trim_start_matches('\u{feff}');
        if line.is_empty() {
            continue;
        }
        if let Some(info) = line.strip_prefix("#EXTINF:") {
            entry = iptv_extinf(info);
        } else if let Some(group) = line.strip_prefix("#EXTGRP:") {
            entry.group = Some(group.trim().to_owned());
        } else if line.starts_with('#') {
            continue;
        } else {
            let current = std::mem::take(&mut entry);
            let Some(url) = resolve(base, line) else { continue };
            let matches = title_filter.is_none_or(|filter| {
                [&current.title, &current.group]
                    .into_iter()
                    .flatten()
                    .any(|text| filter.is_match(text))
            });
            if !matches {
                continue;
            }
            let described = current
                .title
                .as_deref()
                .into_iter()
                .chain(current.group.as_deref());
            let session = described.clone().find_map(SessionType::detect);
            let quality = current.title.as_deref().and_then(detect_quality);
            found.push(StreamCandidate {
                url,
                title: current.title,
                quality,
                session,
            });
        }
    }
    found
}

/// Reads the IPTV `#EXTINF` grammar of channel lists:
/// `-1 tvg-id="x" tvg-name="Name" group-title="F1",Display title`, i.e. a
/// duration, then space-separated `key="value"` pairs, then the title after
/// the first comma outside quotes (the title itself may hold commas and
/// quotes). This is not an RFC 8216 attribute list, so
/// `crate::hls::attributes` does not fit: there a comma separates pairs,
/// so the title after it would be read as one more pair (or dropped when
/// it holds no `=`), and the leading duration would run into the first key.
fn iptv_extinf(info: &str) -> Entry {
    let mut entry = Entry::default();
    let mut tvg_name = None;
    let mut rest = info;
    let mut title_start = None;
    // Walk attributes `key="value"`; the title follows the first comma that
    // is not inside quotes.
    let bytes = rest.as_bytes();
    let mut in_quotes = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b',' if !in_quotes => {
                title_start = Some(i);
                break;
            }
            _ => {}
        }
    }
    if let Some(comma) = title_start {
        let title = rest[comma + 1..].trim();
        if !title.is_empty() {
            entry.title = Some(title.to_owned());
        }
        rest = &rest[..comma];
    }
    while let Some(eq) = rest.find("=\"") {
        let key = rest[..eq].rsplit(' ').next().unwrap_or("").trim();
        let after = &rest[eq + 2..];
        let Some(end) = after.find('"') else { break };
        let value = after[..end].trim();
        match key {
            "group-title" if !value.is_empty() => entry.group = Some(value.to_owned()),
            "tvg-name" if !value.is_empty() => tvg_name = Some(value.to_owned()),
            _ => {}
        }
        rest = &after[end + 1..];
    }
    if entry.title.is_none() {
        entry.title = tvg_name;
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "#EXTM3U x-tvg-url=\"http://epg\"\r\n\
        #EXTINF:-1 tvg-id=\"f1.1\" tvg-name=\"F1 One\" group-title=\"Formula 1\",Sky F1 1080p\r\n\
        https://cdn.example.com/f1/one.m3u8\r\n\
        #EXTINF:-1 tvg-name=\"Sprint, Live\" group-title=\"Motorsport\",\r\n\
        live/sprint.m3u8\r\n\
        #EXTINF:-1,Cooking Channel\r\n\
        #EXTVLCOPT:http-referrer=https://x\r\n\
        https://cdn.example.com/food.m3u8\r\n\
        #EXTGRP:Formula 1\r\n\
        https://cdn.example.com/untitled.m3u8\r\n\
        rtmp://cdn.example.com/not-http\r\n";

    #[test]
    fn titles_groups_and_relative_urls_are_read() {
        let base = Url::parse("https://lists.example.com/iptv/f1.m3u").expect("valid");
        let found = parse_m3u(LIST, Some(&base), None);
        let urls: Vec<_> = found.iter().map(|c| c.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://cdn.example.com/f1/one.m3u8",
                "https://lists.example.com/iptv/live/sprint.m3u8",
                "https://cdn.example.com/food.m3u8",
                "https://cdn.example.com/untitled.m3u8",
            ]
        );
        assert_eq!(found[0].title.as_deref(), Some("Sky F1 1080p"));
        assert_eq!(found[0].quality.as_deref(), Some("1080p"));
        assert_eq!(
            found[1].title.as_deref(),
            Some("Sprint, Live"),
            "tvg-name stands in for an empty title"
        );
        assert_eq!(found[1].session, Some(SessionType::Sprint));
        assert_eq!(found[3].title, None);
    }

    #[test]
    fn without_a_base_relative_urls_are_dropped() {
        let found = parse_m3u(LIST, None, None);
        assert_eq!(found.len(), 3);
        assert!(
            found
                .iter()
                .all(|c| c.url.starts_with("https://cdn.example.com/"))
        );
    }

    #[test]
    fn title_filter_matches_title_or_group() {
        let filter = Regex::new("(?i)formula|f1").expect("valid");
        let found = parse_m3u(LIST, None, Some(&filter));
        let urls: Vec<_> = found.iter().map(|c| c.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://cdn.example.com/f1/one.m3u8",
                "https://cdn.example.com/untitled.m3u8"
            ]
        );
    }

    #[test]
    fn garbage_yields_nothing_and_never_panics() {
        for text in [
            "",
            "#EXTINF",
            "#EXTINF:-1 a=\"b\",",
            "\u{feff}\n\n",
            "not a url\n#EXTGRP:\n<html>",
            "\u{0}\u{7f}\r\r\n",
        ] {
            assert_eq!(parse_m3u(text, None, None), [], "{text:?}");
        }
    }

    #[test]
    fn an_unterminated_quote_costs_the_title_not_the_stream() {
        let found = parse_m3u("#EXTINF:-1 a=\"unterminated,Title\nhttp://x/a.m3u8", None, None);
        assert_eq!(found, [StreamCandidate::new("http://x/a.m3u8")]);
    }

    #[test]
    fn iptv_attributes_are_space_separated_and_the_title_follows_the_first_comma_outside_quotes() {
        let entry = iptv_extinf("-1 tvg-name=\"Sprint, Live\" group-title=\"F1, 2026\",Race, \"Main\" feed");
        assert_eq!(entry.title.as_deref(), Some("Race, \"Main\" feed"));
        assert_eq!(entry.group.as_deref(), Some("F1, 2026"));
        let untitled = iptv_extinf("-1 tvg-name=\"Sprint, Live\",");
        assert_eq!(untitled.title.as_deref(), Some("Sprint, Live"));
    }
}
