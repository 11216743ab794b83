//! `EXT-X-DEFINE` variables (RFC 8216bis §4.4.2.3): what a playlist
//! defines and how `{$name}` references in its URIs are substituted. The
//! rewriter substitutes as it writes; the health checker resolves the URIs
//! it fetches the same way, so a playlist that plays with variables is
//! checked with them.
//!
//! `NAME`/`VALUE` and `QUERYPARAM` (read from the playlist's own URL)
//! definitions are known here; `IMPORT`ed ones come from a master playlist
//! this reader does not see, and references to them stay as written.

use std::borrow::Cow;

use url::Url;

use super::uri::{MAX_URL_BYTES, percent_decode};
use super::{AttributeList, Line, Lines};

/// `EXT-X-DEFINE` variables seen so far (a variable must be defined before
/// it is used).
#[derive(Debug, Default)]
pub struct Variables<'p> {
    defined: Vec<(&'p str, Cow<'p, str>)>,
}

impl<'p> Variables<'p> {
    /// Records the variable an `EXT-X-DEFINE` attribute list defines, if it
    /// can be known here (not `IMPORT`, not a missing query parameter).
    /// Returns the name and value when it came from a `QUERYPARAM`.
    pub fn define(&mut self, list: &'p str, base: &Url) -> Option<(&'p str, &str)> {
        let (mut name, mut value, mut query_param) = (None, None, None);
        for attribute in AttributeList(list) {
            let val = attribute.value.as_str();
            match attribute.name {
                "NAME" => name = Some(val),
                "VALUE" => value = Some(val),
                "QUERYPARAM" => query_param = Some(val),
                _ => {}
            }
        }
        if let (Some(name), Some(value)) = (name, value) {
            self.defined.push((name, Cow::Borrowed(value)));
        } else if let Some(param) = query_param
            && let Some(value) = query_value(base, param)
        {
            self.defined.push((param, Cow::Owned(value)));
            return self.defined.last().map(|(name, value)| (*name, value.as_ref()));
        }
        None
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.defined
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_ref())
    }

    /// `text` with every `{$name}` of a known variable replaced; unknown
    /// references stay as written. Values are not scanned again. A result
    /// longer than any URL this service handles ([`MAX_URL_BYTES`]) is useless,
    /// and would let a playlist multiply itself (a long VALUE referenced once
    /// per 4 bytes of a line): `text` then stays as written.
    pub fn substitute<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.defined.is_empty() || !text.contains("{$") {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len() + 32);
        let mut rest = text;
        while let Some(start) = rest.find("{$") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let found = after
                .find('}')
                .and_then(|end| self.get(&after[..end]).map(|value| (end, value)));
            match found {
                Some((end, value)) => {
                    if out.len() + value.len() > MAX_URL_BYTES {
                        return Cow::Borrowed(text);
                    }
                    out.push_str(value);
                    rest = &after[end + 1..];
                }
                None => {
                    out.push_str("{$");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        Cow::Owned(out)
    }

    /// Every variable `text` defines, read in one pass over its lines (for
    /// a reader that resolves URIs after the whole playlist is known).
    pub fn read(text: &'p str, base: &Url) -> Self {
        let mut variables = Self::default();
        if !text.contains("#EXT-X-DEFINE") {
            return variables;
        }
        for (_, content, _) in Lines::new(text) {
            if let Line::Tag {
                name: "EXT-X-DEFINE",
                value,
            } = Line::parse(content)
            {
                variables.define(value, base);
            }
        }
        variables
    }
}

/// The percent-decoded value of query parameter `name` in `url`.
fn query_value(url: &Url, name: &str) -> Option<String> {
    url.query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| String::from_utf8_lossy(&percent_decode(value)).into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(url: &str) -> Url {
        Url::parse(url).expect("valid")
    }

    #[test]
    fn definitions_substitute_and_unknown_references_stay() {
        let text = "#EXTM3U\n#EXT-X-DEFINE:NAME=\"host\",VALUE=\"cdn.example\"\n\
            #EXT-X-DEFINE:QUERYPARAM=\"token\"\n#EXT-X-DEFINE:IMPORT=\"x\"\n";
        let vars = Variables::read(text, &base("https://h.example/live.m3u8?token=a%2Bb"));
        assert_eq!(
            vars.substitute("https://{$host}/s.ts?t={$token}&i={$x}"),
            "https://cdn.example/s.ts?t=a+b&i={$x}"
        );
        assert_eq!(
            Variables::read("#EXTM3U\n", &base("https://h.example/")).substitute("{$host}"),
            "{$host}"
        );
    }

    #[test]
    fn a_substitution_longer_than_any_url_is_not_made() {
        let long = "v".repeat(MAX_URL_BYTES);
        let text = format!("#EXT-X-DEFINE:NAME=\"v\",VALUE=\"{long}\"\n");
        let vars = Variables::read(&text, &base("https://h.example/"));
        assert_eq!(vars.substitute("{$v}{$v}"), "{$v}{$v}");
    }
}
