//! The product promise, end to end through the real service: a stream the
//! checker calls healthy plays through the proxy, and a body the checker
//! calls no playlist the proxy refuses too.
//!
//! Every case of the corpus (`tests/corpus`) is served under its own prefix
//! of one fake origin and listed by one static extractor; one extraction
//! checks them all. Every corpus case is whole, so for a healthy one "every
//! URI answers" is what a player needs. Partial streams (a master with one
//! broken variant, which real players survive by level failover) are healthy
//! while some URI fails; they stay in `tests/deep_health.rs`.

mod common;
mod corpus;

use std::collections::HashSet;

use common::{FakeOrigin, TestService, static_extractor, uris_in};
use corpus::{Case, REFERER, Verdict};
use f1_stream::hls;
use f1_stream::model::ErrorKind;
use f1_stream::proxy::token;

const SITE: &str = "corpus";
const PLAYLIST_CONTENT_TYPE: &str = "application/vnd.apple.mpegurl";

/// What playing one stream through the proxy fetched.
#[derive(Debug, Default)]
struct Played {
    playlists: usize,
    relays: usize,
}

/// Plays `proxy_url` as a player would: the playlist, every URI it writes,
/// and every URI of the playlists it names. Every URI must be this
/// service's and answer 2xx: `/proxy/` with a playlist, `/relay/` with
/// exactly the bytes the origin serves for the case.
async fn play(
    client: &reqwest::Client,
    service: &TestService,
    origin: &FakeOrigin,
    case: &Case,
    proxy_url: &str,
) -> Result<Played, String> {
    let own = format!("{}/", service.base);
    let origin_root = origin.url("");
    let mut played = Played::default();
    let mut seen = HashSet::new();
    // (URI, depth): the stream's playlist is 0; URIs of playlists at depth
    // 0 and 1 are followed, so master → media → segments is walked whole.
    let mut queue = vec![(proxy_url.to_owned(), 0)];
    while let Some((uri, depth)) = queue.pop() {
        if !seen.insert(uri.clone()) {
            continue;
        }
        let Some(path) = uri.strip_prefix(&own) else {
            return Err(format!("{uri} is not a URL of this service"));
        };
        let mut parts = path.split('/');
        let (endpoint, token) = (parts.next(), parts.next().unwrap_or_default());
        let response = client.get(&uri).send().await.map_err(|e| format!("{uri}: {e}"))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(|e| format!("{uri}: body: {e}"))?;
        let upstream = token::parse_token(token)
            .map(|parsed| parsed.url_text)
            .unwrap_or_else(|e| format!("<undecodable token: {e}>"));
        if !status.is_success() {
            return Err(format!("{uri} (upstream {upstream}) answered {status}"));
        }
        match endpoint {
            Some("proxy") => {
                played.playlists += 1;
                if content_type.as_deref() != Some(PLAYLIST_CONTENT_TYPE) {
                    return Err(format!("{upstream}: content-type {content_type:?}"));
                }
                let text = body.strip_prefix(hls::BOM.as_bytes()).unwrap_or(&body);
                if !text.starts_with(b"#EXTM3U") {
                    let head = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
                    return Err(format!("{upstream}: proxied playlist starts {head:?}"));
                }
                if depth < 2 {
                    // Players read the text with its BOM stripped.
                    let text = String::from_utf8_lossy(text);
                    queue.extend(uris_in(&text).into_iter().map(|uri| (uri, depth + 1)));
                }
            }
            Some("relay") => {
                played.relays += 1;
                let served = upstream
                    .strip_prefix(&origin_root)
                    .and_then(|path| case.served_at(path))
                    .ok_or_else(|| format!("{upstream} is no route of the case"))?;
                if body.as_ref() != served.body.as_slice() {
                    return Err(format!(
                        "{upstream}: relayed {} bytes differ from the origin's {}",
                        body.len(),
                        served.body.len()
                    ));
                }
            }
            other => return Err(format!("{uri}: neither /proxy/ nor /relay/ ({other:?})")),
        }
    }
    if played.relays == 0 {
        return Err(format!("nothing to play was reached: {played:?}"));
    }
    Ok(played)
}

#[tokio::test]
async fn healthy_streams_play_through_the_proxy_and_the_proxy_refuses_what_is_not_hls() {
    let origin = FakeOrigin::start().await;
    let cases = corpus::cases();
    for case in &cases {
        case.serve(&origin);
    }
    let urls: Vec<String> = cases.iter().map(|case| case.entry_url(&origin)).collect();
    let extractor = static_extractor(SITE, &urls, &format!("headers = {{ Referer = \"{REFERER}\" }}"));
    let service = TestService::start(&extractor).await;
    let (status, run) = service.post_json("/extract").await;
    assert_eq!(status, 200, "{run}");
    let (status, all) = service.get_json("/streams/all").await;
    assert_eq!(status, 200, "{all}");
    let streams = all["streams"].as_array().expect("streams");

    let client = reqwest::Client::new();
    let mut failures = Vec::new();
    let (mut healthy, mut refused) = (0, 0);
    for (case, url) in cases.iter().zip(&urls) {
        let Some(stream) = streams.iter().find(|s| s["url"] == url.as_str()) else {
            failures.push(format!("{}: not in /streams/all", case.name));
            continue;
        };
        let verdict = case.verdict.mismatch(
            stream["is_live"].as_bool().expect("is_live"),
            stream["error_kind"].as_str(),
            stream["error"].as_str(),
        );
        if let Some(why) = verdict {
            failures.push(format!("{}: verdict {why}", case.name));
            continue;
        }
        // `proxy_url` is always listed; were it absent, there would be no
        // URL to try, and only the proxy half of the case is skipped.
        let Some(proxy_url) = stream["proxy_url"].as_str() else {
            continue;
        };
        match &case.verdict {
            Verdict::Healthy => match play(&client, &service, &origin, case, proxy_url).await {
                Ok(_) => healthy += 1,
                Err(why) => failures.push(format!("{}: healthy but does not play: {why}", case.name)),
            },
            Verdict::Unhealthy {
                kind: ErrorKind::NotHls,
                ..
            } => {
                let response = client.get(proxy_url).send().await.expect("proxy answers");
                if response.status().is_success() {
                    let body = response.text().await.unwrap_or_default();
                    let head: String = body.chars().take(80).collect();
                    failures.push(format!(
                        "{}: not_hls, yet the proxy serves it: {head:?}",
                        case.name
                    ));
                } else {
                    refused += 1;
                }
            }
            Verdict::Unhealthy { .. } => {}
        }
    }
    assert!(
        failures.is_empty(),
        "checker and proxy disagree:\n{}",
        failures.join("\n")
    );
    let expected_healthy = cases.iter().filter(|c| c.verdict.is_healthy()).count();
    assert_eq!(healthy, expected_healthy, "every healthy case was played");
    let expected_refused = cases
        .iter()
        .filter(|c| {
            matches!(
                c.verdict,
                Verdict::Unhealthy {
                    kind: ErrorKind::NotHls,
                    ..
                }
            )
        })
        .count();
    assert_eq!(refused, expected_refused, "every not_hls case was tried");
}
