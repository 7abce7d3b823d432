//! A DPoP replay store shared by every replica, in Redis (feature `redis`).
//!
//! One command per proof: `SET <prefix><key> 1 NX PX <ttl>`. Redis answers `OK` when
//! the key was not there (first use) and nil when it was (a replay), atomically, so two
//! replicas receiving the same proof at once cannot both accept it. Keys expire with the
//! proof's window; nothing else is stored.
//!
//! The connection is made on first use and kept by redis's `ConnectionManager`, which
//! reconnects in the background after a failure. Every command is bounded (connect and
//! response timeouts of 1 s, below the layer's own bound): while Redis cannot be reached
//! requests with DPoP proofs get 503 with `Retry-After`, never an unchecked accept, and
//! they are accepted again as soon as it is back.
//!
//! **Eviction.** A Redis server with `maxmemory` set and an evicting
//! `maxmemory-policy` (`volatile-*`, `allkeys-*`, the default of several managed
//! offerings) drops keys with a TTL first when it is full: every replay key has one, and
//! a proof whose key was evicted would be accepted again within its window. So the
//! store reads `CONFIG GET maxmemory*` at first use (again every minute, and every two
//! seconds while it refuses): on an evicting server DPoP requests get 503, with one
//! ERROR naming the setting, until the server runs with `maxmemory-policy noeviction`
//! (a full server then refuses writes, and requests get 503: fail closed) or
//! `maxmemory 0`, or [`RedisReplayStore::allow_replays_after_eviction`] accepts the
//! risk. Where `CONFIG` is not allowed (managed services often rename or forbid it),
//! one WARN says what to set, and the store is used.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::replay::{ReplayFuture, ReplayKey, ReplayStore, ReplayStoreError};
use crate::limits::REPLAY_STORE_TIMEOUT;
use crate::shards::lock;

/// How often the server's eviction settings are read again while they are safe (or
/// cannot be read), and while they make the store refuse.
const CHECK_EVERY: Duration = Duration::from_secs(60);
const RECHECK_WHILE_REFUSING: Duration = Duration::from_secs(2);

/// The default prefix of the keys this store writes.
const PREFIX: &str = "jwks-auth:dpop:";

/// A [`ReplayStore`] in Redis, shared by every replica that uses the same server (and
/// prefix): a proof replayed to another replica is refused there too.
///
/// ```no_run
/// use std::sync::Arc;
/// use jwks_auth::dpop::RedisReplayStore;
/// use jwks_auth::{Dpop, JwksAuth};
///
/// let store = RedisReplayStore::new("redis://127.0.0.1:6379/")?;
/// let auth = JwksAuth::from_issuer("https://idp.example")
///     .audience("api")
///     .dpop(Dpop::required().base_url("https://api.example.com").replay_store(Arc::new(store)));
/// # Ok::<(), redis::RedisError>(())
/// ```
pub struct RedisReplayStore {
    /// Shared with the inserts in flight: their futures outlive the call.
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    client: redis::Client,
    prefix: String,
    allow_eviction: bool,
    connection: OnceCell<ConnectionManager>,
    eviction: Arc<Mutex<Eviction>>,
}

/// What the server's eviction settings came to, and when they were read.
#[derive(Clone, Debug, Default)]
struct Eviction {
    verdict: Verdict,
    checked: Option<Instant>,
}

#[derive(Clone, Debug, Default, PartialEq)]
enum Verdict {
    #[default]
    Unchecked,
    /// `maxmemory 0` or `noeviction`: a key lives until its TTL.
    Safe,
    /// The server would not tell (`CONFIG` refused): used, with a WARN.
    Unknown,
    /// The server may evict replay keys; the description names the settings.
    Evicting(String),
}

impl RedisReplayStore {
    /// A store on the server at `url` (`redis://host:port/db`, `rediss://` with TLS if
    /// redis is built with it). Parses the URL only: the connection is made on first use.
    ///
    /// # Errors
    ///
    /// The URL does not parse.
    pub fn new(url: &str) -> Result<Self, redis::RedisError> {
        Ok(Self {
            inner: Arc::new(Inner {
                client: redis::Client::open(url)?,
                prefix: PREFIX.to_owned(),
                allow_eviction: false,
                connection: OnceCell::new(),
                eviction: Arc::default(),
            }),
        })
    }

    /// Write keys under another prefix (default `jwks-auth:dpop:`), e.g. to keep two
    /// services' proofs apart on one server.
    pub fn prefix(self, prefix: impl Into<String>) -> Self {
        let inner = Arc::unwrap_or_clone(self.inner);
        Self {
            inner: Arc::new(Inner {
                prefix: prefix.into(),
                ..inner
            }),
        }
    }

    /// Use a server that may evict keys (`maxmemory` set with a `volatile-*` or
    /// `allkeys-*` policy) instead of refusing DPoP requests: **a proof whose replay key
    /// Redis evicts can then be replayed, as often as evictions allow, until its `iat`
    /// leaves the window.** One WARN says so at first use. Only for servers that are
    /// never near their `maxmemory`, or where that risk is accepted.
    pub fn allow_replays_after_eviction(self) -> Self {
        let inner = Arc::unwrap_or_clone(self.inner);
        Self {
            inner: Arc::new(Inner {
                allow_eviction: true,
                ..inner
            }),
        }
    }
}

impl Inner {
    async fn connection(&self) -> Result<ConnectionManager, ReplayStoreError> {
        self.connection
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(REPLAY_STORE_TIMEOUT))
                    .set_response_timeout(Some(REPLAY_STORE_TIMEOUT))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(2));
                self.client
                    .get_connection_manager_lazy(config)
                    .map_err(ReplayStoreError::new)
            })
            .await
            .cloned()
    }

    /// Reads the server's eviction settings when due; `Err` while they make this store
    /// refuse (or the server cannot be reached).
    async fn check_eviction(
        &self,
        connection: &mut ConnectionManager,
    ) -> Result<(), ReplayStoreError> {
        let current = lock(&self.eviction).clone();
        let every = match current.verdict {
            Verdict::Evicting(_) if !self.allow_eviction => RECHECK_WHILE_REFUSING,
            _ => CHECK_EVERY,
        };
        let due = current.checked.is_none_or(|at| at.elapsed() >= every);
        let verdict = if due {
            let reply: Result<Vec<String>, redis::RedisError> = redis::cmd("CONFIG")
                .arg("GET")
                .arg("maxmemory*")
                .query_async(connection)
                .await;
            let verdict = match reply {
                Ok(settings) => judge_settings(&settings),
                // The server answered with an error: CONFIG is renamed or forbidden.
                Err(e)
                    if matches!(
                        e.kind(),
                        redis::ErrorKind::Server(_) | redis::ErrorKind::Extension
                    ) =>
                {
                    Verdict::Unknown
                }
                Err(e) => return Err(ReplayStoreError::new(e)),
            };
            let mut eviction = lock(&self.eviction);
            if eviction.verdict != verdict {
                self.tell(&verdict);
            }
            *eviction = Eviction {
                verdict: verdict.clone(),
                checked: Some(Instant::now()),
            };
            verdict
        } else {
            current.verdict
        };
        match verdict {
            Verdict::Evicting(settings) if !self.allow_eviction => {
                Err(ReplayStoreError::new(format!(
                    "the Redis server may evict replay keys ({settings}); set maxmemory-policy noeviction"
                )))
            }
            _ => Ok(()),
        }
    }

    /// Logs a new verdict, once.
    fn tell(&self, verdict: &Verdict) {
        match verdict {
            Verdict::Evicting(settings) if !self.allow_eviction => tracing::error!(
                %settings,
                "jwks-auth: the Redis DPoP replay store's server may evict keys, and a proof whose key is evicted could be replayed: DPoP requests get 503 until the server runs with `maxmemory-policy noeviction` (or `maxmemory 0`), or RedisReplayStore::allow_replays_after_eviction() accepts the risk"
            ),
            Verdict::Evicting(settings) => tracing::warn!(
                %settings,
                "jwks-auth: the Redis DPoP replay store's server may evict keys; allowed by allow_replays_after_eviction(): a proof whose key is evicted can be replayed within its window"
            ),
            Verdict::Unknown => tracing::warn!(
                "jwks-auth: the Redis DPoP replay store cannot read the server's eviction settings (CONFIG GET refused); make sure it runs with `maxmemory-policy noeviction` (or `maxmemory 0`): a proof whose key is evicted could be replayed"
            ),
            Verdict::Safe => tracing::info!(
                "jwks-auth: the Redis DPoP replay store's server does not evict keys"
            ),
            Verdict::Unchecked => {}
        }
    }

    async fn insert_once(&self, key: ReplayKey, ttl: Duration) -> Result<bool, ReplayStoreError> {
        let mut connection = self.connection().await?;
        self.check_eviction(&mut connection).await?;
        let reply: Option<String> = redis::cmd("SET")
            .arg(format!("{}{}", self.prefix, key.to_hex()))
            .arg(1)
            .arg("NX")
            .arg("PX")
            // Rounded up: a key never expires before its time.
            .arg(
                u64::try_from(
                    ttl.saturating_add(Duration::from_nanos(999_999))
                        .as_millis()
                        .max(1),
                )
                .unwrap_or(u64::MAX),
            )
            .query_async(&mut connection)
            .await
            .map_err(ReplayStoreError::new)?;
        Ok(reply.is_some())
    }
}

/// `CONFIG GET maxmemory*`'s answer (name, value pairs) judged: keys with a TTL may be
/// evicted when `maxmemory` is set and the policy is not `noeviction`.
fn judge_settings(settings: &[String]) -> Verdict {
    let get = |name: &str| {
        settings
            .chunks_exact(2)
            .find(|pair| pair[0].eq_ignore_ascii_case(name))
            .map(|pair| pair[1].as_str())
    };
    match (get("maxmemory"), get("maxmemory-policy")) {
        (Some("0"), Some(_)) | (Some(_), Some("noeviction")) => Verdict::Safe,
        (Some(max), Some(policy)) => {
            Verdict::Evicting(format!("maxmemory {max}, maxmemory-policy {policy}"))
        }
        _ => Verdict::Unknown,
    }
}

impl fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: name the server only.
        let info = self.inner.client.get_connection_info();
        f.debug_struct("RedisReplayStore")
            .field("addr", &info.addr().to_string())
            .field("prefix", &self.inner.prefix)
            .field("allow_replays_after_eviction", &self.inner.allow_eviction)
            .field("eviction", &lock(&self.inner.eviction).verdict)
            .finish_non_exhaustive()
    }
}

impl ReplayStore for RedisReplayStore {
    fn insert(&self, key: ReplayKey, ttl: Duration) -> ReplayFuture {
        let inner = self.inner.clone();
        Box::pin(async move { inner.insert_once(key, ttl).await })
    }
}
