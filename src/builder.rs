//! The setters of [`JwksAuth`]: each changes one field of the plain configuration and
//! returns the layer. None does I/O, parses, or needs a runtime; none can fail: the
//! configuration is judged as a whole, in one place, by [`validate`](JwksAuth::validate)
//! (and when the layer is applied), so the order of the calls never drops a check.

use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;

use crate::alg::{AlgSet, Algorithm};
use crate::config::Refresh;
use crate::dpop::Dpop;
use crate::error::{AuthError, sanitize_realm};
use crate::layer::JwksAuth;
use crate::respond::Rejector;
use crate::token::TokenSource;

impl<T> JwksAuth<T> {
    /// Deserialize verified claims into `U` instead of [`StandardClaims`](crate::StandardClaims);
    /// handlers then take [`Claims<U>`](crate::Claims). A token whose payload does not fit
    /// `U` is rejected with 401 `invalid_claims` (no detail to the client); the log gets a
    /// WARN naming the field and serde's reason (never the value), at most once a minute
    /// per distinct reason.
    ///
    /// Choose the claims type before adding a [`check`](Self::check): a check is typed
    /// over the claims type, so `claims::<U>()` after `check(..)` would lose it. That
    /// order is a configuration error ([`ConfigErrorKind::CheckBeforeClaims`](crate::ConfigErrorKind::CheckBeforeClaims)):
    /// [`validate`](Self::validate) returns it and applying the layer panics naming it. A
    /// security check is never dropped silently.
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
    /// let auth = JwksAuth::from_issuer("https://idp.example").audience("api").check(|claims| {
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

    /// Where the token is taken from, replacing the default (`Authorization: Bearer`
    /// only). Every source is read; two carrying different tokens are a malformed request
    /// (400). See [`TokenSource`].
    ///
    /// ```
    /// use jwks_auth::{JwksAuth, TokenSource};
    ///
    /// let auth = JwksAuth::new("https://idp.example/jwks.json")
    ///     .token_sources([TokenSource::Bearer, TokenSource::Cookie("session".into())]);
    /// ```
    pub fn token_sources(mut self, sources: impl IntoIterator<Item = TokenSource>) -> Self {
        self.request_mut().sources = sources.into_iter().collect();
        self
    }

    /// Replace the rejection response's body (or more). The function gets the
    /// [`AuthError`] and returns anything that is [`IntoResponse`], e.g. a
    /// `(StatusCode, Json(..))` or a plain `Json(..)`. What it leaves unset is kept from
    /// the default: the status (when it answers 200), `WWW-Authenticate`,
    /// `Cache-Control`, `Retry-After` and `DPoP-Nonce`; the error rides in the response's
    /// extensions either way. The route layers behind this layer, and handlers returning
    /// an [`AuthError`], are answered with it too. gRPC calls always get gRPC statuses.
    ///
    /// # Example
    ///
    /// ```
    /// use jwks_auth::{AuthError, JwksAuth};
    ///
    /// let auth = JwksAuth::from_issuer("https://idp.example").audience("api").on_rejection(|err: &AuthError| {
    ///     axum::Json(serde_json::json!({
    ///         "code": err.kind().as_str(),
    ///         "message": err.to_string(),
    ///     }))
    /// });
    /// ```
    pub fn on_rejection<F, R>(mut self, respond: F) -> Self
    where
        F: Fn(&AuthError) -> R + Send + Sync + 'static,
        R: IntoResponse,
    {
        let respond: Rejector = Arc::new(move |err: &AuthError| respond(err).into_response());
        self.request_mut().on_rejection = Some(respond);
        self
    }

    /// Accept this issuer (`iss` must equal it exactly). Call again to accept several.
    /// Required for [`new`](Self::new) and [`from_jwks`](Self::from_jwks) layers (or
    /// [`accept_any_issuer`](Self::accept_any_issuer)); [`from_issuer`](Self::from_issuer)
    /// binds the discovered issuer. A configuration error on a
    /// [`multi_issuer`](Self::multi_issuer) layer, whose issuers are the trusted ones.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        self.request_mut().rules.issuers.push(issuer);
        self
    }

    /// Accept this audience (`aud`, a string or an array, must contain it). Call again to
    /// accept several. Required (or [`accept_any_audience`](Self::accept_any_audience)):
    /// without it, a token your provider issued for another API, or an ID token, would
    /// be accepted.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        let audience = audience.into();
        self.request_mut().rules.audiences.push(audience);
        self
    }

    /// Give up the audience check: tokens issued for any audience (another API of the
    /// same provider, its ID tokens) are accepted. Only for a provider that issues
    /// tokens for this service alone. An [`audience`](Self::audience) given as well is
    /// still checked.
    pub fn accept_any_audience(mut self) -> Self {
        self.request_mut().any_audience = true;
        self
    }

    /// Give up the issuer check of a [`new`](Self::new) or [`from_jwks`](Self::from_jwks)
    /// layer: a token claiming any issuer is accepted if its key is in the set. An
    /// [`issuer`](Self::issuer) given as well is still checked.
    pub fn accept_any_issuer(mut self) -> Self {
        self.request_mut().any_issuer = true;
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

    /// How the key set is fetched and kept fresh (intervals, timeouts, plain `http`, the
    /// HTTP client): see [`Refresh`]. A new key store and refresh task for this layer
    /// and those derived from it.
    pub fn refresh(mut self, refresh: Refresh) -> Self {
        self.source_mut().refresh = refresh;
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

    /// Accept DPoP-bound tokens (RFC 9449): `Authorization: DPoP <token>` with a fresh
    /// proof in the `DPoP` header, checked on every request (the token may come from the
    /// cache, the proof never does) and recorded in a replay store. Off by default.
    ///
    /// [`Dpop::allowed`] also takes bearer tokens; [`Dpop::required`] takes only
    /// DPoP-bound ones. Either way a bound token (`cnf.jkt`) sent as a bearer token is
    /// refused. Nothing is checked here: a missing base URL is a [`ConfigError`](crate::ConfigError)
    /// when the layer is validated or applied.
    ///
    /// DPoP on some routes only: give those routes their own layer, next to (never
    /// inside) the bearer layer, both from one `JwksAuth` (one key set, one task). A
    /// DPoP layer nested inside a layer without DPoP is never reached by a DPoP request:
    /// the outer layer answers it first as having no credentials (401, its `Bearer`
    /// challenge, RFC 9449 §7.2).
    ///
    /// ```
    /// use axum::{routing::{get, post}, Router};
    /// use jwks_auth::{Dpop, JwksAuth};
    ///
    /// let auth = JwksAuth::from_issuer("https://idp.example").audience("api");
    /// let app: Router = Router::new()
    ///     .route("/payments", post(|| async { "paid" }))
    ///     .layer(auth.clone().dpop(Dpop::required().base_url("https://api.example.com")))
    ///     .merge(Router::new().route("/me", get(|| async { "me" })).layer(auth));
    /// ```
    pub fn dpop(mut self, dpop: Dpop) -> Self {
        self.request_mut().dpop = Some(dpop);
        self
    }

    /// Verify opaque tokens (or every token) with the provider's introspection endpoint
    /// (RFC 7662), beside the key set path: see [`Introspection`](crate::Introspection)
    /// for what is sent, how the answer is judged (like a token's claims, into this
    /// layer's claims type), the cache and the budget. A second call replaces the first.
    pub fn introspection(mut self, introspection: crate::Introspection) -> Self {
        self.request_mut().introspection = Some(introspection);
        self
    }

    /// This API's Protected Resource Metadata (RFC 9728, the MCP authorization spec):
    /// every challenge names the metadata document (`resource_metadata`), a 401 without
    /// credentials names the scopes supported, and the resource identifier becomes the
    /// required audience unless [`audience`](Self::audience) gives one. Serve the
    /// document with [`resource_metadata_router`](Self::resource_metadata_router). See
    /// [`ResourceMetadata`](crate::ResourceMetadata).
    pub fn protected_resource(mut self, metadata: crate::ResourceMetadata) -> Self {
        self.request_mut().resource = Some(metadata);
        self
    }

    /// Which scopes imply others (e.g. `mcp:admin` ⊇ `mcp:write` ⊇ `mcp:read`), honoured
    /// by this layer's route layers ([`require_scopes`](Self::require_scopes),
    /// [`require_any_scope`](Self::require_any_scope)) whatever the order of the calls;
    /// in handlers, pass it to [`Scopes::require_scopes_in`](crate::Scopes::require_scopes_in).
    pub fn scope_hierarchy(mut self, hierarchy: crate::ScopeHierarchy) -> Self {
        self.request_mut().scopes = Some(std::sync::Arc::new(hierarchy));
        self
    }
}
