//! The `json` extractor: a JSON API whose items are mapped to streams with
//! JSON pointers (`items` to the array, `fields.*` inside each item).

use futures::future::BoxFuture;
use reqwest::header::HeaderMap;
use serde_json::Value;
use url::Url;

use super::{Source, SourceContext, SourceError, resolve};
use crate::config::{ExtractorConfig, JsonFields};
use crate::model::{SessionType, StreamCandidate};

/// Fetches a JSON document and maps its items.
#[derive(Debug, Clone)]
pub struct JsonSource {
    url: Option<Url>,
    items: String,
    fields: Option<JsonFields>,
}

impl JsonSource {
    /// From a validated `json` extractor config.
    pub fn from_config(config: &ExtractorConfig) -> Self {
        Self {
            url: config.url.as_deref().and_then(|u| Url::parse(u).ok()),
            items: config.items.clone().unwrap_or_default(),
            fields: config.fields.clone(),
        }
    }
}

impl Source for JsonSource {
    fn extract<'a>(
        &'a self,
        ctx: &'a SourceContext,
        headers: &'a HeaderMap,
    ) -> BoxFuture<'a, Result<Vec<StreamCandidate>, SourceError>> {
        Box::pin(async move {
            let (Some(url), Some(fields)) = (&self.url, &self.fields) else {
                return Err(SourceError::Parse("json extractor without url or fields".into()));
            };
            let (body, final_url) = ctx.fetch(url, headers).await?;
            let document: Value =
                serde_json::from_slice(&body).map_err(|e| SourceError::Parse(e.to_string()))?;
            map_items(&document, &self.items, fields, Some(&final_url))
        })
    }
}

/// Maps the array at `items` to candidates. Items without a usable URL are
/// skipped; a missing or non-array `items` is an error.
pub fn map_items(
    document: &Value,
    items: &str,
    fields: &JsonFields,
    base: Option<&Url>,
) -> Result<Vec<StreamCandidate>, SourceError> {
    let array = document
        .pointer(items)
        .and_then(Value::as_array)
        .ok_or_else(|| SourceError::Parse(format!("items pointer {items:?} does not point to an array")))?;
    let text = |item: &Value, pointer: &Option<String>| -> Option<String> {
        match item.pointer(pointer.as_deref()?)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    Ok(array
        .iter()
        .filter_map(|item| {
            let url = item.pointer(&fields.url)?.as_str()?;
            let url = resolve(base, url)?;
            let session = text(item, &fields.session)
                .and_then(|s| s.parse::<SessionType>().ok().or_else(|| SessionType::detect(&s)));
            Some(StreamCandidate {
                url,
                title: text(item, &fields.title),
                quality: text(item, &fields.quality),
                session,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields() -> JsonFields {
        JsonFields {
            url: "/src".into(),
            title: Some("/name".into()),
            quality: Some("/meta/q".into()),
            session: Some("/s".into()),
        }
    }

    #[test]
    fn items_map_through_pointers() {
        let document = json!({"data": {"streams": [
            {"src": "https://a.example/x.m3u8", "name": "Main", "meta": {"q": 1080}, "s": "race"},
            {"src": "rel/y.m3u8", "name": "Onboard", "s": "Sprint Qualifying"},
            {"name": "no url"},
            {"src": 42},
            {"src": "ftp://nope/z.m3u8"}
        ]}});
        let base = Url::parse("https://api.example/v1/list.json").expect("valid");
        let found = map_items(&document, "/data/streams", &fields(), Some(&base)).expect("maps");
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].url, "https://a.example/x.m3u8");
        assert_eq!(found[0].quality.as_deref(), Some("1080"));
        assert_eq!(found[0].session, Some(SessionType::Race));
        assert_eq!(found[1].url, "https://api.example/v1/rel/y.m3u8");
        assert_eq!(found[1].session, Some(SessionType::SprintQualifying));
        assert_eq!(found[1].quality, None);
    }

    #[test]
    fn items_pointer_must_reach_an_array() {
        let document = json!({"data": {"streams": {}}});
        let err = map_items(&document, "/data/streams", &fields(), None).expect_err("not an array");
        assert!(err.to_string().contains("/data/streams"));
        assert!(
            map_items(&json!([]), "", &fields(), None)
                .expect("root array")
                .is_empty()
        );
    }
}
