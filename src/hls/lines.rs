//! Lines of playlist text and what each one is (RFC 8216 §4.1: a line is a
//! URI, a tag starting `#EXT`, a comment, or blank). Every reader of HLS
//! text here walks lines through this iterator, so "what is a line" and
//! "what is a tag" are decided once: lines end at `\n` with an optional
//! `\r` before it; surrounding ASCII whitespace is not part of a URI.
//!
//! Byte offsets are kept so the byte-preserving rewriter can copy every
//! byte it does not change.

/// The lines of a text as `(start, content, end)`: `content` without its
/// ending (`"\r\n"`, `"\n"`, or none on a last line without a newline),
/// `start`/`end` the byte offsets of the line with its ending. A UTF-8 BOM
/// at the start of the text is no part of the first line.
#[derive(Debug, Clone)]
pub struct Lines<'t> {
    text: &'t str,
    at: usize,
}

impl<'t> Lines<'t> {
    /// The lines of `text`.
    pub fn new(text: &'t str) -> Self {
        let at = if text.starts_with(super::BOM) {
            super::BOM.len()
        } else {
            0
        };
        Self { text, at }
    }
}

impl<'t> Iterator for Lines<'t> {
    type Item = (usize, &'t str, usize);

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        if start >= bytes.len() {
            return None;
        }
        let (content_end, end) = match find_newline(&bytes[start..]) {
            Some(i) => {
                let newline = start + i;
                let crlf = newline > start && bytes[newline - 1] == b'\r';
                (if crlf { newline - 1 } else { newline }, newline + 1)
            }
            None => (bytes.len(), bytes.len()),
        };
        self.at = end;
        Some((start, &self.text[start..content_end], end))
    }
}

/// The index of the first `\n` in `bytes`. Lines are short, so this reads
/// eight bytes per step (SWAR) instead of calling `memchr` per line.
pub(crate) fn find_newline(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const NEWLINES: u64 = ONES * b'\n' as u64;
    let mut at = 0;
    while let Some(word) = bytes[at..].first_chunk::<8>() {
        let word = u64::from_le_bytes(*word) ^ NEWLINES;
        // The lowest byte that was `\n` is now zero, and its high bit is
        // the lowest one set here (bits above it may be false positives).
        let zeros = word.wrapping_sub(ONES) & !word & HIGHS;
        if zeros != 0 {
            return Some(at + zeros.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    bytes[at..].iter().position(|&b| b == b'\n').map(|i| at + i)
}

/// What one line (without its ending) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// A URI line: `uri` without surrounding whitespace, starting at byte
    /// `start` of the line.
    Uri {
        /// Offset of the URI in the line (after leading whitespace).
        start: usize,
        /// The URI as written.
        uri: &'a str,
    },
    /// A `#EXT...` tag: its name without `#`, and everything after the first
    /// `:` (a suffix of the line; empty when there is no `:`).
    Tag {
        /// `EXTINF`, `EXT-X-KEY`, ...
        name: &'a str,
        /// The tag's value or attribute list.
        value: &'a str,
    },
    /// Blank line or comment.
    Other,
}

impl<'a> Line<'a> {
    /// Classifies one line's content.
    pub fn parse(content: &'a str) -> Self {
        let body = content.trim_ascii_start();
        if body.is_empty() {
            return Self::Other;
        }
        match body.strip_prefix('#') {
            Some(tag) if tag.starts_with("EXT") => match tag.bytes().position(|b| b == b':') {
                Some(colon) => Self::Tag {
                    name: &tag[..colon],
                    value: &tag[colon + 1..],
                },
                None => Self::Tag {
                    name: tag.trim_ascii_end(),
                    value: "",
                },
            },
            Some(_) => Self::Other,
            None => Self::Uri {
                start: content.len() - body.len(),
                uri: body.trim_ascii_end(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lines_keep_offsets_and_drop_endings() {
        let text = "#EXTM3U\r\nseg.ts\n\nlast";
        let lines: Vec<_> = Lines::new(text).collect();
        assert_eq!(
            lines,
            [
                (0, "#EXTM3U", 9),
                (9, "seg.ts", 16),
                (16, "", 17),
                (17, "last", 21)
            ]
        );
    }

    #[test]
    fn a_bom_is_not_part_of_the_first_line() {
        let lines: Vec<_> = Lines::new("\u{feff}#EXTM3U\na.ts").collect();
        assert_eq!(lines, [(3, "#EXTM3U", 11), (11, "a.ts", 15)]);
    }

    #[test]
    fn lines_are_uris_tags_or_other() {
        assert_eq!(
            Line::parse("  seg.ts \t"),
            Line::Uri {
                start: 2,
                uri: "seg.ts"
            }
        );
        assert_eq!(
            Line::parse("#EXT-X-KEY:METHOD=NONE"),
            Line::Tag {
                name: "EXT-X-KEY",
                value: "METHOD=NONE"
            }
        );
        assert_eq!(
            Line::parse("#EXT-X-ENDLIST "),
            Line::Tag {
                name: "EXT-X-ENDLIST",
                value: ""
            }
        );
        assert_eq!(Line::parse("# comment"), Line::Other);
        assert_eq!(Line::parse("#EX"), Line::Other);
        assert_eq!(Line::parse(" \t"), Line::Other);
    }

    proptest! {
        #[test]
        fn find_newline_finds_the_first_newline(text in prop::collection::vec(prop::sample::select(vec![b'\n', b'\r', b'a', 0x8a, 0x0b, 0x09]), 0..40)) {
            prop_assert_eq!(find_newline(&text), text.iter().position(|&b| b == b'\n'));
        }
    }
}
