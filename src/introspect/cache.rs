//! The cache of active introspection answers, by the token's SHA-256 digest (never the
//! token), typed over the claims type (see the [module docs](super)).

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{CACHE_ENTRIES, Meta};
use crate::limits::CACHE_BYTES;
use crate::shards::Shards;
use crate::verify::Rules;

/// Active answers by the token's SHA-256 digest, typed over the claims type, bounded by
/// entries ([`CACHE_ENTRIES`]) and bytes ([`CACHE_BYTES`], counted as the answer's size
/// plus a fixed overhead), each shard its share.
pub(crate) struct AnswerCache<T> {
    shards: Shards<Shard<T>>,
    per_shard: usize,
    bytes_per_shard: usize,
}

struct Shard<T> {
    answers: std::collections::HashMap<[u8; 32], Cached<T>>,
    bytes: usize,
}

impl<T> Default for Shard<T> {
    fn default() -> Self {
        Self {
            answers: std::collections::HashMap::new(),
            bytes: 0,
        }
    }
}

/// What an entry counts besides its answer's text.
const OVERHEAD: usize = 128;

struct Cached<T> {
    /// What it counts against the byte bound.
    bytes: usize,
    claims: Arc<T>,
    /// Reused until then (seconds since the epoch): `min(exp, stored + cache_for)`.
    until: f64,
    exp: f64,
    nbf: Option<f64>,
    jkt: Option<Box<str>>,
}

impl<T> fmt::Debug for AnswerCache<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnswerCache")
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl<T> AnswerCache<T> {
    pub(crate) fn new() -> Self {
        let shards = Shards::new(16);
        Self {
            per_shard: CACHE_ENTRIES.div_ceil(shards.count()),
            bytes_per_shard: CACHE_BYTES / shards.count(),
            shards,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.sum(|s| (s.answers.len(), 0)).0
    }

    fn shard_of(key: &[u8; 32]) -> u64 {
        u64::from_be_bytes(key[..8].try_into().unwrap_or_default())
    }

    /// A cached answer for `token` with the same binding, still within its bound,
    /// `exp`/`nbf` re-checked.
    pub(crate) fn get(
        &self,
        token: &str,
        jkt: Option<&str>,
        now: f64,
        rules: &Rules,
    ) -> Option<Arc<T>> {
        let key = digest(token);
        let shard = self.shards.lock(Self::shard_of(&key));
        let hit = shard.answers.get(&key)?;
        (hit.until > now
            && hit.jkt.as_deref() == jkt
            && rules.in_time(hit.exp, hit.nbf, now).is_ok())
        .then(|| hit.claims.clone())
    }

    /// Remembers an active answer (of `size` bytes) until `min(exp, now + cache_for)`.
    pub(crate) fn insert(
        &self,
        token: &str,
        claims: Arc<T>,
        (meta, size): (Meta, usize),
        now: f64,
        cache_for: f64,
    ) {
        if cache_for <= 0.0 {
            return;
        }
        let key = digest(token);
        let bytes = size.saturating_add(OVERHEAD);
        let mut guard = self.shards.lock(Self::shard_of(&key));
        let shard = &mut *guard;
        if let Some(old) = shard.answers.remove(&key) {
            shard.bytes -= old.bytes;
        }
        let full = |s: &Shard<T>| {
            s.answers.len() >= self.per_shard || s.bytes + bytes > self.bytes_per_shard
        };
        if full(shard) {
            let (answers, total) = (&mut shard.answers, &mut shard.bytes);
            answers.retain(|_, c| {
                let live = c.until > now;
                if !live {
                    *total -= c.bytes;
                }
                live
            });
            if full(shard) {
                // Full of live answers: the next call decides; nothing is forgotten early.
                return;
            }
        }
        shard.bytes += bytes;
        shard.answers.insert(
            key,
            Cached {
                bytes,
                claims,
                until: meta.exp.min(now + cache_for),
                exp: meta.exp,
                nbf: meta.nbf,
                jkt: meta.jkt,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(exp: f64) -> Meta {
        Meta {
            exp,
            nbf: None,
            jkt: None,
        }
    }

    #[test]
    fn bounded_by_entries_and_bytes_and_never_past_the_bound() {
        let cache: AnswerCache<u32> = AnswerCache::new();
        let rules = Rules::default();
        let now = 1_000_000.0;
        cache.insert("a", Arc::new(1), (meta(now + 600.0), 100), now, 60.0);
        assert_eq!(
            cache.get("a", None, now + 59.0, &rules).as_deref(),
            Some(&1)
        );
        assert!(
            cache.get("a", None, now + 60.0, &rules).is_none(),
            "cache_for"
        );
        assert!(
            cache.get("a", Some("jkt"), now, &rules).is_none(),
            "another binding"
        );
        cache.insert("b", Arc::new(2), (meta(now + 10.0), 100), now, 60.0);
        assert!(cache.get("b", None, now + 10.0, &rules).is_none(), "exp");
        // Answers too large for a shard's byte share are not kept; small ones up to it.
        cache.insert(
            "huge",
            Arc::new(3),
            (meta(now + 600.0), CACHE_BYTES),
            now,
            60.0,
        );
        assert!(cache.get("huge", None, now, &rules).is_none());
        for i in 0..100_000 {
            cache.insert(
                &i.to_string(),
                Arc::new(i),
                (meta(now + 600.0), 1000),
                now,
                60.0,
            );
        }
        let (entries, bytes) = cache.shards.sum(|s| (s.answers.len(), s.bytes));
        assert!(
            entries <= CACHE_ENTRIES && bytes <= CACHE_BYTES,
            "{entries} {bytes}"
        );
        assert_eq!(cache.len(), entries);
    }
}
