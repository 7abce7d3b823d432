//! The setters of [`JwksAuth`]: each changes one field of the plain configuration and
//! returns the layer. None does I/O, parses, or needs a runtime; none can fail (a
//! configuration mistake is reported at first use, by [`ready`](JwksAuth::ready) and by
//! 503 answers, never by a panic).

use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use http::{HeaderMap, HeaderName, Uri};

use crate::alg::{AlgSet, Algorithm};
use crate::config::{KeySource, Tenant};
use crate::dpop::Dpop;
use crate::error::{AuthError, sanitize_realm};
use crate::layer::JwksAuth;
use crate::limits::MIN_REFRESH_INTERVAL;
use crate::respond::Rejector;
use crate::token::{TokenFn, TokenSource};

impl<T> JwksAuth<T> {
    /// Deserialize verified claims into `U` instead of [`StandardClaims`](crate::StandardClaims);
    /// handlers then take [`Claims<U>`](crate::Claims). A token whose payload does not fit
    /// `U` is rejected with 401 `invalid_token`.
    ///
    /// Choose the claims type before adding a [`check`](Self::check): a check is typed
    /// over the claims type, so `claims::<U>()` after `check(..)` would lose it. That
    /// order is a configuration error ([`ConfigErrorKind::CheckBeforeClaims`](crate::ConfigErrorKind::CheckBeforeClaims)):
    /// `ready()` returns it and every request gets 503. A security check is never dropped
    /// silently.
    pub fn claims<U>(self) -> JwksAuth<U>
    where
        U: serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
    {
        JwksAuth {
            source: self.source,
            request: self.request.retype(),
            keys: self.keys,
            runtime: Arc::default(),
        }
    }

    /// A check on every verified token's claims, after the signature and the standard
    /// rules. Return an [`AuthError`] to reject: `AuthErrorKind::AccessDenied.into()` or
    /// [`AuthError::insufficient_scope`] for 403, `AuthErrorKind::InvalidClaims.into()`
    /// for 401. Cached tokens are checked at every hit. A second call replaces the first.
    ///
    /// # Example
    ///
    /// ```
    /// use jwks_auth::{AuthErrorKind, JwksAuth};
    ///
    /// let auth = JwksAuth::new("https://idp.example/jwks.json").check(|claims| {
    ///     match claims.extra.get("email_verified") {
    ///         Some(serde_json::Value::Bool(true)) => Ok(()),
    ///         _ => Err(AuthErrorKind::AccessDenied.into()),
    ///     }
    /// });
    /// ```
    pub fn check<F>(mut self, check: F) -> Self
    where
        F: Fn(&T) -> Result<(), AuthError> + Send + Sync + 'static,
    {
        self.request_mut().check = Some(Arc::new(check));
        self
    }

    /// Also take the token from the cookie `name` (browser sessions). The bearer header
    /// stays a source unless [`bearer_header(false)`](Self::bearer_header). Only this
    /// cookie is read: other cookies, whatever their bytes, never change the answer.
    pub fn token_from_cookie(mut self, name: impl Into<String>) -> Self {
        let source = TokenSource::Cookie(name.into());
        self.request_mut().sources.push(source);
        self
    }

    /// Also take the token from the header `name` (the raw token, or `Bearer <token>`),
    /// e.g. `HeaderName::from_static("x-api-token")`.
    pub fn token_from_header(mut self, name: HeaderName) -> Self {
        self.request_mut().sources.push(TokenSource::Header(name));
        self
    }

    /// Also take the token from the query parameter `name`. Off unless called: tokens in
    /// URLs leak into logs, browser history and `Referer` headers (RFC 6750 §5.3).
    pub fn token_from_query(mut self, name: impl Into<String>) -> Self {
        let source = TokenSource::Query(name.into());
        self.request_mut().sources.push(source);
        self
    }

    /// Also take the token from what `find` returns for the request's headers and URI.
    pub fn token_from<F>(mut self, find: F) -> Self
    where
        F: Fn(&HeaderMap, &Uri) -> Option<String> + Send + Sync + 'static,
    {
        let find: TokenFn = Arc::new(find);
        self.request_mut().sources.push(TokenSource::Custom(find));
        self
    }

    /// Whether `Authorization: Bearer` is a token source (default `true`). With `false`
    /// and no other source, every request lacks credentials.
    pub fn bearer_header(mut self, enabled: bool) -> Self {
        let sources = &mut self.request_mut().sources;
        sources.retain(|s| !matches!(s, TokenSource::Bearer));
        if enabled {
            sources.insert(0, TokenSource::Bearer);
        }
        self
    }

    /// Replace the rejection response. The function gets the [`AuthError`]; start from
    /// [`AuthError::response_with_body`] (keeps the status, `WWW-Authenticate`,
    /// `Cache-Control` and `Retry-After`) or [`AuthError::default_response`]. The error is
    /// put in the response's extensions either way. Route layers
    /// ([`Authorize`](crate::Authorize), [`RequireScope`](crate::RequireScope)) behind this
    /// layer answer their 401s and 403s with it too.
    ///
    /// # Example
    ///
    /// ```
    /// use jwks_auth::{AuthError, JwksAuth};
    ///
    /// let auth = JwksAuth::new("https://idp.example/jwks.json").on_rejection(|err: &AuthError| {
    ///     err.response_with_body(axum::Json(serde_json::json!({
    ///         "code": err.kind().as_str(),
    ///         "message": err.to_string(),
    ///     })))
    /// });
    /// ```
    pub fn on_rejection<F>(mut self, respond: F) -> Self
    where
        F: Fn(&AuthError) -> Response + Send + Sync + 'static,
    {
        let respond: Rejector = Arc::new(respond);
        self.request_mut().on_rejection = Some(respond);
        self
    }

    /// Trust `issuer`, whose keys are at `jwks_url` ([`multi_issuer`](Self::multi_issuer)
    /// layers only; on a layer with a single key source this is a configuration error).
    pub fn trust_issuer(self, issuer: impl Into<String>, jwks_url: impl Into<String>) -> Self {
        self.trust(Tenant {
            issuer: issuer.into(),
            jwks: Some(jwks_url.into()),
        })
    }

    /// Trust `issuer`, finding its keys through its discovery document, as
    /// [`from_issuer`](Self::from_issuer) does ([`multi_issuer`](Self::multi_issuer) layers only).
    pub fn trust_discovered_issuer(self, issuer: impl Into<String>) -> Self {
        self.trust(Tenant {
            issuer: issuer.into(),
            jwks: None,
        })
    }

    fn trust(mut self, tenant: Tenant) -> Self {
        let source = self.source_mut();
        match &mut source.source {
            KeySource::Multi(tenants) => tenants.push(tenant),
            _ => source.mixed = true,
        }
        self
    }

    /// Accept this issuer (`iss` must equal it exactly). Call again to accept several.
    /// Defaults to no `iss` check (to the discovered issuer for
    /// [`from_issuer`](Self::from_issuer)). A configuration error on a
    /// [`multi_issuer`](Self::multi_issuer) layer, whose issuers are the trusted ones.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        self.request_mut().rules.issuers.push(issuer);
        self
    }

    /// Accept this audience (`aud`, a string or an array, must contain it). Call again to
    /// accept several. Defaults to no `aud` check.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        let audience = audience.into();
        self.request_mut().rules.audiences.push(audience);
        self
    }

    /// Replace the algorithm allow-list. Symmetric algorithms and `none` are not
    /// [`Algorithm`]s: they can never be allowed with a public key set. An empty list is
    /// a configuration error. Defaults to [`DEFAULT_ALGORITHMS`](crate::DEFAULT_ALGORITHMS).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.request_mut().rules.algorithms = AlgSet::from_algs(algorithms);
        self
    }

    /// Clock skew tolerated on `exp` and `nbf`. Defaults to 60 s.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.request_mut().rules.leeway = leeway;
        self
    }

    /// Require the header's `typ` to be this (compared case-insensitively, the
    /// `application/` prefix optional), e.g. `"at+jwt"` for RFC 9068 access tokens.
    /// Defaults to no check.
    pub fn require_typ(mut self, typ: impl Into<String>) -> Self {
        self.request_mut().rules.typ = Some(typ.into());
        self
    }

    /// Require these claims to be present. A claim whose value is `null` counts as
    /// missing (401 `invalid_token`, "the token lacks a required claim"). `exp` is always
    /// required.
    pub fn require_claims<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names = names.into_iter().map(Into::into);
        self.request_mut().rules.required_claims.extend(names);
        self
    }

    /// Largest token accepted, in bytes, checked before any decoding. Defaults to 16 KiB.
    pub fn max_token_len(mut self, bytes: usize) -> Self {
        self.request_mut().rules.max_token_len = bytes;
        self
    }

    /// Time between periodic refreshes (±10 % jitter); also the cap of the failure
    /// backoff. Defaults to 5 minutes; at least 1 s.
    ///
    /// An interval set here is an upper bound: a `Cache-Control: max-age` from the
    /// identity provider may make refreshes more frequent (never below a minute), never
    /// rarer, so a key withdrawn at the provider stops verifying within this interval.
    /// (With the default interval, `max-age` is followed up to 24 hours.)
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        let timing = &mut self.source_mut().timing;
        timing.refresh_interval = interval.max(MIN_REFRESH_INTERVAL);
        timing.interval_explicit = true;
        self
    }

    /// Minimum time between two refreshes forced by unknown `kid`s. Defaults to 30 s;
    /// values under [`MIN_COOLDOWN`](crate::limits::MIN_COOLDOWN) (1 s, zero included)
    /// are raised to it, so a flood of unknown `kid`s stays bounded.
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.source_mut().timing.cooldown = cooldown;
        self
    }

    /// How long the last good key set may be used without a successful refresh; after
    /// that, requests get 503. Defaults to 24 hours.
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.source_mut().timing.max_stale = max_stale;
        self
    }

    /// Bound on one key set fetch (connect, headers and body), and so on how long a
    /// request waits for a refresh. Defaults to 5 s.
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.source_mut().timing.fetch_timeout = timeout;
        self
    }

    /// Use this HTTP client for key set fetches instead of the default one (rustls,
    /// connect timeout 2 s, no redirects, proxies from the environment except for
    /// loopback URLs). The fetch timeout and body cap still apply; redirect and proxy
    /// policy are the client's.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.source_mut().client = Some(client);
        self
    }

    /// Allow a plain `http` key set URL for hosts that are not loopback. Off by default:
    /// keys fetched over plain HTTP can be replaced by anyone on the path.
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.source_mut().allow_http = allow;
        self
    }

    /// Add `realm="…"` to every challenge (the layer's, and those of the route layers
    /// behind it). Characters that would need escaping are removed.
    pub fn realm(mut self, realm: impl AsRef<str>) -> Self {
        self.request_mut().realm = Some(sanitize_realm(realm.as_ref()));
        self
    }

    /// Let requests without credentials through, without claims (handlers take
    /// `Option<Claims<T>>`). A token that is present but bad is still rejected.
    pub fn optional(mut self) -> Self {
        self.request_mut().optional = true;
        self
    }

    /// Cache up to `max_entries` verified tokens, so that a token seen again skips parsing
    /// and the signature check; `0` turns the cache off. On by default with
    /// [`CACHE_ENTRIES`](crate::limits::CACHE_ENTRIES) (10,000) entries.
    ///
    /// A hit compares the whole token, re-checks `exp`/`nbf`, requires the key that
    /// verified it to still be in the key set, and runs the [`check`](Self::check) again;
    /// see the [cache notes](crate#verified-token-cache). Memory: at most `max_entries`
    /// entries and [`CACHE_BYTES`](crate::limits::CACHE_BYTES) (16 MiB) of tokens, plus
    /// their claims.
    pub fn cache(mut self, max_entries: usize) -> Self {
        self.request_mut().cache = max_entries;
        self
    }

    /// Turn the verified-token cache off: every request verifies its token in full.
    pub fn no_cache(self) -> Self {
        self.cache(0)
    }

    /// Accept DPoP-bound tokens (RFC 9449): `Authorization: DPoP <token>` with a fresh
    /// proof in the `DPoP` header, checked on every request (the token may come from the
    /// cache, the proof never does) and recorded in a replay store. Off by default.
    ///
    /// [`Dpop::allowed`] also takes bearer tokens; [`Dpop::required`] takes only
    /// DPoP-bound ones. Either way a bound token (`cnf.jkt`) sent as a bearer token is
    /// refused. Nothing is checked here: a missing base URL is a [`ConfigError`](crate::ConfigError)
    /// when the layer is first used.
    ///
    /// ```
    /// use jwks_auth::{Dpop, JwksAuth};
    ///
    /// let auth = JwksAuth::from_issuer("https://idp.example")
    ///     .dpop(Dpop::required().base_url("https://api.example.com"));
    /// ```
    pub fn dpop(mut self, dpop: Dpop) -> Self {
        self.request_mut().dpop = Some(dpop);
        self
    }
}
