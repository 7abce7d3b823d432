//! [`JwksAuth`]: the layer, its constructors, and its operator handles.
//!
//! A `JwksAuth` is plain configuration (see [`config`](crate::config)) plus two lazily
//! built, shared pieces of runtime state: the key stores (with their refresh tasks) and
//! the [`Authenticator`]. Setters ([`builder`](crate::builder)) only change fields and
//! forget the runtime state they affect; the state is built on first use
//! ([`Layer::layer`], [`ready`](JwksAuth::ready), [`status`](JwksAuth::status),
//! [`verify`](JwksAuth::verify), [`refresh_now`](JwksAuth::refresh_now)), after the
//! configuration passed [`validate`](JwksAuth::validate), and shared by every clone
//! from then on.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::de::DeserializeOwned;
use tower_layer::Layer;

use crate::authenticate::Authenticator;
use crate::claims::StandardClaims;
use crate::config::{self, KeySource, RequestConfig, SourceConfig, TrustedIssuer};
use crate::error::{AuthError, AuthErrorKind, ConfigError, ReadyError, RefreshError};
use crate::key_stores::KeyStores;
use crate::service::JwksAuthService;
use crate::status::Status;

/// A [`Layer`] that verifies bearer JWTs against a JSON Web Key Set.
///
/// Requests with a valid token reach the inner service with the verified claims in
/// their extensions as [`Claims<T>`](crate::Claims); every other request is answered
/// by the layer (see the response table in the [crate docs](crate)).
///
/// `JwksAuth` is cheap plain data: setters do no I/O and no parsing, and nothing needs a
/// runtime until the layer is used. **Layers derived from one `JwksAuth` share its key
/// set and refresh task unless a setter changed the key source or how it is fetched**
/// ([`refresh`](Self::refresh)): a required layer and an `.optional()` one built from
/// the same `JwksAuth` fetch once. Clones share everything, the verified-token cache
/// included.
///
/// # Panics
///
/// Applying a misconfigured layer ([`Layer::layer`], e.g. `Router::layer`) panics with a
/// message naming the mistake and the fix, like axum's conflicting routes: see
/// [`validate`](Self::validate) to check first.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use axum::{routing::get, Router};
/// use jwks_auth::{Claims, JwksAuth, Refresh};
///
/// let auth = JwksAuth::new("https://idp.example.com/.well-known/jwks.json")
///     .issuer("https://idp.example.com/")
///     .audience("orders-api")
///     .leeway(Duration::from_secs(30))
///     .refresh(Refresh::default().interval(Duration::from_secs(600)));
///
/// let app: Router = Router::new()
///     .route("/me", get(|Claims(c): Claims| async move { c.sub.unwrap_or_default() }))
///     .route("/maybe", get(|c: Option<Claims>| async move { c.is_some().to_string() })
///         .layer(auth.clone().optional()))
///     .layer(auth);
/// ```
#[must_use = "a layer does nothing until it wraps a service"]
pub struct JwksAuth<T = StandardClaims> {
    pub(crate) source: SourceConfig,
    pub(crate) request: RequestConfig<T>,
    /// Built from `source` on first use; shared by every layer derived without a source
    /// change.
    pub(crate) keys: Arc<OnceLock<Arc<KeyStores>>>,
    /// Built from everything on first use; shared by clones.
    pub(crate) runtime: Arc<OnceLock<Runtime<T>>>,
}

/// A layer's runtime state, or why its configuration allows none.
pub(crate) type Runtime<T> = Result<Arc<Authenticator<T>>, ConfigError>;

impl<T> Clone for JwksAuth<T> {
    fn clone(&self) -> Self {
        Self {
            source: self.source.clone(),
            request: self.request.clone(),
            keys: self.keys.clone(),
            runtime: self.runtime.clone(),
        }
    }
}

impl<T> fmt::Debug for JwksAuth<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksAuth")
            .field("source", &self.source)
            .field("request", &self.request)
            .field("claims", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

impl JwksAuth<StandardClaims> {
    fn from_source(source: KeySource) -> Self {
        Self {
            source: SourceConfig::new(source),
            request: RequestConfig::default(),
            keys: Arc::default(),
            runtime: Arc::default(),
        }
    }

    /// A layer that fetches its keys from the JWKS at `url`.
    ///
    /// Infallible and cheap, and needs no runtime: the refresh task starts the first time
    /// the layer is used inside a Tokio runtime. A bad URL is a configuration error
    /// ([`validate`](Self::validate)).
    ///
    /// `url` must be `https`, except for loopback hosts; see
    /// [`Refresh::allow_http`](crate::Refresh::allow_http).
    pub fn new(url: impl Into<String>) -> Self {
        Self::from_source(KeySource::Jwks(url.into()))
    }

    /// A layer for an OpenID Connect issuer: the key set URL comes from its discovery
    /// document (`{issuer}/.well-known/openid-configuration`, then RFC 8414's
    /// `/.well-known/oauth-authorization-server`), whose `issuer` must equal `issuer`
    /// exactly; tokens' `iss` must equal it too.
    ///
    /// Accepted issuers: `issuer`, plus any added with [`issuer`](Self::issuer) (keys
    /// found through `issuer`'s document then verify tokens of those issuers too). A
    /// discovery document naming another issuer (a trailing slash counts) is a fatal
    /// error: [`ready`](Self::ready) returns it at once, naming both values.
    ///
    /// Like [`new`](Self::new), this does no I/O: discovery runs in the refresh task,
    /// is retried like a key set fetch, and runs again after a key set fetch fails (the
    /// provider may have moved its keys).
    ///
    /// # Example
    ///
    /// ```
    /// let auth = jwks_auth::JwksAuth::from_issuer("https://login.example.com/realms/acme")
    ///     .audience("orders-api");
    /// ```
    pub fn from_issuer(issuer: impl Into<String>) -> Self {
        Self::from_source(KeySource::Discover(issuer.into()))
    }

    /// A layer trusting several issuers (multi-tenant), each with its own key set and
    /// refresh task.
    ///
    /// A token's key set is chosen by its `iss`, which must equal a trusted issuer
    /// exactly; a key of one issuer never verifies a token claiming another. A token from
    /// any other issuer is rejected (401 `invalid_token`) before any key set is fetched.
    /// No issuer, or [`issuer`](Self::issuer) on such a layer, is a configuration error.
    ///
    /// # Example
    ///
    /// ```
    /// use jwks_auth::{JwksAuth, TrustedIssuer};
    ///
    /// let auth = JwksAuth::multi_issuer([
    ///     TrustedIssuer::new("https://acme.idp.example/", "https://acme.idp.example/keys"),
    ///     TrustedIssuer::discovered("https://login.example.com/zeta"),
    /// ])
    /// .audience("orders-api");
    /// ```
    pub fn multi_issuer(issuers: impl IntoIterator<Item = TrustedIssuer>) -> Self {
        Self::from_source(KeySource::Multi(issuers.into_iter().collect()))
    }

    /// A layer with a fixed key set (a JWKS document, `{"keys":[…]}`), for offline use and
    /// tests. There is no refresh task; unusable keys are skipped as for a fetched set.
    /// The document is parsed once, when the layer is first used, whatever the setters
    /// called before; a document that is not `{"keys": [...]}` is a configuration error.
    ///
    /// # Example
    ///
    /// ```
    /// let jwks = serde_json::json!({"keys": [{
    ///     "kty": "OKP", "crv": "Ed25519", "kid": "k1",
    ///     "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    /// }]});
    /// let auth = jwks_auth::JwksAuth::from_jwks(jwks);
    /// assert_eq!(auth.status().kids, ["k1"]);
    /// ```
    pub fn from_jwks(jwks: serde_json::Value) -> Self {
        Self::from_source(KeySource::Static(Arc::new(jwks)))
    }
}

impl<T> JwksAuth<T> {
    /// Changes the key source part: the key stores and the runtime are built anew.
    pub(crate) fn source_mut(&mut self) -> &mut SourceConfig {
        self.keys = Arc::default();
        self.runtime = Arc::default();
        &mut self.source
    }

    /// Changes a request option: the key stores are kept, the runtime is built anew.
    pub(crate) fn request_mut(&mut self) -> &mut RequestConfig<T> {
        self.runtime = Arc::default();
        &mut self.request
    }

    /// The key stores, built on first use.
    fn keys(&self) -> &Arc<KeyStores> {
        self.keys.get_or_init(|| Arc::new(self.source.build()))
    }

    /// Checks the configuration, with no I/O: the same judgement as applying the layer,
    /// as a `Result` for those who check first. What needs I/O (the key set) is
    /// [`ready`](Self::ready)'s.
    ///
    /// # Errors
    ///
    /// The configuration mistake, whose message names the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        config::validate(&self.request, &self.source).map(drop)
    }

    /// Waits until the first key set is loaded.
    ///
    /// # Errors
    ///
    /// Returns an error at once if a key set is impossible: a configuration error, an
    /// HTTP client that cannot be built, or a discovery document that names another
    /// issuer. Keeps waiting through fetch failures otherwise: bound it with
    /// [`ready_within`](Self::ready_within) or a timeout.
    pub async fn ready(&self) -> Result<(), ReadyError> {
        self.wait_ready(None).await
    }

    /// Like [`ready`](Self::ready), but gives up after `limit`; the error then carries
    /// the last refresh error.
    ///
    /// # Errors
    ///
    /// As [`ready`](Self::ready), and when no key set arrived within `limit`.
    pub async fn ready_within(&self, limit: Duration) -> Result<(), ReadyError> {
        self.wait_ready(Some(limit)).await
    }

    async fn wait_ready(&self, limit: Option<Duration>) -> Result<(), ReadyError> {
        self.validate().map_err(ReadyError::Config)?;
        self.keys().ready(limit).await
    }

    /// The layer's health: its key sets (key ids, last success, last error, staleness;
    /// for a multi-issuer layer combined, and each issuer's in
    /// [`Status::issuers`]) and its verified-token cache.
    pub fn status(&self) -> Status {
        let keys = self.keys();
        let mut statuses = keys.iter().map(|store| store.status());
        let first = statuses.next().unwrap_or_else(Status::empty);
        let mut status = statuses.fold(first, Status::combine);
        status.issuers = keys.issuer_statuses();
        if let Some(tenants) = keys.tenants(0) {
            (status.tenant_stores, status.tenant_evictions) = (tenants.live, tenants.evictions);
            status.lazy = keys.iter().next().is_none();
        }
        if let Some(Ok(runtime)) = self.runtime.get() {
            (status.cache_entries, status.cache_bytes) = runtime.cache_usage();
            status.introspection = runtime.introspection_status();
        }
        status
    }

    /// The Protected Resource Metadata document (RFC 9728) of this layer's
    /// [`protected_resource`](Self::protected_resource), served unauthenticated at
    /// `/.well-known/oauth-protected-resource` and at its path-inserted form
    /// (`/.well-known/oauth-protected-resource/mcp` for `https://host/mcp`): merge it into
    /// your router outside the auth layer. Without metadata, an empty router.
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use jwks_auth::{JwksAuth, ResourceMetadata};
    ///
    /// let auth = JwksAuth::from_issuer("https://auth.example.com/").protected_resource(
    ///     ResourceMetadata::new("https://api.example.com/mcp")
    ///         .authorization_servers(["https://auth.example.com/"]),
    /// );
    /// let app: Router = Router::new()
    ///     .route("/mcp", get(|| async { "tools" }))
    ///     .layer(auth.clone())
    ///     .merge(auth.resource_metadata_router());
    /// ```
    pub fn resource_metadata_router(&self) -> axum::Router {
        let Some(metadata) = &self.request.resource else {
            return axum::Router::new();
        };
        let methods: Vec<&str> = self
            .request
            .sources
            .iter()
            .filter_map(|s| match s {
                crate::TokenSource::Bearer => Some("header"),
                crate::TokenSource::Query(_) => Some("query"),
                _ => None,
            })
            .collect();
        let dpop = self.request.dpop.as_ref().map(crate::Dpop::advertised);
        let dpop = dpop
            .as_ref()
            .map(|(algs, required)| (algs.as_slice(), *required));
        let document = metadata.document(&methods, dpop);
        crate::resource::router(&metadata.resource, document)
    }

    /// Forces a key set refresh now (joining one in flight, ignoring the cooldown) and
    /// waits for it, bounded by the fetch timeout.
    ///
    /// # Errors
    ///
    /// The refresh error, if the refresh failed; the last good key set is kept.
    pub async fn refresh_now(&self) -> Result<(), RefreshError> {
        self.keys().refresh_now().await
    }
}

impl<T> JwksAuth<T>
where
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// The runtime state, built on first use, or the configuration mistake.
    fn runtime(&self) -> &Runtime<T> {
        self.runtime.get_or_init(|| {
            let valid = config::validate(&self.request, &self.source)?;
            let runtime = Authenticator::new(&self.request, valid, self.keys().clone());
            Ok(Arc::new(runtime))
        })
    }

    /// Verifies a token outside of HTTP (a WebSocket message, a queued job): the same
    /// rules, key selection, refresh behaviour, cache and check as the layer, returning
    /// the claims.
    ///
    /// It completes without waiting when the token's key is in the current key set; it
    /// waits (bounded by the fetch timeout) only for the first key set or a forced refresh.
    ///
    /// # Errors
    ///
    /// The [`AuthError`] the layer would have answered with; for a misconfigured layer,
    /// [`AuthErrorKind::Misconfigured`](crate::AuthErrorKind::Misconfigured).
    pub async fn verify(&self, token: &str) -> Result<T, AuthError> {
        let auth = match self.runtime() {
            Ok(auth) => auth,
            Err(e) => {
                tracing::error!(error = %e, "jwks-auth: verify() on a misconfigured layer");
                return Err(AuthErrorKind::Misconfigured.into());
            }
        };
        auth.start();
        let claims = auth.verify(token).await?;
        // Shared with the cache: a copy, unless nothing else holds it.
        Ok(Arc::try_unwrap(claims).unwrap_or_else(|shared| T::clone(&shared)))
    }
}

impl<S, T> Layer<S> for JwksAuth<T>
where
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Service = JwksAuthService<S, T>;

    /// # Panics
    ///
    /// When the configuration is wrong (see [`JwksAuth::validate`]): the message names
    /// the mistake and the fix.
    fn layer(&self, inner: S) -> Self::Service {
        match self.runtime() {
            Ok(auth) => {
                auth.start();
                JwksAuthService::new(inner, auth.clone())
            }
            Err(e) => panic!("jwks-auth: the layer is misconfigured: {e}"),
        }
    }
}
