//! Every fixed bound of the crate in one place: sizes, counts and times that keep hostile
//! input, a misbehaving identity provider and a flood of requests bounded.
//!
//! The defaults of configurable settings are here too, next to the floors and ceilings
//! that the builder enforces.

use std::time::Duration;

/// Default largest token accepted, in bytes, checked before any decoding (16 KiB).
/// Configurable with [`JwksAuth::max_token_len`](crate::JwksAuth::max_token_len).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// At most this many keys of one key set document are considered; the rest are skipped.
pub const MAX_KEYS: usize = 100;

/// A token without `kid` is tried against at most this many keys that fit its algorithm.
/// When more keys fit, the token is rejected rather than tried against all of them.
pub const MAX_KIDLESS_CANDIDATES: usize = 3;

/// Longest `kid` kept; a key with a longer one is skipped.
pub const MAX_KID_LEN: usize = 256;

/// Largest key set or discovery document accepted, in bytes (512 KiB).
pub const MAX_BODY: usize = 512 * 1024;

/// Connect timeout of the default HTTP client.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Default bound on one whole fetch (connect, headers and body).
/// Configurable with [`Refresh::timeout`](crate::Refresh::timeout).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Default time between periodic refreshes.
/// Configurable with [`Refresh::interval`](crate::Refresh::interval).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Shortest refresh interval the builder accepts; smaller values are raised to it.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// Default minimum time between two refreshes forced by unknown `kid`s.
/// Configurable with [`Refresh::cooldown`](crate::Refresh::cooldown).
pub const COOLDOWN: Duration = Duration::from_secs(30);

/// Shortest cooldown the builder accepts; smaller values (zero included) are raised to
/// it, so that a flood of unknown `kid`s costs the identity provider at most one fetch
/// per second.
pub const MIN_COOLDOWN: Duration = Duration::from_secs(1);

/// Default time the last good key set may be used without a successful refresh.
/// Configurable with [`Refresh::max_stale`](crate::Refresh::max_stale).
pub const MAX_STALE: Duration = Duration::from_secs(24 * 60 * 60);

/// A `Cache-Control: max-age` shorter than this schedules the refresh at this.
pub const MIN_MAX_AGE: Duration = Duration::from_secs(60);

/// A `Cache-Control: max-age` longer than this schedules the refresh at this.
pub const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// First retry delay after a failed refresh; the backoff doubles from here up to the
/// refresh interval. (Tuning, not a promise.)
pub(crate) const BACKOFF_BASE: Duration = Duration::from_secs(1);

/// Default leeway on `exp` and `nbf`.
/// Configurable with [`JwksAuth::leeway`](crate::JwksAuth::leeway).
pub const LEEWAY: Duration = Duration::from_secs(60);

/// Default size of the verified-token cache, in entries.
/// Configurable with [`JwksAuth::cache`](crate::JwksAuth::cache); `0` turns it off.
///
/// Access tokens live minutes to an hour and a client reuses one for its whole life, so
/// the working set is about the number of clients active within a token lifetime:
/// 10,000 covers a busy service, and a miss only costs the verification it would have
/// cost without the cache.
pub const CACHE_ENTRIES: usize = 10_000;

/// Memory budget of the verified-token cache: token text plus a fixed overhead per entry
/// (16 MiB; the deserialized claims come on top). Whatever the token sizes, the cache
/// holds no more; a token larger than one shard's share (1 MiB) is not cached.
pub const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Number of shards of the verified-token cache and the in-memory replay store.
/// (Tuning, not a promise.)
pub(crate) const SHARDS: usize = 16;

/// The shortest `Retry-After` of a 503.
pub const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The longest `Retry-After` of a 503.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Largest DPoP proof accepted, in bytes, before any decoding (a proof carries its public
/// key: an 8192-bit RSA key and its signature fit).
pub const MAX_PROOF_LEN: usize = 8 * 1024;

/// Longest `jti` accepted in a DPoP proof, in bytes.
pub const MAX_JTI_LEN: usize = 256;

/// How far a DPoP proof's `iat` may be from the server's clock, either way, by default.
pub const DPOP_WINDOW: Duration = Duration::from_secs(60);

/// Entries the default in-memory DPoP replay store holds at most: about 92 MB when full,
/// measured (a 128-bit digest, an expiry and a client per entry, a count per client and
/// shard, plus the maps' spare slots).
pub const REPLAY_ENTRIES: usize = 1_000_000;

/// Key stores kept at most for issuers matched by rules, by default
/// ([`Refresh::tenant_stores`](crate::Refresh::tenant_stores)).
pub const TENANT_STORES: usize = 1_000;

/// New rule-matched key stores that may be made at once, by default
/// ([`Refresh::new_tenants`](crate::Refresh::new_tenants)).
pub const NEW_TENANT_BURST: u32 = 30;

/// New rule-matched key stores that may be made a second after the burst, by default.
pub const NEW_TENANTS_PER_SECOND: f64 = 3.0;

/// How long a server-issued DPoP nonce stays current by default; the previous one is
/// still accepted for as long again.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// Bound on one call to a remote replay store (the Redis store); past it the request
/// gets 503.
pub const REPLAY_STORE_TIMEOUT: Duration = Duration::from_secs(1);
