//! [`Refresh`]: how a layer fetches its key sets and keeps them fresh, and the bounds of
//! the key stores made for issuer rules. Plain data, read by `config` when the layer is
//! built.

use std::fmt;
use std::time::Duration;

use crate::limits::{
    MIN_REFRESH_INTERVAL, NEW_TENANT_BURST, NEW_TENANTS_PER_SECOND, TENANT_STORES,
};
use crate::store::Timing;
use crate::tenants::Fetching;

/// How a layer fetches its key set and keeps it fresh
/// ([`JwksAuth::refresh`](crate::JwksAuth::refresh)). Plain data; every setter says its
/// default.
///
/// ```
/// use std::time::Duration;
/// use jwks_auth::{JwksAuth, Refresh};
///
/// let auth = JwksAuth::new("https://idp.example/jwks.json")
///     .issuer("https://idp.example/")
///     .audience("orders-api")
///     .refresh(Refresh::default().interval(Duration::from_secs(600)).cooldown(Duration::from_secs(10)));
/// ```
#[derive(Clone, Default)]
pub struct Refresh {
    pub(crate) timing: Timing,
    pub(crate) allow_http: bool,
    pub(crate) client: Option<reqwest::Client>,
    tenant_stores: Option<usize>,
    new_tenants: Option<(u32, f64)>,
}

impl fmt::Debug for Refresh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refresh")
            .field("timing", &self.timing)
            .field("allow_http", &self.allow_http)
            .field("client", &self.client.is_some())
            .field("tenant_stores", &self.tenant_stores)
            .field("new_tenants", &self.new_tenants)
            .finish()
    }
}

impl Refresh {
    /// Time between periodic refreshes (±10 % jitter); also the cap of the failure
    /// backoff. Defaults to 5 minutes; at least 1 s.
    ///
    /// An interval set here is an upper bound: a `Cache-Control: max-age` from the
    /// identity provider may make refreshes more frequent (never below a minute), never
    /// rarer, so a key withdrawn at the provider stops verifying within this interval.
    /// (With the default interval, `max-age` is followed up to 24 hours.)
    pub fn interval(mut self, interval: Duration) -> Self {
        self.timing.refresh_interval = interval.max(MIN_REFRESH_INTERVAL);
        self.timing.interval_explicit = true;
        self
    }

    /// Minimum time between two refreshes forced by unknown `kid`s. Defaults to 30 s;
    /// values under [`MIN_COOLDOWN`](crate::limits::MIN_COOLDOWN) (1 s, zero included)
    /// are raised to it, so a flood of unknown `kid`s stays bounded.
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.timing.cooldown = cooldown;
        self
    }

    /// How long the last good key set may be used without a successful refresh; after
    /// that, requests get 503. Defaults to 24 hours.
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.timing.max_stale = max_stale;
        self
    }

    /// Bound on one fetch (connect, headers and body), and so on how long a request
    /// waits for a refresh. Defaults to 5 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timing.fetch_timeout = timeout;
        self
    }

    /// Allow plain `http` URLs for hosts that are not loopback. Off by default: keys
    /// fetched over plain HTTP can be replaced by anyone on the path.
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// The most key stores kept for issuers matched by [`IssuerRule`](crate::IssuerRule)s (default
    /// [`TENANT_STORES`], 1,000; at least 1): past it, the least recently used is dropped,
    /// and that tenant's next uncached token discovers its keys again.
    pub fn tenant_stores(mut self, stores: usize) -> Self {
        self.tenant_stores = Some(stores.max(1));
        self
    }

    /// The budget for new [`IssuerRule`](crate::IssuerRule) tenants, shared by the layer's rules: `burst`
    /// new key stores at once, then `per_second` (defaults [`NEW_TENANT_BURST`], 30, and
    /// [`NEW_TENANTS_PER_SECOND`], 3). Past it a token of a new tenant gets 503 with
    /// `Retry-After` at once; known tenants are not affected.
    pub fn new_tenants(mut self, burst: u32, per_second: f64) -> Self {
        self.new_tenants = Some((burst.max(1), per_second));
        self
    }

    /// What rule-matched stores are made with.
    pub(crate) fn fetching(&self) -> Fetching {
        let (burst, per_second) = self
            .new_tenants
            .unwrap_or((NEW_TENANT_BURST, NEW_TENANTS_PER_SECOND));
        Fetching {
            timing: self.timing,
            allow_http: self.allow_http,
            client: self.client.clone(),
            bound: self.tenant_stores.unwrap_or(TENANT_STORES),
            burst,
            per_second,
        }
    }

    /// Use this HTTP client instead of the default one (rustls, connect timeout 2 s, no
    /// redirects, proxies from the environment except for loopback URLs). The fetch
    /// timeout and body cap still apply; redirect and proxy policy are the client's.
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }
}
