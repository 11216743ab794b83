//! A bounded memory of signed proxy paths, so a playlist reload signs only
//! the URIs it has not signed before.
//!
//! Why: a player reloads a live playlist every target duration, and every
//! viewer of a stream reloads the same one; successive reloads repeat nearly
//! every URI (a sliding window gains one segment and loses one). Writing a
//! signed path costs an HMAC-SHA256 (three SHA-256 blocks) plus two base64
//! encodings, about 300 ns; finding the path written last time costs a hash
//! of the URL, one uncontended lock and a copy. The path is a pure function
//! of `(kind, url, src)` under one key, so a remembered path is exactly the
//! one that would be computed.
//!
//! Bounded: entries live in shards of two generations. New and reused
//! entries go to the current generation; when it is full, it becomes the
//! previous one and the old previous generation is dropped. An entry used
//! again while in the previous generation moves back to the current one, so
//! a reloaded playlist of up to about half the capacity stays cached (shards
//! fill unevenly, hence "about") while at most the capacity is ever held
//! (each entry holds its URL, site key and path, about 300 bytes for a
//! typical segment URL).

use std::hash::BuildHasher;
use std::sync::{Mutex, PoisonError};

use hashbrown::{DefaultHashBuilder, HashTable};

use super::token::Kind;

/// Shards of a cache large enough to be worth splitting: concurrent
/// rewrites (viewers of different streams) rarely wait on one another.
const SHARDS: usize = 16;

/// Caches smaller than this have one shard, so the capacity still holds.
const MIN_SHARDED_ENTRIES: usize = 1024;

/// Remembered signed paths (see the module docs).
pub(crate) struct PathCache {
    shards: Box<[Mutex<Shard>]>,
    /// Entries per generation of each shard.
    per_generation: usize,
    hasher: DefaultHashBuilder,
}

#[derive(Default)]
struct Shard {
    current: HashTable<Entry>,
    previous: HashTable<Entry>,
}

struct Entry {
    hash: u64,
    kind: Kind,
    /// The URL followed by the site key, one allocation for both.
    key: Box<str>,
    url_len: usize,
    has_src: bool,
    path: Box<str>,
}

impl Entry {
    fn is_for(&self, kind: Kind, url: &str, src: Option<&str>) -> bool {
        let (entry_url, entry_src) = self.key.split_at(self.url_len);
        self.kind == kind
            && entry_url == url
            && self.has_src == src.is_some()
            && entry_src == src.unwrap_or_default()
    }
}

impl PathCache {
    /// A cache holding at most `entries` paths; 0 remembers nothing.
    pub(crate) fn new(entries: usize) -> Self {
        let shards = if entries >= MIN_SHARDED_ENTRIES { SHARDS } else { 1 };
        let per_generation = entries / (2 * shards);
        let shards = if per_generation == 0 { 0 } else { shards };
        Self {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            per_generation,
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// Appends the remembered path for `(kind, url, src)` to `out`; false,
    /// with `out` unchanged, when there is none.
    pub(crate) fn append(&self, out: &mut String, kind: Kind, url: &str, src: Option<&str>) -> bool {
        if self.shards.is_empty() {
            return false;
        }
        let hash = self.hasher.hash_one((kind, url, src));
        let mut shard = self.shard(hash);
        let is_entry = |entry: &Entry| entry.hash == hash && entry.is_for(kind, url, src);
        if let Some(entry) = shard.current.find(hash, is_entry) {
            out.push_str(&entry.path);
            return true;
        }
        let Ok(found) = shard.previous.find_entry(hash, is_entry) else {
            return false;
        };
        let (entry, _) = found.remove();
        out.push_str(&entry.path);
        shard.insert_current(entry, self.per_generation);
        true
    }

    /// Remembers `path` as the signed path of `(kind, url, src)`.
    pub(crate) fn insert(&self, kind: Kind, url: &str, src: Option<&str>, path: &str) {
        if self.shards.is_empty() {
            return;
        }
        let hash = self.hasher.hash_one((kind, url, src));
        let mut shard = self.shard(hash);
        let is_entry = |entry: &Entry| entry.hash == hash && entry.is_for(kind, url, src);
        if shard.current.find(hash, is_entry).is_some() {
            // Another rewrite signed the same URL meanwhile.
            return;
        }
        if let Ok(stale) = shard.previous.find_entry(hash, is_entry) {
            stale.remove();
        }
        let mut key = String::with_capacity(url.len() + src.map_or(0, str::len));
        key.push_str(url);
        key.push_str(src.unwrap_or_default());
        let entry = Entry {
            hash,
            kind,
            key: key.into_boxed_str(),
            url_len: url.len(),
            has_src: src.is_some(),
            path: path.into(),
        };
        shard.insert_current(entry, self.per_generation);
    }

    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, Shard> {
        // The table uses the low bits (bucket) and the top seven (tag);
        // the shard takes bits from the middle so neither is skewed.
        let index = (hash >> 32) as usize % self.shards.len();
        // A panic while holding the lock cannot leave an entry half
        // written (entries are inserted whole), so a poisoned shard is
        // still consistent.
        self.shards[index].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Entries held, both generations (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
                shard.current.len() + shard.previous.len()
            })
            .sum()
    }
}

impl Shard {
    fn insert_current(&mut self, entry: Entry, per_generation: usize) {
        if self.current.len() >= per_generation {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert_unique(entry.hash, entry, |entry| entry.hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(cache: &PathCache, kind: Kind, url: &str, src: Option<&str>) -> Option<String> {
        let mut out = String::from("prefix:");
        cache
            .append(&mut out, kind, url, src)
            .then(|| out["prefix:".len()..].to_owned())
    }

    #[test]
    fn remembered_path_is_appended_for_the_same_kind_url_and_src_only() {
        let cache = PathCache::new(4096);
        cache.insert(Kind::Relay, "https://a.test/1.ts", Some("f1tv"), "/relay/x/1.ts");
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
        assert!(!cache.append(&mut out, Kind::Relay, "https://a.test/1.ts", None));
        assert_eq!(out, "kept");
    }

    #[test]
    fn never_holds_more_than_its_capacity() {
        for capacity in [0, 1, 2, 10, 1000, 1024, 5000] {
            let cache = PathCache::new(capacity);
            for i in 0..(3 * capacity + 100) {
                let url = format!("https://a.test/{i}.ts");
                cache.insert(Kind::Relay, &url, None, &url);
                assert!(
                    cache.len() <= capacity,
                    "capacity {capacity}: {} held",
                    cache.len()
                );
            }
        }
    }

    #[test]
    fn zero_capacity_remembers_nothing() {
        let cache = PathCache::new(0);
        cache.insert(Kind::Relay, "https://a.test/1.ts", None, "/relay/x/1.ts");
        assert_eq!(cached(&cache, Kind::Relay, "https://a.test/1.ts", None), None);
    }

    #[test]
    fn sliding_live_window_of_under_half_the_capacity_stays_cached() {
        // A live playlist of 3,000 segments reloaded 200 times, gaining and
        // losing 10 segments per reload: only the new ones are ever missed.
        let cache = PathCache::new(8192);
        let url = |sequence: usize| format!("https://a.test/live/{sequence}.ts");
        let (window, step) = (3000, 10);
        let mut misses = 0;
        for reload in 0..200 {
            let first = reload * step;
            for sequence in first..first + window {
                let url = url(sequence);
                match cached(&cache, Kind::Relay, &url, None) {
                    Some(path) => assert_eq!(path, url),
                    None => {
                        misses += 1;
                        cache.insert(Kind::Relay, &url, None, &url);
                    }
                }
            }
        }
        assert_eq!(misses, window + 199 * step);
        assert!(cache.len() <= 8192);
    }

    #[test]
    fn reinserting_a_url_keeps_one_entry() {
        let cache = PathCache::new(4096);
        for _ in 0..3 {
            cache.insert(Kind::Relay, "https://a.test/1.ts", None, "/relay/x/1.ts");
        }
        assert_eq!(cache.len(), 1);
    }
}
