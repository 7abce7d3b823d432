//! Operator metrics (feature `metrics`), through the [`metrics`](https://docs.rs/metrics)
//! facade, so any exporter works (Prometheus, OpenTelemetry, StatsD).
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `jwks_auth_requests_total` | counter | `outcome` (`accepted`, `anonymous`, `rejected`, `unavailable`), `kind` ([`AuthErrorKind::as_str`], or `none`) | every request the layer saw, once, by its final outcome: a request the layer let through and a route layer or handler then refused counts as that refusal only |
//! | `jwks_auth_cache_hits_total` | counter | | tokens accepted from the verified-token cache |
//! | `jwks_auth_key_fetches_total` | counter | `issuer`, `outcome` (`ok`, `not_modified`, or the error: `connect`, `timeout`, `status`, …) | key set fetch attempts |
//! | `jwks_auth_key_fetch_seconds` | histogram | `issuer` | how long an attempt took |
//! | `jwks_auth_keys` | gauge | `issuer` | usable keys in the current set |
//! | `jwks_auth_introspections_total` | counter | `outcome` (`ok`, `budget`, `connect`, `timeout`, `refused`, `status`, `body_too_large`, `error`) | introspection calls, and tokens the budget turned away |
//! | `jwks_auth_introspection_seconds` | histogram | | how long a call took |
//! | `jwks_auth_introspection_cache_hits_total` | counter | | opaque tokens accepted from the cache of answers |
//! | `jwks_auth_tenant_stores` | gauge | `rule` (an [`IssuerRule`](crate::IssuerRule)'s name) | live key stores of the rule's tenants |
//! | `jwks_auth_tenant_store_evictions_total` | counter | `rule` | tenant key stores dropped to keep the bound |
//! | `jwks_auth_key_set_age_seconds` | gauge | `issuer` | seconds since the last good refresh; kept current every second by the refresh task, so it grows through an outage even when no request arrives |
//!
//! Label values come from fixed sets and the configuration only: never a token, a `kid`,
//! a claim, or the issuer of an untrusted token. `issuer` is the trusted issuer of a
//! multi-issuer layer (for a rule-matched tenant, its rule's name: never a tenant id),
//! empty otherwise. With the feature off, every function here is an
//! empty inline function: the request path pays nothing.
//!
//! [`AuthErrorKind::as_str`]: crate::AuthErrorKind::as_str

#[cfg(feature = "metrics")]
mod imp {
    use std::time::Duration;

    use crate::error::{AuthError, RefreshError, RefreshErrorKind};

    /// The final outcome of one request: `Ok(true)` accepted with claims, `Ok(false)`
    /// let through anonymously (optional layers), `Err` the rejection it was answered
    /// with (the layer's, a route layer's or a handler's).
    pub(crate) fn request(result: Result<bool, &AuthError>) {
        // All-literal labels make a static key: the accepted path allocates nothing.
        let (outcome, kind) = match result {
            Ok(true) => {
                metrics::counter!("jwks_auth_requests_total", "outcome" => "accepted", "kind" => "none")
                    .increment(1);
                return;
            }
            Ok(false) => ("anonymous", "none"),
            Err(e) if e.status() == http::StatusCode::SERVICE_UNAVAILABLE => {
                ("unavailable", e.kind().as_str())
            }
            Err(e) => ("rejected", e.kind().as_str()),
        };
        metrics::counter!("jwks_auth_requests_total", "outcome" => outcome, "kind" => kind)
            .increment(1);
    }

    /// The response leaving the layer: the rejection it carries (the layer's, a route
    /// layer's, a handler's), else accepted (`with_claims`) or anonymous.
    pub(crate) fn response(response: &axum::response::Response, with_claims: bool) {
        match response.extensions().get::<AuthError>() {
            Some(error) => request(Err(error)),
            None => request(Ok(with_claims)),
        }
    }

    pub(crate) fn cache_hit() {
        metrics::counter!("jwks_auth_cache_hits_total").increment(1);
    }

    fn error_label(e: &RefreshError) -> &'static str {
        match e.kind() {
            RefreshErrorKind::Config(_) => "config",
            RefreshErrorKind::Connect => "connect",
            RefreshErrorKind::Timeout => "timeout",
            RefreshErrorKind::Status(_) => "status",
            RefreshErrorKind::BodyTooLarge => "body_too_large",
            RefreshErrorKind::InvalidJwks => "invalid_jwks",
            RefreshErrorKind::NoUsableKeys => "no_usable_keys",
            RefreshErrorKind::InvalidDiscovery => "invalid_discovery",
            RefreshErrorKind::IssuerMismatch { .. } => "issuer_mismatch",
            RefreshErrorKind::Client => "client",
            RefreshErrorKind::UnexpectedNotModified => "unexpected_not_modified",
        }
    }

    /// One fetch attempt: its outcome (`Ok(true)` for a 304) and how long it took.
    pub(crate) fn fetch(issuer: &str, outcome: Result<bool, &RefreshError>, took: Duration) {
        let label = match outcome {
            Ok(false) => "ok",
            Ok(true) => "not_modified",
            Err(e) => error_label(e),
        };
        let issuer = issuer.to_owned();
        metrics::counter!("jwks_auth_key_fetches_total", "issuer" => issuer.clone(), "outcome" => label)
            .increment(1);
        metrics::histogram!("jwks_auth_key_fetch_seconds", "issuer" => issuer)
            .record(took.as_secs_f64());
    }

    /// The current key set: its size and age.
    pub(crate) fn key_set(issuer: &str, keys: usize, age: Option<Duration>) {
        let issuer = issuer.to_owned();
        metrics::gauge!("jwks_auth_keys", "issuer" => issuer.clone()).set(keys as f64);
        if let Some(age) = age {
            metrics::gauge!("jwks_auth_key_set_age_seconds", "issuer" => issuer)
                .set(age.as_secs_f64());
        }
    }

    /// One introspection call (or a refusal by the budget, `took` `None`), by outcome.
    pub(crate) fn introspection(outcome: &'static str, took: Option<Duration>) {
        metrics::counter!("jwks_auth_introspections_total", "outcome" => outcome).increment(1);
        if let Some(took) = took {
            metrics::histogram!("jwks_auth_introspection_seconds").record(took.as_secs_f64());
        }
    }

    /// An opaque token accepted from the cache of introspection answers.
    pub(crate) fn introspection_cache_hit() {
        metrics::counter!("jwks_auth_introspection_cache_hits_total").increment(1);
    }

    /// The live key stores of one issuer rule.
    pub(crate) fn tenant_stores(rule: &str, stores: usize) {
        metrics::gauge!("jwks_auth_tenant_stores", "rule" => rule.to_owned()).set(stores as f64);
    }

    /// A rule-matched key store dropped to keep the bound.
    pub(crate) fn tenant_eviction(rule: &str) {
        metrics::counter!("jwks_auth_tenant_store_evictions_total", "rule" => rule.to_owned())
            .increment(1);
    }

    /// Whether the refresh task should tick to keep the age gauge current.
    pub(crate) const TICK: Option<Duration> = Some(Duration::from_secs(1));
}

#[cfg(not(feature = "metrics"))]
#[allow(clippy::missing_const_for_fn)]
mod imp {
    use std::time::Duration;

    use crate::error::{AuthError, RefreshError};

    #[inline(always)]
    pub(crate) fn request(_: Result<bool, &AuthError>) {}
    #[inline(always)]
    pub(crate) fn response(_: &axum::response::Response, _: bool) {}
    #[inline(always)]
    pub(crate) fn cache_hit() {}
    #[inline(always)]
    pub(crate) fn fetch(_: &str, _: Result<bool, &RefreshError>, _: Duration) {}
    #[inline(always)]
    pub(crate) fn key_set(_: &str, _: usize, _: Option<Duration>) {}
    #[inline(always)]
    pub(crate) fn introspection(_: &'static str, _: Option<Duration>) {}
    #[inline(always)]
    pub(crate) fn introspection_cache_hit() {}
    #[inline(always)]
    pub(crate) fn tenant_stores(_: &str, _: usize) {}
    #[inline(always)]
    pub(crate) fn tenant_eviction(_: &str) {}
    pub(crate) const TICK: Option<Duration> = None;
}

pub(crate) use imp::{
    TICK, cache_hit, fetch, introspection, introspection_cache_hit, key_set, request, response,
    tenant_eviction, tenant_stores,
};
