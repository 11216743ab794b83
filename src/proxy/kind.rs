//! Which endpoint a proxy URL targets. Its own module because the codec
//! ([`super::token`]) and the memory of signed paths ([`super::path_cache`])
//! both need it, and neither should depend on the other for it.

/// Which endpoint a proxy URL targets; part of what is signed, so a relay
/// URL cannot be replayed as a playlist URL or the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `/proxy`: a playlist, fetched whole and rewritten.
    Proxy,
    /// `/relay`: segments, keys, init sections and other bytes, streamed.
    Relay,
}

impl Kind {
    /// The path prefix and signed name: `"proxy"` or `"relay"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Proxy => "proxy",
            Kind::Relay => "relay",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_the_path_prefixes() {
        assert_eq!(Kind::Proxy.as_str(), "proxy");
        assert_eq!(Kind::Relay.as_str(), "relay");
    }
}
