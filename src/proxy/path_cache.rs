//! A bounded memory of signed proxy paths, so a playlist reload signs only
//! the URIs it has not signed before.
//!
//! Why: a player reloads a live playlist every target duration, and every
//! viewer of a stream reloads the same one; successive reloads repeat nearly
//! every URI (a sliding window gains one segment and loses one). Writing a
//! signed path costs an HMAC-SHA256 (three SHA-256 blocks) plus two base64
//! encodings, about 320 ns; finding the path written last time costs a hash
//! of the URL, one uncontended lock and a copy, about 70 ns. The path is a
//! pure function of `(kind, url, src)` under one key, so a remembered path
//! is exactly the one that would be computed.
//!
//! Bounded: entries live in shards of two generations. New and reused
//! entries go to the current generation; when it is full (of entries, or of
//! [`BYTES_PER_ENTRY`] bytes per entry on average), it becomes the previous
//! one and the old previous generation is dropped whole. An entry used
//! again while in the previous generation is copied to the current one, so
//! a reloaded playlist of up to about half the capacity stays cached (shards
//! fill unevenly, hence "about") while at most the capacity is ever held.
//! A generation keeps its entries' text in one buffer, so remembering a
//! path allocates nothing and forgetting a generation frees two blocks.

use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, PoisonError};

use hashbrown::{DefaultHashBuilder, HashTable};

use super::kind::Kind;

/// Most shards a cache is split into, so concurrent rewrites (viewers of
/// different streams) rarely wait on one another.
const MAX_SHARDS: usize = 16;

/// Entries per shard below which a cache is not split further: fewer would
/// make shards fill unevenly enough that a playlist of half the capacity no
/// longer fits.
const MIN_ENTRIES_PER_SHARD: usize = 4096;

/// Average bytes of URL, site key and path an entry may take before its
/// generation counts as full: a typical segment URL and its path take about
/// 250; signed CDN URLs several times that. Bounds the memory whatever the
/// URLs: at most `entries × BYTES_PER_ENTRY` bytes of text (32 MiB for the
/// default 32,768 entries).
pub const BYTES_PER_ENTRY: usize = 1024;

/// Remembered signed paths (see the module docs).
pub(crate) struct PathCache {
    shards: Box<[Mutex<Shard>]>,
    /// Entries per generation of each shard.
    per_generation: usize,
    hasher: DefaultHashBuilder,
}

struct Shard {
    current: Generation,
    previous: Generation,
    hits: u64,
    misses: u64,
}

/// One generation of a shard: a table of slots into one text buffer.
struct Generation {
    slots: HashTable<Slot>,
    /// URL, site key and path of every slot, back to back.
    text: String,
}

#[derive(Clone, Copy)]
struct Slot {
    hash: u64,
    kind: Kind,
    has_src: bool,
    start: usize,
    url_len: usize,
    src_len: usize,
    path_len: usize,
}

impl Generation {
    fn new(entries: usize) -> Self {
        Self {
            slots: HashTable::with_capacity(entries),
            text: String::new(),
        }
    }

    /// The remembered path of `(kind, url, src)`.
    fn find(&self, hash: u64, kind: Kind, url: &str, src: Option<&str>) -> Option<&str> {
        let src_text = src.unwrap_or_default();
        let slot = self.slots.find(hash, |slot| {
            let text = &self.text[slot.start..];
            slot.hash == hash
                && slot.kind == kind
                && slot.has_src == src.is_some()
                && slot.url_len == url.len()
                && slot.src_len == src_text.len()
                && text[..slot.url_len] == *url
                && text[slot.url_len..slot.url_len + slot.src_len] == *src_text
        })?;
        let path_start = slot.start + slot.url_len + slot.src_len;
        Some(&self.text[path_start..path_start + slot.path_len])
    }

    /// Whether remembering `bytes` more would overflow the generation.
    fn is_full(&self, per_generation: usize, bytes: usize) -> bool {
        self.slots.len() >= per_generation || self.text.len() + bytes > per_generation * BYTES_PER_ENTRY
    }

    fn insert(&mut self, hash: u64, kind: Kind, url: &str, src: Option<&str>, path: &str) {
        let src_text = src.unwrap_or_default();
        let slot = Slot {
            hash,
            kind,
            has_src: src.is_some(),
            start: self.text.len(),
            url_len: url.len(),
            src_len: src_text.len(),
            path_len: path.len(),
        };
        self.text.push_str(url);
        self.text.push_str(src_text);
        self.text.push_str(path);
        self.slots.insert_unique(hash, slot, |slot| slot.hash);
    }
}

/// What a lookup that found nothing hands to [`PathCache::insert`], so the
/// key is hashed once per signed path.
pub(crate) struct Miss {
    hash: u64,
}

/// How a signer's memory of signed paths is doing (for `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathCacheStats {
    /// Paths found remembered.
    pub hits: u64,
    /// Paths signed because they were not.
    pub misses: u64,
    /// Entries held now, both generations (an entry reused from the
    /// previous generation counts twice until that generation is dropped).
    pub entries: u64,
    /// Bytes of URLs, site keys and paths held now.
    pub bytes: u64,
}

impl PathCache {
    /// A cache holding at most `entries` paths; fewer than two (one per
    /// generation) remember nothing.
    pub(crate) fn new(entries: usize) -> Self {
        let shards = (entries / MIN_ENTRIES_PER_SHARD).clamp(1, MAX_SHARDS);
        let per_generation = entries / (2 * shards);
        let shards = if per_generation == 0 { 0 } else { shards };
        Self {
            shards: (0..shards)
                .map(|_| {
                    Mutex::new(Shard {
                        current: Generation::new(0),
                        previous: Generation::new(0),
                        hits: 0,
                        misses: 0,
                    })
                })
                .collect(),
            per_generation,
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// Appends the remembered path for `(kind, url, src)` to `out`; on a
    /// miss `out` is unchanged and the [`Miss`] goes to [`PathCache::insert`]
    /// with the signed path.
    pub(crate) fn append(
        &self,
        out: &mut String,
        kind: Kind,
        url: &str,
        src: Option<&str>,
    ) -> Result<(), Miss> {
        if self.shards.is_empty() {
            return Err(Miss { hash: 0 });
        }
        let hash = self.hasher.hash_one((kind, url, src));
        let mut shard = self.shard(hash);
        // The copy is made under the lock: `out` is sized for the whole
        // playlist, so it does not reallocate here.
        if let Some(path) = shard.current.find(hash, kind, url, src) {
            out.push_str(path);
            shard.hits += 1;
            return Ok(());
        }
        let Shard {
            current, previous, ..
        } = &mut *shard;
        let Some(path) = previous.find(hash, kind, url, src) else {
            shard.misses += 1;
            return Err(Miss { hash });
        };
        out.push_str(path);
        // Still in use: copied to the current generation, so it outlives
        // the previous one (whose copy is dropped with it).
        let retired = if current.is_full(self.per_generation, url.len() + path.len()) {
            let path = path.to_owned();
            let retired = shard.retire_current(self.per_generation);
            shard.current.insert(hash, kind, url, src, &path);
            Some(retired)
        } else {
            current.insert(hash, kind, url, src, path);
            None
        };
        shard.hits += 1;
        drop(shard);
        drop(retired);
        Ok(())
    }

    /// Remembers `path` as the signed path of `(kind, url, src)`, the key
    /// of the lookup that returned `miss`.
    pub(crate) fn insert(&self, miss: Miss, kind: Kind, url: &str, src: Option<&str>, path: &str) {
        if self.shards.is_empty() {
            return;
        }
        debug_assert_eq!(
            miss.hash,
            self.hasher.hash_one((kind, url, src)),
            "a miss of another key"
        );
        let bytes = url.len() + src.map_or(0, str::len) + path.len();
        let mut shard = self.shard(miss.hash);
        // Two rewrites that missed the same URL at once both insert it;
        // the second copy only takes room until its generation is dropped.
        let retired = shard
            .current
            .is_full(self.per_generation, bytes)
            .then(|| shard.retire_current(self.per_generation));
        shard.current.insert(miss.hash, kind, url, src, path);
        // The retired generation is freed once the lock is released.
        drop(shard);
        drop(retired);
    }

    /// Hits, misses and entries over every shard.
    pub(crate) fn stats(&self) -> PathCacheStats {
        let mut stats = PathCacheStats::default();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            stats.hits += shard.hits;
            stats.misses += shard.misses;
            stats.entries += (shard.current.slots.len() + shard.previous.slots.len()) as u64;
            stats.bytes += (shard.current.text.len() + shard.previous.text.len()) as u64;
        }
        stats
    }

    fn shard(&self, hash: u64) -> MutexGuard<'_, Shard> {
        // The table uses the low bits (bucket) and the top seven (tag);
        // the shard takes bits from the middle so neither is skewed.
        let index = (hash >> 32) as usize % self.shards.len();
        // A panic while holding the lock cannot leave a slot pointing at
        // text not written (text is written before its slot is inserted),
        // so a poisoned shard is still consistent.
        self.shards[index].lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Shard {
    /// Makes the current generation the previous one and starts a new one;
    /// returns the generation that drops out, for the caller to free after
    /// releasing the lock.
    fn retire_current(&mut self, per_generation: usize) -> Generation {
        let full = std::mem::replace(&mut self.current, Generation::new(per_generation));
        // The new generation's text will be about as long as the last one's.
        self.current.text.reserve(full.text.len());
        std::mem::replace(&mut self.previous, full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(cache: &PathCache, kind: Kind, url: &str, src: Option<&str>) -> Option<String> {
        let mut out = String::from("prefix:");
        let found = cache.append(&mut out, kind, url, src).is_ok();
        found.then(|| out["prefix:".len()..].to_owned())
    }

    /// What a signer does: look up, and remember on a miss.
    fn remember(cache: &PathCache, kind: Kind, url: &str, src: Option<&str>, path: &str) {
        if let Err(miss) = cache.append(&mut String::new(), kind, url, src) {
            cache.insert(miss, kind, url, src, path);
        }
    }

    #[test]
    fn remembered_path_is_appended_for_the_same_kind_url_and_src_only() {
        let cache = PathCache::new(4096);
        remember(
            &cache,
            Kind::Relay,
            "https://a.test/1.ts",
            Some("f1tv"),
            "/relay/x/1.ts",
        );
        assert_eq!(
            cached(&cache, Kind::Relay, "https://a.test/1.ts", Some("f1tv")).as_deref(),
            Some("/relay/x/1.ts")
        );
        assert_eq!(
            cached(&cache, Kind::Proxy, "https://a.test/1.ts", Some("f1tv")),
            None
        );
        assert_eq!(cached(&cache, Kind::Relay, "https://a.test/1.ts", None), None);
        assert_eq!(
            cached(&cache, Kind::Relay, "https://a.test/1.ts", Some("f1")),
            None
        );
        // The URL/src boundary is part of the key: "…/1.tsf" + "1tv" is
        // not "…/1.ts" + "f1tv".
        assert_eq!(
            cached(&cache, Kind::Relay, "https://a.test/1.tsf", Some("1tv")),
            None
        );
        assert_eq!(cached(&cache, Kind::Relay, "https://a.test/1.ts", Some("")), None);
    }

    #[test]
    fn a_miss_leaves_the_output_untouched() {
        let cache = PathCache::new(4096);
        let mut out = String::from("kept");
        assert!(
            cache
                .append(&mut out, Kind::Relay, "https://a.test/1.ts", None)
                .is_err()
        );
        assert_eq!(out, "kept");
    }

    #[test]
    fn never_holds_more_than_its_capacity_while_inserting_and_reusing() {
        for capacity in [0, 1, 2, 3, 10, 1000, 4096, 8192, 70_000] {
            let cache = PathCache::new(capacity);
            for i in 0..(3 * capacity + 100) {
                let url = format!("https://a.test/{i}.ts");
                remember(&cache, Kind::Relay, &url, None, &url);
                // Reuse older entries too, which moves them back to the
                // current generation.
                for back in [i / 2, i / 3] {
                    let url = format!("https://a.test/{back}.ts");
                    let _ = cached(&cache, Kind::Relay, &url, None);
                }
                let held = cache.stats().entries;
                assert!(held <= capacity as u64, "capacity {capacity}: {held} held");
            }
        }
    }

    #[test]
    fn fewer_than_two_entries_remember_nothing() {
        for capacity in [0, 1] {
            let cache = PathCache::new(capacity);
            remember(&cache, Kind::Relay, "https://a.test/1.ts", None, "/relay/x/1.ts");
            assert_eq!(cached(&cache, Kind::Relay, "https://a.test/1.ts", None), None);
        }
    }

    #[test]
    fn sliding_live_window_of_under_half_the_capacity_stays_cached() {
        // A live playlist of 3,000 segments reloaded 200 times, gaining and
        // losing 10 segments per reload: only the new ones are ever missed,
        // for the default capacity and one just large enough to be sharded.
        for capacity in [8192, 32_768] {
            let cache = PathCache::new(capacity);
            let url = |sequence: usize| format!("https://a.test/live/{sequence}.ts");
            let (window, step) = (3000, 10);
            let mut misses = 0;
            for reload in 0..200 {
                let first = reload * step;
                for sequence in first..first + window {
                    let url = url(sequence);
                    let mut out = String::new();
                    match cache.append(&mut out, Kind::Relay, &url, None) {
                        Ok(()) => assert_eq!(out, url),
                        Err(miss) => {
                            misses += 1;
                            cache.insert(miss, Kind::Relay, &url, None, &url);
                        }
                    }
                }
            }
            assert_eq!(misses, window + 199 * step, "capacity {capacity}");
            let stats = cache.stats();
            assert_eq!(stats.misses, misses as u64);
            assert_eq!(stats.hits, (200 * window - misses) as u64);
            assert!(stats.entries <= capacity as u64);
        }
    }

    #[test]
    fn a_url_two_signers_missed_at_once_reads_back_its_path() {
        let cache = PathCache::new(4096);
        let url = "https://a.test/1.ts";
        let misses = [(); 2].map(|()| {
            cache
                .append(&mut String::new(), Kind::Relay, url, None)
                .expect_err("not remembered yet")
        });
        for miss in misses {
            cache.insert(miss, Kind::Relay, url, None, "/relay/x/1.ts");
        }
        assert_eq!(
            cached(&cache, Kind::Relay, url, None).as_deref(),
            Some("/relay/x/1.ts")
        );
        assert_eq!(cache.stats().entries, 2);
    }

    #[test]
    fn long_urls_are_bounded_by_bytes_as_well_as_entries() {
        let capacity = 8192;
        let cache = PathCache::new(capacity);
        let long = "x".repeat(3000);
        for i in 0..20_000 {
            let url = format!("https://a.test/{long}/{i}.ts");
            remember(&cache, Kind::Relay, &url, Some("f1tv"), &url);
            let bytes = cache.stats().bytes;
            assert!(bytes <= (capacity * BYTES_PER_ENTRY) as u64, "{bytes} bytes held");
        }
        // The newest are still remembered.
        let url = format!("https://a.test/{long}/19999.ts");
        assert_eq!(cached(&cache, Kind::Relay, &url, Some("f1tv")), Some(url));
    }

    #[test]
    fn concurrent_signers_only_ever_read_the_path_of_their_own_key() {
        let cache = PathCache::new(2048);
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let cache = &cache;
                scope.spawn(move || {
                    for i in 0..20_000usize {
                        let key = (i * 7 + thread) % 3000;
                        let url = format!("https://a.test/{key}.ts");
                        let src = (key % 2 == 0).then_some("f1tv");
                        let path = format!("/relay/{key}/{}", src.unwrap_or("-"));
                        let mut out = String::new();
                        match cache.append(&mut out, Kind::Relay, &url, src) {
                            Ok(()) => assert_eq!(out, path),
                            Err(miss) => cache.insert(miss, Kind::Relay, &url, src, &path),
                        }
                    }
                });
            }
        });
        let stats = cache.stats();
        assert_eq!(stats.hits + stats.misses, 80_000);
        assert!(stats.hits > 0 && stats.entries <= 2048, "{stats:?}");
    }
}
