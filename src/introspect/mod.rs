//! Opaque tokens: OAuth 2.0 Token Introspection (RFC 7662) beside JWTs.
//!
//! [`JwksAuth::introspection`](crate::JwksAuth::introspection) with an [`Introspection`]
//! sends the tokens that are not compact JWSs (or, with
//! [`all_tokens`](Introspection::all_tokens), every token) to the provider's
//! introspection endpoint; JWTs keep the key set path and are never behind the
//! introspection budget. Decisions, all fail-closed:
//!
//! - **The call**: `POST` with `token` and `token_type_hint=access_token`, the client
//!   authenticated with `client_secret_basic` (default) or `client_secret_post`
//!   (`private_key_jwt` is not offered); the key fetches' transport (the timeout, the
//!   body cap, no redirects, https except loopback or `Refresh::allow_http`, proxies).
//! - **The answer is judged like a token**: `active` must be exactly `true`; then the
//!   members pass the layer's rules as a JWT's claims do (`exp` required, `nbf`, `iat`,
//!   the leeway, `iss` (a multi-issuer layer's, rules included), `aud`, required claims),
//!   `scope` feeds the route layers, the claims type and the check run as for a JWT.
//!   `active: false`, anything else but `true`, or an answer that does not parse is a 401
//!   ([`AuthErrorKind::InactiveToken`]). `typ` rules apply to JWTs only.
//! - **The operator's problems are 503s**: an endpoint that is down, answers with an
//!   error status, takes longer than the timeout, sends more than the body cap, or
//!   refuses our client credentials (401/403: logged as an ERROR) is a 503 with
//!   `Retry-After` ([`AuthErrorKind::IntrospectionUnavailable`]), never an accept.
//! - **DPoP**: `cnf.jkt` in the answer binds the token as a JWT's does (RFC 9449 §6.2).
//! - **The cache** holds active answers by the token's SHA-256 digest (never the token),
//!   for at most `min(exp, now + `[`cache_for`](Introspection::cache_for)`)` (default
//!   60 s; zero: off), bounded by entries and bytes (10,000, 16 MiB); inactive answers
//!   are never cached. A cached accept can outlive a revocation by at most that maximum.
//! - **A flood of random opaque tokens is not a flood of calls**: every call takes a
//!   permit (at most [`max_concurrent`](Introspection::max_concurrent), default 16, in
//!   flight) and a token of the layer's budget ([`budget`](Introspection::budget),
//!   default a burst of 100, then 50 a second); without either, a 503 with `Retry-After`
//!   at once, never a queue.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::Url;
use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::alg::Compact;
use crate::budget::Budget;
use crate::error::{AuthError, AuthErrorKind, ConfigError, RefreshError, RefreshErrorKind};
use crate::fetch::{Transport, check_url, discover, read_capped};
use crate::json::{ClaimSet, parse_claims};
use crate::key_stores::KeyStores;

mod cache;
mod jwt;

use crate::limits::MIN_RETRY_AFTER;
use crate::metrics;
use crate::shards::lock;
use crate::status::IntrospectionStatus;
use crate::verify::{Rules, Scheme, binding, claims_into, now_secs};
pub(crate) use cache::AnswerCache;

/// Introspection settings ([`JwksAuth::introspection`](crate::JwksAuth::introspection)):
/// plain data, judged when the layer is first used.
///
/// ```
/// use std::time::Duration;
/// use jwks_auth::{Introspection, JwksAuth};
///
/// let auth = JwksAuth::from_issuer("https://idp.example.com/")
///     .audience("orders-api")
///     .introspection(
///         Introspection::new("https://idp.example.com/oauth2/introspect", "orders-api", "s3cret")
///             .cache_for(Duration::from_secs(30)),
///     );
/// ```
#[derive(Clone)]
pub struct Introspection {
    /// The endpoint's URL; `None`: from the layer's issuer's discovery document.
    url: Option<String>,
    client_id: String,
    secret: String,
    post: bool,
    all: bool,
    jwt: bool,
    cache_for: Duration,
    burst: u32,
    per_second: f64,
    concurrent: usize,
}

impl fmt::Debug for Introspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        f.debug_struct("Introspection")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("post", &self.post)
            .field("all", &self.all)
            .field("cache_for", &self.cache_for)
            .finish_non_exhaustive()
    }
}

impl Introspection {
    /// The introspection endpoint at `url`, this service authenticated as `client_id`
    /// with `client_secret` (HTTP Basic, `client_secret_basic`).
    pub fn new(
        url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Self {
            url: Some(url.into()),
            client_id: client_id.into(),
            secret: client_secret.into(),
            post: false,
            all: false,
            jwt: false,
            cache_for: INTROSPECTION_CACHE,
            burst: INTROSPECTION_BURST,
            per_second: INTROSPECTIONS_PER_SECOND,
            concurrent: INTROSPECTIONS_IN_FLIGHT,
        }
    }

    /// The endpoint named by the layer's issuer's discovery document
    /// (`introspection_endpoint`), found on the first call; for
    /// [`from_issuer`](crate::JwksAuth::from_issuer) layers only (elsewhere, a
    /// [`ConfigError`]). The document's `issuer` must be the layer's, and the endpoint
    /// passes the same transport checks as a configured one.
    pub fn discovered(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            url: None,
            ..Self::new(String::new(), client_id, client_secret)
        }
    }

    /// Send the client credentials in the form body (`client_secret_post`) instead.
    pub fn client_secret_post(mut self) -> Self {
        self.post = true;
        self
    }

    /// Ask for answers signed by the provider (RFC 9701, `Accept:
    /// application/token-introspection+jwt`) and accept only those: a JWT verified with
    /// the layer's key set (its `iss` one of the layer's issuers, `aud` this client id,
    /// `typ` `token-introspection+jwt`, `iat` within five minutes), whose
    /// `token_introspection` object is then judged as a plain answer. For providers that
    /// sign their answers (where the transport to the endpoint is not enough).
    pub fn signed_answers(mut self) -> Self {
        self.jwt = true;
        self
    }

    /// Introspect every token, JWTs included (default: only tokens that are not compact
    /// JWSs; JWTs keep the key set path).
    pub fn all_tokens(mut self) -> Self {
        self.all = true;
        self
    }

    /// The longest an active answer is reused (default 60 s; never past the token's
    /// `exp`; zero turns the cache off): how long a cached accept can outlive a
    /// revocation.
    pub fn cache_for(mut self, max: Duration) -> Self {
        self.cache_for = max;
        self
    }

    /// The layer's budget of calls: `burst` at once, then `per_second` (default 100,
    /// then 50 a second). Past it, a token that needs a call gets 503 at once.
    pub fn budget(mut self, burst: u32, per_second: f64) -> Self {
        (self.burst, self.per_second) = (burst.max(1), per_second);
        self
    }

    /// The most calls in flight at once (default 16, at least 1).
    pub fn max_concurrent(mut self, calls: usize) -> Self {
        self.concurrent = calls.max(1);
        self
    }
}

/// Defaults (see [`Introspection`]).
const INTROSPECTION_CACHE: Duration = Duration::from_secs(60);
const INTROSPECTION_BURST: u32 = 100;
const INTROSPECTIONS_PER_SECOND: f64 = 50.0;
const INTROSPECTIONS_IN_FLIGHT: usize = 16;
/// Entries of the cache of active answers.
pub(crate) const CACHE_ENTRIES: usize = 10_000;

/// The runtime form of [`Introspection`].
pub(crate) struct Introspector {
    endpoint: Endpoint,
    allow_http: bool,
    transport: Transport,
    timeout: Duration,
    client_id: String,
    secret: String,
    post: bool,
    all: bool,
    jwt: bool,
    pub(crate) cache_for: f64,
    budget: Mutex<Budget>,
    permits: Arc<Semaphore>,
    health: Mutex<IntrospectionStatus>,
}

impl fmt::Debug for Introspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspector")
            .field("endpoint", &self.endpoint)
            .field("all", &self.all)
            .finish_non_exhaustive()
    }
}

/// Where the endpoint is.
#[derive(Debug)]
enum Endpoint {
    Fixed(Url),
    /// In the discovery document of the layer's issuer, read on the first call.
    Discovered {
        issuer: String,
        issuer_url: Url,
        url: tokio::sync::OnceCell<Url>,
    },
}

/// A call the budget allows, holding its permit.
pub(crate) struct Permit(
    #[allow(dead_code, reason = "held until the call ends")] OwnedSemaphorePermit,
);

impl Introspector {
    /// Checks the endpoint URL against the transport policy and builds the client;
    /// `issuer` is the layer's discovered issuer, if it has one.
    pub(crate) fn build(
        config: &Introspection,
        (allow_http, client): (bool, Option<reqwest::Client>),
        timeout: Duration,
        issuer: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let endpoint = match (&config.url, issuer) {
            (Some(url), _) => Endpoint::Fixed(check_url(url, allow_http)?),
            (None, Some(issuer)) => Endpoint::Discovered {
                issuer: issuer.to_owned(),
                issuer_url: check_url(issuer, allow_http)?,
                url: tokio::sync::OnceCell::new(),
            },
            (None, None) => {
                return Err(ConfigError::new(
                    crate::error::ConfigErrorKind::IntrospectionEndpoint,
                ));
            }
        };
        let transport = Transport::new(client).map_err(|e| match e.kind() {
            RefreshErrorKind::Config(e) => e.clone(),
            _ => ConfigError::new(crate::error::ConfigErrorKind::InvalidUrl),
        })?;
        Ok(Self {
            endpoint,
            allow_http,
            transport,
            timeout,
            client_id: config.client_id.clone(),
            secret: config.secret.clone(),
            post: config.post,
            all: config.all,
            jwt: config.jwt,
            cache_for: config.cache_for.as_secs_f64(),
            budget: Mutex::new(Budget::new(config.burst, config.per_second)),
            permits: Arc::new(Semaphore::new(config.concurrent)),
            health: Mutex::default(),
        })
    }

    /// Whether `token` goes to introspection rather than the key set.
    pub(crate) fn takes(&self, token: &str) -> bool {
        self.all || Compact::split(token).is_none()
    }

    /// A permit and a budget token for one call, or a 503 at once.
    pub(crate) fn admit(&self) -> Result<Permit, AuthError> {
        let unavailable = |wait: Duration| {
            metrics::introspection("budget", None);
            AuthError::unavailable(AuthErrorKind::IntrospectionUnavailable, wait)
        };
        let permit = self
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| unavailable(MIN_RETRY_AFTER))?;
        lock(&self.budget)
            .take(Instant::now())
            .map_err(unavailable)?;
        Ok(Permit(permit))
    }

    /// Calls the endpoint for `token`: the answer's body, or a 503 (logged; an ERROR when
    /// our credentials are refused).
    pub(crate) async fn call(&self, token: &str, _permit: Permit) -> Result<Vec<u8>, AuthError> {
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(self.timeout, self.send(token))
            .await
            .unwrap_or_else(|_| Err(RefreshError::new(RefreshErrorKind::Timeout)));
        let mut health = lock(&self.health);
        health.calls += 1;
        match result {
            Ok(body) => {
                metrics::introspection("ok", Some(started.elapsed()));
                health.consecutive_failures = 0;
                health.last_success = Some(SystemTime::now());
                health.last_error = None;
                Ok(body)
            }
            Err(e) => {
                metrics::introspection(outcome(&e), Some(started.elapsed()));
                health.consecutive_failures = health.consecutive_failures.saturating_add(1);
                health.last_error = Some(e.to_string());
                drop(health);
                let refused = matches!(e.kind(), RefreshErrorKind::Status(401 | 403));
                crate::diagnose::per_minute(("introspection", outcome(&e)), || {
                    if refused {
                        tracing::error!(error = %e, "jwks-auth: the introspection endpoint refused this service's client credentials; answering 503 (logged once a minute)");
                    } else {
                        tracing::warn!(error = %e, "jwks-auth: the introspection endpoint did not answer; answering 503 (logged once a minute)");
                    }
                });
                Err(AuthError::unavailable(
                    AuthErrorKind::IntrospectionUnavailable,
                    MIN_RETRY_AFTER,
                ))
            }
        }
    }

    /// The call for `token`, its answer judged (with `jkt`, the proof key's thumbprint,
    /// as the binding the answer must carry), the claims into `T`, cached when active.
    pub(crate) async fn answer<T: DeserializeOwned>(
        &self,
        cache: &AnswerCache<T>,
        token: &str,
        permit: Permit,
        (rules, keys): (&Rules, &KeyStores),
        scheme: Scheme,
        jkt: Option<String>,
    ) -> Result<Arc<T>, AuthError> {
        let mut body = self.call(token, permit).await?;
        let now = now_secs();
        if self.jwt {
            body = jwt::unwrap(&body, rules, &self.client_id, keys, now).await?;
        }
        let judged = judge(body, rules, scheme, now)?;
        // A multi-issuer layer: the answer's `iss` is one it trusts (rules included).
        let iss = judged.claims.get("iss").and_then(serde_json::Value::as_str);
        if !keys.trusts(iss) {
            return Err(AuthErrorKind::InvalidIssuer.into());
        }
        if judged.meta.jkt.as_deref() != jkt.as_deref() {
            return Err(AuthErrorKind::DpopKeyMismatch.into());
        }
        let claims = Arc::new(claims_into::<T>(judged.claims, &judged.body)?);
        let kept = (judged.meta, judged.body.len());
        cache.insert(token, claims.clone(), kept, now, self.cache_for);
        Ok(claims)
    }

    /// The endpoint's URL: configured, or found once in the discovery document.
    async fn url(&self) -> Result<&Url, RefreshError> {
        match &self.endpoint {
            Endpoint::Fixed(url) => Ok(url),
            Endpoint::Discovered {
                issuer,
                issuer_url,
                url,
            } => {
                let found = discover(
                    &self.transport,
                    (issuer, issuer_url),
                    "introspection_endpoint",
                    self.allow_http,
                    self.timeout,
                );
                url.get_or_try_init(|| found).await
            }
        }
    }

    async fn send(&self, token: &str) -> Result<Vec<u8>, RefreshError> {
        let url = self.url().await?;
        let client = self.transport.client_for(url);
        let mut form = vec![("token", token), ("token_type_hint", "access_token")];
        let mut request = client.post(url.clone()).timeout(self.timeout).header(
            http::header::ACCEPT,
            if self.jwt {
                jwt::MEDIA_TYPE
            } else {
                "application/json"
            },
        );
        if self.post {
            form.push(("client_id", &self.client_id));
            form.push(("client_secret", &self.secret));
        } else {
            // RFC 6749 §2.3.1: both form-urlencoded before the Basic encoding.
            let enc = |s: &str| form_urlencoded(s);
            request = request.basic_auth(enc(&self.client_id), Some(enc(&self.secret)));
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", form_urlencoded(v)))
            .collect::<Vec<_>>()
            .join("&");
        let response = request
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| RefreshError::with_source(RefreshErrorKind::Connect, e))?;
        // A redirect is never followed (the transport's policy): a 3xx is a failure here.
        if response.status() != http::StatusCode::OK {
            return Err(RefreshError::new(RefreshErrorKind::Status(
                response.status().as_u16(),
            )));
        }
        read_capped(response).await
    }

    /// The endpoint's health, with the cache's size.
    pub(crate) fn status(&self, cache_entries: usize) -> IntrospectionStatus {
        IntrospectionStatus {
            cache_entries,
            ..lock(&self.health).clone()
        }
    }
}

/// A failed call's metrics label (a fixed set).
fn outcome(e: &RefreshError) -> &'static str {
    match e.kind() {
        RefreshErrorKind::Connect => "connect",
        RefreshErrorKind::Timeout => "timeout",
        RefreshErrorKind::Status(401 | 403) => "refused",
        RefreshErrorKind::Status(_) => "status",
        RefreshErrorKind::BodyTooLarge => "body_too_large",
        _ => "error",
    }
}

/// `application/x-www-form-urlencoded` for one value.
fn form_urlencoded(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// An active answer judged: its members (and their text), and what the cache keeps.
pub(crate) struct Judged {
    pub(crate) claims: ClaimSet,
    pub(crate) body: Vec<u8>,
    pub(crate) meta: Meta,
}

/// An active answer's `exp`, `nbf`, and the binding the scheme asks for.
#[derive(Clone)]
pub(crate) struct Meta {
    pub(crate) exp: f64,
    pub(crate) nbf: Option<f64>,
    pub(crate) jkt: Option<Box<str>>,
}

/// Judges an endpoint's answer as a token (see the module docs).
pub(crate) fn judge(
    body: Vec<u8>,
    rules: &Rules,
    scheme: Scheme,
    now: f64,
) -> Result<Judged, AuthErrorKind> {
    let claims = parse_claims(&body).map_err(|_| AuthErrorKind::InactiveToken)?;
    if claims.get("active") != Some(&serde_json::Value::Bool(true)) {
        return Err(AuthErrorKind::InactiveToken);
    }
    let (exp, nbf) = rules.check_claims(&claims, now)?;
    let jkt = binding(&claims, scheme)?;
    Ok(Judged {
        claims,
        body,
        meta: Meta { exp, nbf, jkt },
    })
}
