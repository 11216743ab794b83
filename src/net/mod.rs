//! The one shared HTTP client, the private-address guard every outgoing
//! request goes through, and the one guarded fetch ([`Http::fetch`]) that health
//! checks, source documents, the proxy and the calendar use.

mod fetch;

pub(crate) use fetch::describe;
pub use fetch::{Fetch, FetchError, FetchFailure, Fetched, Head, Http};

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;
use url::{Host, Url};

use crate::config::NetworkConfig;

/// Seconds a TCP (and TLS) connect may take before the attempt fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle pooled connections kept per host; enough for a run's bursts.
const POOL_IDLE_PER_HOST: usize = 32;

/// A request refused because its target is not a public address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("blocked address {0}: private, loopback or reserved targets are not allowed")]
pub struct BlockedAddress(pub String);

/// A host name that did not resolve.
#[derive(Debug, thiserror::Error)]
#[error("DNS lookup of {host} failed: {source}")]
pub struct DnsError {
    host: String,
    #[source]
    source: std::io::Error,
}

/// Decides which addresses outgoing requests may reach.
#[derive(Debug, Clone)]
pub struct AddressGuard {
    allow_private: bool,
    exempt: Arc<[IpNet]>,
}

impl AddressGuard {
    /// A guard that blocks non-public addresses unless `allow_private`.
    pub fn new(allow_private: bool) -> Self {
        Self {
            allow_private,
            exempt: Arc::new([]),
        }
    }

    /// The guard `[network]` describes: private addresses refused unless
    /// allowed, with `allow_addresses` exempt.
    pub fn from_config(network: &NetworkConfig) -> Self {
        Self {
            allow_private: network.allow_private_networks,
            exempt: network.allow_addresses.iter().copied().collect(),
        }
    }

    /// Whether a connection to `ip` is allowed.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow_private || is_public(ip) || self.exempt.iter().any(|net| net.contains(&ip))
    }

    /// Checks what can be checked before a request is sent: the URL's shape
    /// ([`check_url_shape`]) and IP-literal hosts (which skip DNS
    /// resolution).
    pub fn check_url(&self, url: &Url) -> Result<(), UrlRefused> {
        check_url_shape(url)?;
        let ip = match url.host() {
            None => return Err(UrlRefused::NoHost),
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(Host::Domain(_)) => return Ok(()),
        };
        if self.allows(ip) {
            Ok(())
        } else {
            Err(UrlRefused::Blocked(BlockedAddress(ip.to_string())))
        }
    }
}

/// The rule for any URL this service fetches, whatever its address: http or
/// https, no user name or password, a host. The proxy applies it to the URLs
/// its tokens carry, the guard to every request.
pub fn check_url_shape(url: &Url) -> Result<(), UrlRefused> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlRefused::Scheme(url.scheme().to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefused::Userinfo);
    }
    if url.host().is_none() {
        return Err(UrlRefused::NoHost);
    }
    Ok(())
}

/// Why a URL is refused before any request is made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    /// Only http and https are fetched.
    #[error("URL scheme {0:?} is not http or https")]
    Scheme(String),
    /// `user:pass@host` URLs are refused.
    #[error("URL must not contain a user name or password")]
    Userinfo,
    /// A URL without a host.
    #[error("URL has no host")]
    NoHost,
    /// The host is a forbidden IP literal.
    #[error(transparent)]
    Blocked(BlockedAddress),
}

/// Whether `ip` is a globally routable unicast address: not loopback,
/// private, link-local, CGNAT, unspecified, multicast, broadcast, reserved,
/// documentation, ULA, nor an IPv6 form that embeds such an IPv4 address.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let forbidden = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0                                   // "this network"
        || (a == 100 && (64..128).contains(&b))     // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0)           // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b))      // benchmarking 198.18/15
        || a >= 240; // reserved 240/4
    !forbidden
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_ipv4(ip) {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    let forbidden = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00         // ULA fc00::/7
        || (segments[0] & 0xffc0) == 0xfe80         // link-local fe80::/10
        || (segments[0] & 0xffc0) == 0xfec0         // site-local (deprecated)
        || (segments[0] == 0x2001 && segments[1] == 0)      // Teredo 2001::/32
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || (segments[0] == 0x0100 && segments[1..4] == [0, 0, 0]); // discard-only
    !forbidden
}

/// The IPv4 address inside IPv4-mapped, IPv4-compatible, NAT64 and 6to4
/// IPv6 addresses, which reach that IPv4 host.
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let is_mapped = s[..5] == [0, 0, 0, 0, 0] && s[5] == 0xffff;
    let is_compatible = s[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified();
    let is_nat64 = s[0] == 0x0064 && s[1] == 0xff9b;
    if is_mapped || is_compatible || is_nat64 {
        return Some(tail);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

/// Resolves names with the system resolver and drops forbidden addresses,
/// so the guard applies to the address actually connected (no DNS rebinding
/// between check and connect).
#[derive(Debug, Clone)]
struct GuardedResolver {
    guard: AddressGuard,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|source| DnsError {
                    host: host.clone(),
                    source,
                })?
                .collect();
            let allowed: Vec<SocketAddr> = addrs.into_iter().filter(|addr| guard.allows(addr.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(BlockedAddress(host)) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Builds the shared client: guarded DNS, guarded redirects, no environment
/// proxy, no automatic Referer (it would replace an extractor's), no
/// automatic decompression (the relay forwards bytes as they are).
fn build_client(
    network: &NetworkConfig,
    guard: AddressGuard,
    user_agent: &str,
) -> reqwest::Result<reqwest::Client> {
    let redirect_guard = guard.clone();
    let max_redirects = network.max_redirects as usize;
    let redirect_policy = redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > max_redirects {
            return attempt.error(TooManyRedirects(max_redirects));
        }
        match redirect_guard.check_url(attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(refused) => attempt.error(refused),
        }
    });
    reqwest::Client::builder()
        .user_agent(user_agent)
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_max_idle_per_host(POOL_IDLE_PER_HOST)
        .tcp_nodelay(true)
        .redirect(redirect_policy)
        .referer(false)
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver { guard }))
        .build()
}

/// More redirects than `network.max_redirects`.
#[derive(Debug, thiserror::Error)]
#[error("more than {0} redirects")]
pub(crate) struct TooManyRedirects(pub usize);

/// Turns configured extractor headers into a header map (validated at load).
pub fn header_map(headers: &std::collections::BTreeMap<String, String>) -> reqwest::header::HeaderMap {
    headers
        .iter()
        .filter_map(|(name, value)| {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).ok()?;
            let value = reqwest::header::HeaderValue::from_str(value).ok()?;
            Some((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test addresses parse")
    }

    #[test]
    fn public_addresses_pass() {
        for text in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "151.101.1.69"] {
            assert!(is_public(ip(text)), "{text} should be public");
        }
    }

    #[test]
    fn every_non_public_range_is_refused() {
        let refused = [
            "127.0.0.1",
            "127.5.5.5",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "192.0.2.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.2",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "2001:0:4136:e378::1",
            "2001:db8::1",
        ];
        for text in refused {
            assert!(!is_public(ip(text)), "{text} should be refused");
        }
    }

    #[test]
    fn guard_checks_literal_hosts_scheme_and_userinfo() {
        let guard = AddressGuard::new(false);
        let check = |u: &str| guard.check_url(&Url::parse(u).expect("test URL parses"));
        assert!(check("https://example.com/a.m3u8").is_ok());
        assert!(matches!(check("http://127.0.0.1/x"), Err(UrlRefused::Blocked(_))));
        assert!(matches!(
            check("http://[::ffff:127.0.0.1]/x"),
            Err(UrlRefused::Blocked(_))
        ));
        // The URL parser normalises decimal and octal forms to dotted quads.
        assert!(matches!(
            check("http://2130706433/x"),
            Err(UrlRefused::Blocked(_))
        ));
        assert!(matches!(
            check("http://0177.0.0.1/x"),
            Err(UrlRefused::Blocked(_))
        ));
        assert!(matches!(
            check("http://user:pw@example.com/"),
            Err(UrlRefused::Userinfo)
        ));
        assert!(matches!(check("file:///etc/passwd"), Err(UrlRefused::Scheme(_))));
        assert!(
            AddressGuard::new(true)
                .check_url(&Url::parse("http://127.0.0.1/").expect("parses"))
                .is_ok()
        );
    }
}
