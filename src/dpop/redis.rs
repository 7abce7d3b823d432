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

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::replay::{ReplayFuture, ReplayKey, ReplayStore, ReplayStoreError};
use crate::limits::REPLAY_STORE_TIMEOUT;

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
    connection: OnceCell<ConnectionManager>,
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
                connection: OnceCell::new(),
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

    async fn insert_once(&self, key: ReplayKey, ttl: Duration) -> Result<bool, ReplayStoreError> {
        let mut connection = self.connection().await?;
        let reply: Option<String> = redis::cmd("SET")
            .arg(format!("{}{}", self.prefix, key.to_hex()))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis().max(1)).unwrap_or(u64::MAX))
            .query_async(&mut connection)
            .await
            .map_err(ReplayStoreError::new)?;
        Ok(reply.is_some())
    }
}

impl fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: name the server only.
        let info = self.inner.client.get_connection_info();
        f.debug_struct("RedisReplayStore")
            .field("addr", &info.addr().to_string())
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

impl ReplayStore for RedisReplayStore {
    fn insert(&self, key: ReplayKey, ttl: Duration) -> ReplayFuture {
        let inner = self.inner.clone();
        Box::pin(async move { inner.insert_once(key, ttl).await })
    }
}
