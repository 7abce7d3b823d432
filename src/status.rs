//! [`Status`]: what a key store reports for health checks and dashboards.

use std::time::{Duration, SystemTime};

use crate::error::RefreshError;
use crate::keys::SkippedKey;

/// A snapshot of a layer's health (its key sets, its cache), for health checks and
/// dashboards.
///
/// Returned by [`JwksAuth::status`](crate::JwksAuth::status).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Status {
    /// Key ids in the current key set, sorted.
    pub kids: Vec<String>,
    /// Number of usable keys (keys without `kid` included).
    pub key_count: usize,
    /// Keys of the last fetched document that were skipped, with the reason.
    pub skipped: Vec<SkippedKey>,
    /// Wall-clock time of the last good refresh (a conditional `304` counts).
    pub last_success: Option<SystemTime>,
    /// The error of the last failed attempt, cleared by the next good one (or the error
    /// that makes a key set impossible).
    pub last_error: Option<RefreshError>,
    /// Failed attempts since the last good one.
    pub consecutive_failures: u32,
    /// HTTP fetches made so far (each attempt, whatever its outcome).
    pub fetches: u64,
    /// `true` when there is no key set, or the last good refresh is older than `max_stale`.
    /// Requests are then answered with 503.
    pub stale: bool,
    /// Time until the next scheduled refresh, if the task is running.
    pub next_refresh: Option<Duration>,
    /// For a multi-issuer layer, each trusted issuer's own status (the fields above
    /// combine them: key ids of all, the oldest success, the first error, stale if any
    /// is), then those of the ten most recently used tenants of its issuer rules (not
    /// combined above). Empty otherwise.
    pub issuers: Vec<(String, Status)>,
    /// Live key stores of issuers matched by [`IssuerRule`](crate::IssuerRule)s.
    pub tenant_stores: usize,
    /// Tenant key stores dropped so far to keep the bound
    /// ([`Refresh::tenant_stores`](crate::Refresh::tenant_stores)).
    pub tenant_evictions: u64,
    /// Tokens the verified-token cache holds now (0 when it is off).
    pub cache_entries: usize,
    /// What those entries count against the cache's byte budget
    /// ([`CACHE_BYTES`](crate::limits::CACHE_BYTES)): token text plus a fixed overhead
    /// per entry.
    pub cache_bytes: usize,
    /// Introspection's health (calls, failures, the last error, cached answers), when the
    /// layer introspects opaque tokens.
    pub introspection: Option<IntrospectionStatus>,
    /// A layer with issuer rules and no fixed issuer: nothing to load before requests
    /// (each tenant's keys are fetched on first use), so it is ready at once.
    pub(crate) lazy: bool,
}

impl Status {
    /// `true` when requests can be verified: a key set is loaded and not stale (or the
    /// layer has only issuer rules, whose tenants' keys are fetched on first use).
    pub fn is_ready(&self) -> bool {
        self.lazy || (self.key_count > 0 && !self.stale)
    }

    /// The status of one trusted issuer of a multi-issuer layer.
    pub fn issuer(&self, issuer: &str) -> Option<&Status> {
        self.issuers
            .iter()
            .find(|(i, _)| i == issuer)
            .map(|(_, status)| status)
    }

    pub(crate) fn empty() -> Self {
        Self {
            kids: Vec::new(),
            key_count: 0,
            skipped: Vec::new(),
            last_success: None,
            last_error: None,
            consecutive_failures: 0,
            fetches: 0,
            stale: true,
            next_refresh: None,
            issuers: Vec::new(),
            tenant_stores: 0,
            tenant_evictions: 0,
            cache_entries: 0,
            cache_bytes: 0,
            introspection: None,
            lazy: false,
        }
    }

    /// Two issuers' statuses as one (for multi-issuer layers).
    pub(crate) fn combine(mut self, other: Status) -> Status {
        self.kids.extend(other.kids);
        self.kids.sort();
        self.key_count += other.key_count;
        self.skipped.extend(other.skipped);
        self.last_success = match (self.last_success, other.last_success) {
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        };
        self.last_error = self.last_error.or(other.last_error);
        self.consecutive_failures = self.consecutive_failures.max(other.consecutive_failures);
        self.fetches += other.fetches;
        self.stale |= other.stale;
        self.next_refresh = match (self.next_refresh, other.next_refresh) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self
    }
}

/// What introspection reports in [`Status::introspection`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct IntrospectionStatus {
    /// Calls made so far (each attempt, whatever its outcome).
    pub calls: u64,
    /// Calls that could not be answered (503s) since the last good one.
    pub consecutive_failures: u32,
    /// Wall-clock time of the last answered call.
    pub last_success: Option<SystemTime>,
    /// Why the last failed call failed, cleared by the next good one.
    pub last_error: Option<String>,
    /// Active answers cached now.
    pub cache_entries: usize,
}
