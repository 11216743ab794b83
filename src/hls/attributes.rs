//! The one parser of RFC 8216 attribute lists (§4.2), the `NAME=value,...`
//! after the colon of every `#EXT-X-...` tag that has one.
//!
//! Values are one of: a quoted string (`"..."`, which may hold commas and
//! has no escapes: HLS has none, so a `\` is an ordinary byte and the next
//! `"` ends the string), a decimal integer, a hexadecimal sequence
//! (`0x...`), a signed or unsigned decimal float, an enumerated string
//! (`YES`, `AES-128`) or a resolution (`1280x720`). The parser reads the
//! shape of the list once and keeps byte offsets, so the rewriter can
//! replace just the bytes of a `URI` value; the typed readers on [`Value`]
//! decide what a value means.
//!
//! Lenient the way players are: spaces around names and before a quote are
//! tolerated; an attribute without `=` is skipped to the next comma outside
//! quotes; bytes between a closing quote and the next comma are ignored;
//! an unterminated quoted string ends the list (it is no quoted string, and
//! what follows cannot be split reliably). It never panics, on any input.
//! Duplicate names are invalid HLS; [`AttributeList::get`] answers the last,
//! as hls.js does (it builds an object, later keys overwriting earlier).

use std::ops::Range;

/// An attribute list: the text after `#EXT-X-...:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeList<'a>(pub &'a str);

impl<'a> AttributeList<'a> {
    /// Every attribute, in order, duplicates included.
    pub fn iter(&self) -> Attributes<'a> {
        Attributes { list: self.0, at: 0 }
    }

    /// The value of attribute `name` (the last one when it is repeated).
    pub fn get(&self, name: &str) -> Option<Value<'a>> {
        self.iter()
            .filter(|attribute| attribute.name == name)
            .last()
            .map(|attribute| attribute.value)
    }
}

impl<'a> IntoIterator for AttributeList<'a> {
    type Item = Attribute<'a>;
    type IntoIter = Attributes<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// One `NAME=value` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// The name, without surrounding spaces.
    pub name: &'a str,
    /// The value.
    pub value: Value<'a>,
}

/// An attribute's value as written, with its place in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    text: &'a str,
    quoted: bool,
    /// Offset of `text` in the attribute list.
    start: usize,
}

impl<'a> Value<'a> {
    /// The value's text: a quoted string without its quotes, anything else
    /// without surrounding spaces.
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// The byte range of [`Value::as_str`] in the attribute list.
    pub fn span(&self) -> Range<usize> {
        self.start..self.start + self.text.len()
    }

    /// The contents of a quoted string; `None` for an unquoted value.
    pub fn quoted(&self) -> Option<&'a str> {
        self.quoted.then_some(self.text)
    }

    /// An enumerated string (unquoted): `YES`, `AES-128`, `VOD`.
    pub fn enumerated(&self) -> Option<&'a str> {
        (!self.quoted && !self.text.is_empty()).then_some(self.text)
    }

    /// A decimal integer (`0`–`18446744073709551615`, digits only).
    pub fn decimal_integer(&self) -> Option<u64> {
        let digits = self.enumerated()?;
        (digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse().ok())
            .flatten()
    }

    /// A hexadecimal sequence (`0x` or `0X` and hex digits): the digits.
    pub fn hexadecimal(&self) -> Option<&'a str> {
        let text = self.enumerated()?;
        let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"))?;
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit())).then_some(digits)
    }

    /// A finite decimal float, signed or not (`6.006`, `-1.5`, `4`).
    pub fn decimal_float(&self) -> Option<f64> {
        let text = self.enumerated()?;
        let unsigned = text.strip_prefix('-').unwrap_or(text);
        let shaped = !unsigned.is_empty()
            && unsigned.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && unsigned.bytes().filter(|&b| b == b'.').count() <= 1
            && unsigned.bytes().any(|b| b.is_ascii_digit());
        shaped
            .then(|| text.parse::<f64>().ok())
            .flatten()
            .filter(|value| value.is_finite())
    }

    /// A decimal resolution `WIDTHxHEIGHT`.
    pub fn resolution(&self) -> Option<(u32, u32)> {
        let (width, height) = self.enumerated()?.split_once(['x', 'X'])?;
        let number = |text: &str| {
            (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse().ok())
                .flatten()
        };
        Some((number(width)?, number(height)?))
    }
}

/// Iterator over the attributes of an [`AttributeList`].
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    list: &'a str,
    at: usize,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let list = self.list;
        let bytes = list.as_bytes();
        loop {
            while self.at < bytes.len() && matches!(bytes[self.at], b',' | b' ' | b'\t') {
                self.at += 1;
            }
            if self.at >= bytes.len() {
                return None;
            }
            let start = self.at;
            let Some(stop) = list[start..].find(['=', ',', '"']).map(|i| start + i) else {
                self.at = bytes.len();
                return None;
            };
            if bytes[stop] != b'=' {
                // No `=` before a comma or quote: not an attribute.
                self.at = stop;
                self.skip_to_comma()?;
                continue;
            }
            let name = list[start..stop].trim_matches([' ', '\t']);
            let mut value_start = stop + 1;
            while value_start < bytes.len() && matches!(bytes[value_start], b' ' | b'\t') {
                value_start += 1;
            }
            let value = if bytes.get(value_start) == Some(&b'"') {
                let content = value_start + 1;
                let Some(len) = list[content..].find('"') else {
                    self.at = bytes.len();
                    return None;
                };
                self.at = content + len + 1;
                self.skip_to_comma();
                Value {
                    text: &list[content..content + len],
                    quoted: true,
                    start: content,
                }
            } else {
                let end = list[value_start..]
                    .find(',')
                    .map_or(bytes.len(), |i| value_start + i);
                self.at = end;
                let raw = &list[value_start..end];
                let text = raw.trim_end_matches([' ', '\t']);
                Value {
                    text,
                    quoted: false,
                    start: value_start,
                }
            };
            if !name.is_empty() {
                return Some(Attribute { name, value });
            }
        }
    }
}

impl Attributes<'_> {
    /// Moves to the next comma outside quotes (or the end). `None` when the
    /// list ends first.
    fn skip_to_comma(&mut self) -> Option<()> {
        let bytes = self.list.as_bytes();
        let mut in_quotes = false;
        while self.at < bytes.len() {
            match bytes[self.at] {
                b'"' => in_quotes = !in_quotes,
                b',' if !in_quotes => return Some(()),
                _ => {}
            }
            self.at += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs(list: &str) -> Vec<(&str, &str)> {
        AttributeList(list)
            .iter()
            .map(|attribute| (attribute.name, attribute.value.as_str()))
            .collect()
    }

    #[test]
    fn quoted_strings_keep_commas_and_lose_their_quotes() {
        assert_eq!(
            pairs(r#"BANDWIDTH=1280000,CODECS="avc1.4d401f,mp4a.40.2",RESOLUTION=1280x720"#),
            [
                ("BANDWIDTH", "1280000"),
                ("CODECS", "avc1.4d401f,mp4a.40.2"),
                ("RESOLUTION", "1280x720")
            ]
        );
    }

    #[test]
    fn hls_has_no_escapes_so_a_backslash_does_not_protect_a_quote() {
        assert_eq!(
            pairs(r#"NAME="x,URI=\"fake.m3u8",LANGUAGE="en""#),
            [("NAME", r"x,URI=\")],
            "the bytes after the closing quote run to the next comma outside quotes, which never comes"
        );
        assert_eq!(pairs(r#"NAME="a\",B=1"#), [("NAME", r"a\"), ("B", "1")]);
    }

    #[test]
    fn spaces_around_names_and_before_quotes_are_tolerated() {
        assert_eq!(
            pairs(r#" TYPE=AUDIO , URI = "fr.m3u8",DEFAULT=YES "#),
            [("TYPE", "AUDIO"), ("URI", "fr.m3u8"), ("DEFAULT", "YES")]
        );
    }

    #[test]
    fn duplicates_are_all_listed_and_get_answers_the_last() {
        let list = AttributeList("URI=\"a.mp4\",BANDWIDTH=1,URI=\"b.mp4\"");
        assert_eq!(
            pairs(list.0),
            [("URI", "a.mp4"), ("BANDWIDTH", "1"), ("URI", "b.mp4")]
        );
        assert_eq!(list.get("URI").map(|v| v.as_str()), Some("b.mp4"));
        assert_eq!(list.get("MISSING"), None);
    }

    #[test]
    fn garbage_is_skipped_and_an_unterminated_string_ends_the_list() {
        assert_eq!(pairs("GARBAGE,A=1,,=2,B"), [("A", "1")]);
        assert_eq!(pairs(r#"A=1,NAME="open,B=2"#), [("A", "1")]);
        assert_eq!(pairs(r#"A="x"junk,B=2"#), [("A", "x"), ("B", "2")]);
        assert_eq!(pairs(""), []);
        assert_eq!(pairs(",,, "), []);
    }

    #[test]
    fn spans_point_at_the_value_bytes() {
        let list = r#"TYPE=AUDIO,URI="en.m3u8",X=5 "#;
        for attribute in AttributeList(list) {
            assert_eq!(&list[attribute.value.span()], attribute.value.as_str());
        }
        let uri = AttributeList(list).get("URI").expect("URI");
        assert_eq!(uri.span(), 16..23);
    }

    #[test]
    fn typed_readers_accept_only_their_shape() {
        fn value(text: &str) -> Value<'_> {
            AttributeList(text).get("V").expect("V")
        }
        assert_eq!(value("V=800000").decimal_integer(), Some(800_000));
        assert_eq!(value("V=12x").decimal_integer(), None);
        assert_eq!(
            value("V=\"5\"").decimal_integer(),
            None,
            "a quoted string is no integer"
        );
        assert_eq!(value("V=99999999999999999999999").decimal_integer(), None);
        assert_eq!(value("V=0x0123abCD").hexadecimal(), Some("0123abCD"));
        assert_eq!(value("V=0x").hexadecimal(), None);
        assert_eq!(value("V=0xZZ").hexadecimal(), None);
        assert_eq!(value("V=6.006").decimal_float(), Some(6.006));
        assert_eq!(value("V=-1.5").decimal_float(), Some(-1.5));
        assert_eq!(value("V=4").decimal_float(), Some(4.0));
        assert_eq!(value("V=inf").decimal_float(), None);
        assert_eq!(value("V=1e400").decimal_float(), None);
        assert_eq!(value("V=.").decimal_float(), None);
        assert_eq!(value("V=1280x720").resolution(), Some((1280, 720)));
        assert_eq!(value("V=1280x").resolution(), None);
        assert_eq!(value("V=AES-128").enumerated(), Some("AES-128"));
        assert_eq!(value("V=\"AES-128\"").enumerated(), None);
        assert_eq!(value("V=\"a,b\"").quoted(), Some("a,b"));
        assert_eq!(value("V=YES").quoted(), None);
    }

    proptest! {
        #[test]
        fn any_text_parses_without_panicking_and_spans_hold(list in any::<String>()) {
            for attribute in AttributeList(&list) {
                prop_assert_eq!(&list[attribute.value.span()], attribute.value.as_str());
                prop_assert!(!attribute.name.is_empty());
                prop_assert!(!attribute.name.contains([',', '"', '=']));
            }
        }

        #[test]
        fn written_lists_read_back(
            entries in prop::collection::vec(("[A-Z][A-Z0-9-]{0,8}", "[ -!#-~]{0,12}", any::<bool>()), 0..8)
        ) {
            let list = entries
                .iter()
                .map(|(name, value, quoted)| {
                    if *quoted {
                        format!("{name}=\"{value}\"")
                    } else {
                        format!("{name}={}", value.replace(',', ";"))
                    }
                })
                .collect::<Vec<_>>()
                .join(",");
            let read: Vec<(String, String)> = AttributeList(&list)
                .iter()
                .map(|a| (a.name.to_owned(), a.value.as_str().to_owned()))
                .collect();
            let expected: Vec<(String, String)> = entries
                .iter()
                .map(|(name, value, quoted)| {
                    let value = if *quoted {
                        value.clone()
                    } else {
                        value.replace(',', ";").trim_matches([' ', '\t']).to_owned()
                    };
                    (name.clone(), value)
                })
                .collect();
            prop_assert_eq!(read, expected);
        }
    }
}
