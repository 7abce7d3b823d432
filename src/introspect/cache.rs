//! The cache of active introspection answers, by the token's SHA-256 digest (never the
//! token), typed over the claims type (see the [module docs](super)).

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{CACHE_ENTRIES, Meta};
use crate::shards::Shards;
use crate::verify::Rules;

/// Active answers by the token's SHA-256 digest, typed over the claims type.
pub(crate) struct AnswerCache<T> {
    shards: Shards<std::collections::HashMap<[u8; 32], Cached<T>>>,
    per_shard: usize,
}

struct Cached<T> {
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
            shards,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.sum(|s| (s.len(), 0)).0
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
        let hit = shard.get(&key)?;
        (hit.until > now
            && hit.jkt.as_deref() == jkt
            && rules.in_time(hit.exp, hit.nbf, now).is_ok())
        .then(|| hit.claims.clone())
    }

    /// Remembers an active answer until `min(exp, now + cache_for)`.
    pub(crate) fn insert(&self, token: &str, claims: Arc<T>, meta: Meta, now: f64, cache_for: f64) {
        if cache_for <= 0.0 {
            return;
        }
        let key = digest(token);
        let mut shard = self.shards.lock(Self::shard_of(&key));
        if shard.len() >= self.per_shard {
            shard.retain(|_, c| c.until > now);
            if shard.len() >= self.per_shard {
                // Full of live answers: the next call decides; nothing is forgotten early.
                return;
            }
        }
        shard.insert(
            key,
            Cached {
                claims,
                until: meta.exp.min(now + cache_for),
                exp: meta.exp,
                nbf: meta.nbf,
                jkt: meta.jkt,
            },
        );
    }
}
