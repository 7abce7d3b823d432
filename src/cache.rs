//! The verified-token cache, on by default ([`JwksAuth::cache`](crate::JwksAuth::cache)),
//! typed over the layer's claims type.
//!
//! A token that verified once and is seen again skips parsing and the signature check.
//! What makes that safe:
//!
//! - a hit compares the **whole token** with the cached one: the hash only picks the
//!   slot, so a hash collision can never accept a token, and a token with one changed
//!   byte (signature, payload or header) is a miss and is verified in full;
//! - `exp` and `nbf` are checked again at every hit, with the same leeway;
//! - the key that verified the token must still be in the current key set (same `kid`,
//!   same key material): once a refresh removes the key, its tokens miss, and then fail;
//! - the rest of the verdict (issuer, audience, `typ`, required claims, algorithm
//!   allow-list) depends only on the token and the layer's configuration, both fixed;
//! - a stale key set (past `max_stale`) is never consulted: the request gets 503 first.
//!
//! Memory is bounded twice: at most `max_entries` tokens (default
//! [`CACHE_ENTRIES`](crate::limits::CACHE_ENTRIES), 10,000), and at most
//! [`CACHE_BYTES`](crate::limits::CACHE_BYTES) (16 MiB) of token text and entry overhead,
//! whatever the token sizes; the deserialized claims come on top (for
//! [`StandardClaims`](crate::StandardClaims), about the size of the payload). Entries
//! live in 16 shards ([`Shards`]), each behind a mutex held for a hash-map lookup or
//! insert (the only lock on the request path). A full shard first drops expired entries, then arbitrary
//! ones: a flood of distinct valid tokens cannot grow it past its bounds.

use std::collections::HashMap;
use std::sync::Arc;

use crate::limits::{CACHE_BYTES, SHARDS};
use crate::shards::Shards;

/// How the cached token was verified.
#[derive(Debug, Clone)]
pub(crate) struct Provenance {
    pub(crate) exp: f64,
    pub(crate) nbf: Option<f64>,
    pub(crate) kid: Option<Arc<str>>,
    pub(crate) key_id: u64,
    /// Which key store (issuer) verified it.
    pub(crate) store: usize,
    /// The key set generation in which the key was last seen.
    pub(crate) generation: u64,
    /// The DPoP key the token is bound to (`cnf.jkt`), if it was verified as a DPoP token.
    pub(crate) jkt: Option<Box<str>>,
}

struct Entry<T> {
    token: Box<str>,
    claims: Arc<T>,
    provenance: Provenance,
}

impl<T> Entry<T> {
    /// What the entry counts against the byte budget: its token, its DPoP binding and
    /// its fixed size.
    fn cost(&self) -> usize {
        self.token.len() + self.provenance.jkt.as_ref().map_or(0, |j| j.len()) + ENTRY_OVERHEAD
    }
}

/// The fixed memory of an entry besides its token: the entry, the map slot, the `Arc`
/// header, the `kid`.
const ENTRY_OVERHEAD: usize = 160;

/// One shard: slot hash to entry, and the bytes its entries cost.
struct ShardMap<T> {
    map: HashMap<u64, Entry<T>>,
    bytes: usize,
}

impl<T> ShardMap<T> {
    fn remove(&mut self, hash: u64) {
        if let Some(e) = self.map.remove(&hash) {
            self.bytes -= e.cost();
        }
    }
}

impl<T> Default for ShardMap<T> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            bytes: 0,
        }
    }
}

/// A bounded map from tokens to verified claims.
pub(crate) struct TokenCache<T> {
    shards: Shards<ShardMap<T>>,
    per_shard: usize,
    bytes_per_shard: usize,
}

impl<T> std::fmt::Debug for TokenCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("capacity", &(self.per_shard * self.shards.count()))
            .finish_non_exhaustive()
    }
}

/// A fast, non-cryptographic hash of the token's tail (its signature, which differs
/// between any two tokens) and length. Collisions only cost a miss.
fn slot_hash(token: &str) -> u64 {
    let bytes = token.as_bytes();
    let tail = &bytes[bytes.len().saturating_sub(64)..];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ bytes.len() as u64;
    for chunk in tail.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 29;
    }
    h
}

impl<T> TokenCache<T> {
    pub(crate) fn new(max_entries: usize) -> Self {
        Self::with_budget(max_entries, CACHE_BYTES)
    }

    pub(crate) fn with_budget(max_entries: usize, max_bytes: usize) -> Self {
        let shards = SHARDS.min(max_entries.max(1));
        Self {
            shards: Shards::new(shards),
            per_shard: max_entries.div_ceil(shards).max(1),
            bytes_per_shard: (max_bytes / shards).max(1),
        }
    }

    /// The cached claims for exactly this token, if it was verified with the same DPoP
    /// binding (`jkt`: `None` for a bearer token), it is still valid now and
    /// `key_present` confirms that the key that verified it is still in its key set
    /// (returning that set's generation, remembered for the next hit). A binding that
    /// differs is a miss that leaves the entry alone: the full check then says why.
    pub(crate) fn get(
        &self,
        token: &str,
        jkt: Option<&str>,
        now: f64,
        leeway: f64,
        key_present: impl FnOnce(&Provenance) -> Option<u64>,
    ) -> Option<Arc<T>> {
        let hash = slot_hash(token);
        let mut shard = self.shards.lock(hash);
        let entry = shard.map.get_mut(&hash)?;
        if *entry.token != *token || entry.provenance.jkt.as_deref() != jkt {
            return None;
        }
        let p = &mut entry.provenance;
        let in_time = now < p.exp + leeway && p.nbf.is_none_or(|nbf| now + leeway >= nbf);
        match in_time.then(|| key_present(p)).flatten() {
            Some(generation) => {
                p.generation = generation;
                Some(entry.claims.clone())
            }
            None => {
                shard.remove(hash);
                None
            }
        }
    }

    pub(crate) fn insert(&self, token: &str, claims: Arc<T>, provenance: Provenance, now: f64) {
        let entry = Entry {
            token: token.into(),
            claims,
            provenance,
        };
        let cost = entry.cost();
        if cost > self.bytes_per_shard {
            return;
        }
        let hash = slot_hash(token);
        let mut shard = self.shards.lock(hash);
        shard.remove(hash);
        let full = |s: &ShardMap<T>| {
            s.map.len() >= self.per_shard || s.bytes + cost > self.bytes_per_shard
        };
        if full(&shard) {
            // Expired entries first, then arbitrary ones, until the new one fits.
            let ShardMap { map, bytes } = &mut *shard;
            map.retain(|_, e| {
                let keep = now < e.provenance.exp;
                if !keep {
                    *bytes -= e.cost();
                }
                keep
            });
            while full(&shard) {
                let Some(victim) = shard.map.keys().next().copied() else {
                    break;
                };
                shard.remove(victim);
            }
        }
        shard.bytes += cost;
        shard.map.insert(hash, entry);
    }

    /// Entries and bytes held now.
    pub(crate) fn usage(&self) -> (usize, usize) {
        self.shards.sum(|s| (s.map.len(), s.bytes))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.usage().0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeySet;

    fn provenance(exp: f64) -> Provenance {
        Provenance {
            exp,
            nbf: None,
            kid: None,
            key_id: 0,
            store: 0,
            generation: 0,
            jkt: None,
        }
    }

    fn in_set(keys: &KeySet) -> impl FnOnce(&Provenance) -> Option<u64> + '_ {
        move |p| {
            keys.contains(p.kid.as_deref(), p.key_id)
                .then(|| keys.generation())
        }
    }

    #[test]
    fn size_is_bounded() {
        let cache = TokenCache::new(32);
        for i in 0..1000 {
            cache.insert(
                &format!("token-{i}-{}", "x".repeat(i % 7)),
                Arc::new(i),
                provenance(1e12),
                0.0,
            );
        }
        assert!(cache.len() <= 32, "{}", cache.len());
        assert!(cache.len() >= 16);
    }

    #[test]
    fn the_byte_budget_bounds_a_flood_of_large_tokens() {
        let cache = TokenCache::with_budget(10_000, 64 * 1024);
        for i in 0..2_000 {
            let token = format!("{}.{i:08}", "p".repeat(1000));
            cache.insert(&token, Arc::new(i), provenance(1e12), 0.0);
        }
        let (entries, bytes) = cache.usage();
        assert!(bytes <= 64 * 1024, "{bytes}");
        assert!(entries >= 8, "the budget is used: {entries}");
        // A token larger than a shard's budget is simply not cached.
        let huge = "h".repeat(64 * 1024);
        cache.insert(&huge, Arc::new(0), provenance(1e12), 0.0);
        assert_eq!(cache.get(&huge, None, 0.0, 0.0, |_| Some(1)), None);
    }

    #[test]
    fn expired_entries_make_room_first() {
        let cache = TokenCache::new(1);
        cache.insert("old", Arc::new(1u8), provenance(10.0), 0.0);
        cache.insert("new", Arc::new(2u8), provenance(1e12), 20.0);
        assert_eq!(cache.len(), 1);
    }

    fn cache_provenance_again(keys: &KeySet) -> Provenance {
        let (kid, key_id) = keys.key_ids()[0].clone();
        Provenance {
            exp: 1e12,
            nbf: None,
            kid,
            key_id,
            store: 0,
            generation: 0,
            jkt: None,
        }
    }

    #[test]
    fn a_colliding_token_never_hits() {
        let keys = KeySet::from_values(&[serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "kid": "k",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        })]);
        let (kid, key_id) = keys.key_ids()[0].clone();
        let p = Provenance {
            exp: 1e12,
            nbf: None,
            kid,
            key_id,
            store: 0,
            generation: 0,
            jkt: None,
        };
        let tail = "s".repeat(64);
        let (a, b) = (format!("aaaa.{tail}"), format!("bbbb.{tail}"));
        assert_eq!(
            slot_hash(&a),
            slot_hash(&b),
            "same tail and length: same slot"
        );
        let cache = TokenCache::new(8);
        cache.insert(&a, Arc::new(7u32), p, 0.0);
        assert_eq!(
            cache.get(&a, None, 0.0, 0.0, in_set(&keys)),
            Some(Arc::new(7)),
            "the token itself hits"
        );
        assert_eq!(
            cache.get(&b, None, 0.0, 0.0, in_set(&keys)),
            None,
            "its colliding twin never does"
        );
        assert_eq!(
            cache.get(&a, None, 0.0, 0.0, in_set(&KeySet::default())),
            None,
            "nor without its key"
        );
        cache.insert(&a, Arc::new(7u32), cache_provenance_again(&keys), 0.0);
        assert_eq!(
            cache.get(&a, None, 2e12, 0.0, in_set(&keys)),
            None,
            "nor after exp"
        );
    }

    #[test]
    fn slot_hash_spreads_and_depends_on_length() {
        let a = slot_hash("a.b.signature-one");
        assert_ne!(a, slot_hash("a.b.signature-two"));
        assert_ne!(slot_hash("xa.b.sig"), slot_hash("a.b.sig"));
    }
}
