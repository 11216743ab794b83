//! How many relays may stream at once: in total (`proxy.max_relays`) and
//! per client address (`proxy.max_relays_per_client`), so neither one
//! client nor a crowd can hold every upstream connection and the uplink.
//! A relay holds a [`RelayPermit`] from before its upstream request until
//! its body ends; the count per client lives only while that client has a
//! relay open, so the table is never larger than the relays in flight.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Which limit refused a relay (the `limit` label of the refusal metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayLimit {
    /// `proxy.max_relays`.
    Total,
    /// `proxy.max_relays_per_client`.
    PerClient,
}

impl RelayLimit {
    /// Every limit, for registering the metric's series.
    pub const ALL: [Self; 2] = [Self::Total, Self::PerClient];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Total => "total",
            Self::PerClient => "per_client",
        }
    }
}

/// The relay counters; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct RelayLimits {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// 0: no limit.
    max_total: usize,
    /// 0: no limit.
    max_per_client: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// One relay's place; given back when dropped.
#[derive(Debug)]
pub struct RelayPermit {
    inner: Arc<Inner>,
    client: Option<IpAddr>,
}

impl RelayLimits {
    /// Limits of `max_total` relays and `max_per_client` per client (0: none).
    pub fn new(max_total: u32, max_per_client: u32) -> Self {
        Self {
            inner: Arc::new(Inner {
                max_total: max_total as usize,
                max_per_client: max_per_client as usize,
                counts: Mutex::new(Counts::default()),
            }),
        }
    }

    /// A place for one more relay of `client` (`None`: address unknown,
    /// only the total applies), or the limit that is full.
    pub fn acquire(&self, client: Option<IpAddr>) -> Result<RelayPermit, RelayLimit> {
        let mut counts = self.inner.counts.lock().unwrap_or_else(|p| p.into_inner());
        if self.inner.max_total > 0 && counts.total >= self.inner.max_total {
            return Err(RelayLimit::Total);
        }
        if let Some(client) = client {
            let open = counts.per_client.get(&client).copied().unwrap_or(0);
            if self.inner.max_per_client > 0 && open >= self.inner.max_per_client {
                return Err(RelayLimit::PerClient);
            }
            counts.per_client.insert(client, open + 1);
        }
        counts.total += 1;
        Ok(RelayPermit {
            inner: Arc::clone(&self.inner),
            client,
        })
    }

    /// Relays holding a place now.
    pub fn in_flight(&self) -> usize {
        self.inner.counts.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

impl Drop for RelayPermit {
    fn drop(&mut self) {
        let mut counts = self.inner.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(client) = self.client
            && let Some(open) = counts.per_client.get_mut(&client)
        {
            *open -= 1;
            if *open == 0 {
                counts.per_client.remove(&client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("address"))
    }

    #[test]
    fn each_client_and_the_total_are_capped_and_places_come_back() {
        let limits = RelayLimits::new(3, 2);
        let a1 = limits.acquire(ip("203.0.113.1")).expect("a 1");
        let _a2 = limits.acquire(ip("203.0.113.1")).expect("a 2");
        assert_eq!(
            limits.acquire(ip("203.0.113.1")).expect_err("refused"),
            RelayLimit::PerClient
        );
        let _b1 = limits.acquire(ip("203.0.113.2")).expect("b 1");
        assert_eq!(
            limits.acquire(ip("203.0.113.3")).expect_err("refused"),
            RelayLimit::Total
        );
        assert_eq!(limits.acquire(None).expect_err("refused"), RelayLimit::Total);
        drop(a1);
        let _c1 = limits.acquire(ip("203.0.113.3")).expect("a place came back");
        assert_eq!(limits.in_flight(), 3);
    }

    #[test]
    fn zero_means_no_limit_and_the_table_empties() {
        let limits = RelayLimits::new(0, 0);
        let permits: Vec<_> = (0..100)
            .map(|_| limits.acquire(ip("198.51.100.7")).expect("no limit"))
            .collect();
        assert_eq!(limits.in_flight(), 100);
        drop(permits);
        assert_eq!(limits.in_flight(), 0);
        let counts = limits.inner.counts.lock().expect("lock");
        assert!(counts.per_client.is_empty(), "no entry outlives its relays");
    }
}
