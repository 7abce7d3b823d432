//! [`JwksAuth`]: the layer, its builder methods and its operator handles.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use tower_layer::Layer;

use std::any::Any;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, Uri};
use serde::de::DeserializeOwned;

use crate::cache::{Provenance, TokenCache};
use crate::claims::{Claims, StandardClaims};
use crate::error::{
    AuthError, AuthErrorKind, ConfigError, ConfigErrorKind, ReadyError, RefreshError,
    sanitize_realm,
};
use crate::fetch;
use crate::keys::KeySet;
use crate::refresh::{KeyStore, Source, Status, Target, Timing, Verdict};
use crate::service::JwksAuthService;
use crate::token::{TokenFn, TokenSource};
use crate::verify::{AlgSet, Checked, KeyStep, Rules, now_secs};

/// Everything the builder methods set. Cloned into a fresh [`KeyStore`] by each method,
/// so a configuration change never affects a layer already in use.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) url: Option<String>,
    pub(crate) discover: Option<String>,
    pub(crate) static_keys: Option<Arc<serde_json::Value>>,
    pub(crate) rules: Rules,
    pub(crate) timing: Timing,
    pub(crate) allow_http: bool,
    pub(crate) client: Option<reqwest::Client>,
    pub(crate) realm: Option<Arc<str>>,
    pub(crate) optional: bool,
    pub(crate) cache: Option<usize>,
    pub(crate) on_rejection: Option<Rejector>,
    pub(crate) check: Option<Checker>,
    pub(crate) sources: Vec<TokenSource>,
    /// `Some` for a [`JwksAuth::multi_issuer`] layer: the trusted issuers.
    pub(crate) tenants: Option<Vec<Tenant>>,
}

/// One issuer trusted by a multi-issuer layer.
#[derive(Clone, Debug)]
pub(crate) struct Tenant {
    issuer: String,
    /// The JWKS URL, or `None` to use the issuer's discovery document.
    jwks: Option<String>,
}

/// A user's replacement for rejection responses.
pub(crate) type Rejector = Arc<dyn Fn(&AuthError) -> Response + Send + Sync>;

/// Rides in the extensions of accepted requests when the layer has an
/// [`on_rejection`](JwksAuth::on_rejection) handler, so that [`Authorize`](crate::Authorize)
/// route layers answer in the same format.
#[derive(Clone)]
pub(crate) struct RejectionHook(pub(crate) Rejector);

impl RejectionHook {
    pub(crate) fn respond(&self, error: AuthError) -> Response {
        let mut response = (self.0)(&error);
        response.extensions_mut().insert(error);
        response
    }
}
/// A user's check on verified claims (type-erased; see [`JwksAuth::check`]).
pub(crate) type Checker = Arc<dyn Fn(&dyn Any) -> Result<(), AuthError> + Send + Sync>;

/// Shared by the layer, its services and (weakly) the refresh task.
pub(crate) struct Inner {
    /// One key store, with no issuer, or one per trusted issuer (multi-issuer).
    pub(crate) stores: Vec<(Option<String>, Arc<KeyStore>)>,
    pub(crate) rules: Rules,
    pub(crate) realm: Option<Arc<str>>,
    pub(crate) optional: bool,
    pub(crate) cache: Option<TokenCache>,
    pub(crate) on_rejection: Option<Rejector>,
    pub(crate) check: Option<Checker>,
    pub(crate) sources: Vec<TokenSource>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field("stores", &self.stores)
            .field("rules", &self.rules)
            .field("optional", &self.optional)
            .field("cache", &self.cache)
            .field("on_rejection", &self.on_rejection.is_some())
            .field("check", &self.check.is_some())
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

/// A verified token's claims and how they were verified (for the cache).
struct Verified<T> {
    claims: T,
    provenance: Provenance,
}

fn finish<T: DeserializeOwned>(
    checked: Checked<'_>,
    keys: &KeySet,
    store: usize,
) -> Result<Verified<T>, KeyStep> {
    let key = checked.verify_signature(keys)?;
    let provenance = Provenance {
        exp: checked.exp,
        nbf: checked.nbf,
        kid: key.kid.clone(),
        key_id: key.id,
        store,
    };
    let claims = checked.into_claims::<T>().map_err(KeyStep::Reject)?;
    Ok(Verified { claims, provenance })
}

impl Inner {
    /// The request path: no lock (but the cache's, when enabled), no await. `Wait` when
    /// the token needs the first key set or a forced refresh.
    pub(crate) fn verify_now<T>(&self, token: &str) -> Verdict<Claims<T>>
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let now = now_secs();
        if let Some(cache) = &self.cache {
            let leeway = self.rules.leeway.as_secs_f64();
            let key_present = |p: &Provenance| {
                self.stores.get(p.store).is_some_and(|(_, store)| {
                    store
                        .with_fresh_keys(|keys| {
                            keys.contains(p.kid.as_deref(), p.key_id).then_some(())
                        })
                        .is_some()
                })
            };
            if let Some(claims) = cache.get::<T>(token, now, leeway, key_present) {
                return self.checked(Claims(claims)).into();
            }
        }
        let checked = match self.rules.check(token, now) {
            Ok(checked) => checked,
            Err(kind) => return Verdict::Reject(kind.into()),
        };
        // Multi-issuer: the key set is chosen by `iss` (already one of the trusted ones),
        // so a key of one issuer never verifies a token claiming another.
        let Some((index, store)) = self.store_for(checked.issuer()) else {
            return Verdict::Reject(AuthErrorKind::InvalidIssuer.into());
        };
        match store.verify(checked, |c, keys| finish::<T>(c, keys, index), true) {
            Verdict::Accept(verified) => self.checked(self.remember(token, verified, now)).into(),
            Verdict::Reject(e) => Verdict::Reject(e),
            Verdict::Wait => Verdict::Wait,
        }
    }

    /// The key store for a token's issuer.
    fn store_for(&self, iss: Option<&str>) -> Option<(usize, &Arc<KeyStore>)> {
        match self.stores.as_slice() {
            [(None, store)] => Some((0, store)),
            stores => stores
                .iter()
                .position(|(issuer, _)| issuer.as_deref() == iss && iss.is_some())
                .map(|i| (i, &stores[i].1)),
        }
    }

    pub(crate) fn ensure_started(&self) {
        for (_, store) in &self.stores {
            store.ensure_started();
        }
    }

    /// Runs the user's [`check`](JwksAuth::check), if any, on verified claims.
    fn checked<T: 'static>(&self, claims: Claims<T>) -> Result<Claims<T>, AuthError> {
        match &self.check {
            Some(check) => check(&claims.0).map(|()| claims),
            None => Ok(claims),
        }
    }

    /// The response to a rejection: the user's, or the RFC 6750 default. Either way the
    /// [`AuthError`] rides in the extensions.
    pub(crate) fn respond(&self, error: AuthError) -> Response {
        tracing::debug!(kind = ?error.kind(), "jwks-auth: request rejected");
        let error = error.with_realm(self.realm.as_ref());
        match &self.on_rejection {
            Some(custom) => RejectionHook(custom.clone()).respond(error),
            None => error.into_response(),
        }
    }

    /// Puts the claims, and the rejection hook if any, in an accepted request.
    pub(crate) fn admit<T: Clone + Send + Sync + 'static, B>(
        &self,
        req: &mut http::Request<B>,
        claims: Claims<T>,
    ) {
        req.extensions_mut().insert(claims);
        if let Some(custom) = &self.on_rejection {
            req.extensions_mut().insert(RejectionHook(custom.clone()));
        }
    }

    /// The slow path: wait for keys as the refresh gate allows, then verify once more.
    pub(crate) async fn verify_after_wait<T>(
        self: Arc<Self>,
        token: String,
    ) -> Result<Claims<T>, AuthError>
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let (index, store) = {
            let checked = self.rules.check(&token, now_secs())?;
            let (index, store) = self
                .store_for(checked.issuer())
                .ok_or_else(|| AuthError::from(AuthErrorKind::InvalidIssuer))?;
            (index, store.clone())
        };
        store.wait_for_keys().await;
        let now = now_secs();
        let checked = self.rules.check(&token, now)?;
        let verified = match store.verify(checked, |c, keys| finish::<T>(c, keys, index), false) {
            Verdict::Accept(verified) => verified,
            Verdict::Reject(e) => return Err(e),
            // Not returned without `may_wait`; fail closed all the same.
            Verdict::Wait => return Err(AuthErrorKind::UnknownKey.into()),
        };
        self.checked(self.remember(&token, verified, now))
    }

    fn remember<T: Clone + Send + Sync + 'static>(
        &self,
        token: &str,
        verified: Verified<T>,
        now: f64,
    ) -> Claims<T> {
        if let Some(cache) = &self.cache {
            cache.insert(token, &verified.claims, verified.provenance, now);
        }
        Claims(verified.claims)
    }
}

impl Config {
    /// A remote target: the JWKS URL if given, else discovery for `issuer`.
    fn target(&self, jwks: Option<&str>, issuer: Option<&str>) -> Result<Target, ConfigError> {
        match (jwks, issuer) {
            (Some(url), _) => fetch::check_url(url, self.allow_http).map(Target::Jwks),
            (None, Some(issuer)) => {
                fetch::check_url(issuer, self.allow_http).map(|url| Target::Discovery {
                    issuer: issuer.to_owned(),
                    url,
                    allow_http: self.allow_http,
                })
            }
            (None, None) => Err(ConfigError::new(ConfigErrorKind::InvalidUrl)),
        }
    }

    fn build(self) -> (Arc<Inner>, Config) {
        let mut rules = self.rules.clone();
        let mut config_error = None;
        if rules.algorithms.is_empty() {
            config_error = Some(ConfigError::new(ConfigErrorKind::NoAlgorithms));
            // Keep the set empty: every token is rejected with `DisallowedAlgorithm`.
            rules.algorithms = AlgSet::from_algs([]);
        }
        let stores = match &self.tenants {
            Some(tenants) => {
                rules.issuers = tenants.iter().map(|t| t.issuer.clone()).collect();
                let single_source =
                    self.url.is_some() || self.discover.is_some() || self.static_keys.is_some();
                let mut stores = Vec::with_capacity(tenants.len());
                for tenant in tenants {
                    let target = if let Some(e) = &config_error {
                        Err(e.clone())
                    } else if single_source {
                        Err(ConfigError::new(ConfigErrorKind::MixedSources))
                    } else {
                        self.target(tenant.jwks.as_deref(), Some(&tenant.issuer))
                    };
                    let source = Source::Remote {
                        target,
                        client: self.client.clone(),
                    };
                    let store = Arc::new(KeyStore::new(source, self.timing, None));
                    stores.push((Some(tenant.issuer.clone()), store));
                }
                if stores.is_empty() {
                    let source = Source::Remote {
                        target: Err(ConfigError::new(ConfigErrorKind::NoIssuers)),
                        client: None,
                    };
                    stores.push((None, Arc::new(KeyStore::new(source, self.timing, None))));
                }
                stores
            }
            None => {
                let (source, initial) = match &self.static_keys {
                    Some(doc) => {
                        let keys = doc
                            .get("keys")
                            .and_then(|k| k.as_array())
                            .map(|keys| KeySet::from_values(keys))
                            .unwrap_or_default();
                        (Source::Static, Some(keys))
                    }
                    None => {
                        let target = match config_error.take() {
                            Some(e) => Err(e),
                            None => self.target(
                                self.url
                                    .as_deref()
                                    .or(Some(""))
                                    .filter(|_| self.discover.is_none()),
                                self.discover.as_deref(),
                            ),
                        };
                        let source = Source::Remote {
                            target,
                            client: self.client.clone(),
                        };
                        (source, None)
                    }
                };
                vec![(None, Arc::new(KeyStore::new(source, self.timing, initial)))]
            }
        };
        let inner = Arc::new(Inner {
            stores,
            rules,
            realm: self.realm.clone(),
            optional: self.optional,
            cache: self.cache.filter(|n| *n > 0).map(TokenCache::new),
            on_rejection: self.on_rejection.clone(),
            check: self.check.clone(),
            sources: self.sources.clone(),
        });
        (inner, self)
    }
}

/// A [`Layer`] that verifies bearer JWTs against a JSON Web Key Set.
///
/// Requests with a valid token reach the inner service with the verified claims in
/// their extensions as [`Claims<T>`](crate::Claims); every other request is answered
/// by the layer (see the response table in the [crate docs](crate)).
///
/// `JwksAuth` is cheap to clone; all clones share one key set and one refresh task.
/// Builder methods return a *new* layer with its own key set: configure first, then use.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use axum::{routing::get, Router};
/// use jwks_auth::{Claims, JwksAuth};
///
/// let auth = JwksAuth::new("https://idp.example.com/.well-known/jwks.json")
///     .issuer("https://idp.example.com/")
///     .audience("orders-api")
///     .leeway(Duration::from_secs(30))
///     .refresh_interval(Duration::from_secs(600));
///
/// let app: Router = Router::new()
///     .route("/me", get(|Claims(c): Claims| async move { c.sub.unwrap_or_default() }))
///     .layer(auth);
/// ```
pub struct JwksAuth<T = StandardClaims> {
    pub(crate) inner: Arc<Inner>,
    config: Config,
    _claims: PhantomData<fn() -> T>,
}

impl<T> Clone for JwksAuth<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: self.config.clone(),
            _claims: PhantomData,
        }
    }
}

impl<T> fmt::Debug for JwksAuth<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksAuth")
            .field("url", &self.config.url)
            .field("discover", &self.config.discover)
            .field("rules", &self.inner.rules)
            .field("timing", &self.config.timing)
            .field("optional", &self.inner.optional)
            .field("claims", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

impl JwksAuth<StandardClaims> {
    /// A layer that fetches its keys from the JWKS at `url`.
    ///
    /// Infallible and cheap, and needs no runtime: the refresh task starts the first time
    /// the layer is used inside a Tokio runtime. A bad URL is reported by
    /// [`ready`](Self::ready), [`status`](Self::status) and the logs at first use, and
    /// requests are then answered with 503; it never panics.
    ///
    /// `url` must be `https`, except for loopback hosts; see [`allow_http`](Self::allow_http).
    pub fn new(url: impl Into<String>) -> Self {
        Self::from_config(Config {
            url: Some(url.into()),
            discover: None,
            static_keys: None,
            rules: Rules::default(),
            timing: Timing::default(),
            allow_http: false,
            client: None,
            realm: None,
            optional: false,
            cache: None,
            on_rejection: None,
            check: None,
            sources: vec![TokenSource::Bearer],
            tenants: None,
        })
    }

    /// A layer for an OpenID Connect issuer: the key set URL comes from its discovery
    /// document (`{issuer}/.well-known/openid-configuration`, then RFC 8414's
    /// `/.well-known/oauth-authorization-server`), whose `issuer` must equal `issuer`
    /// exactly; tokens' `iss` must equal it too.
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
        let issuer = issuer.into();
        let mut auth = Self::new("");
        auth.config.url = None;
        auth.config.discover = Some(issuer.clone());
        auth.config.rules.issuers.push(issuer);
        auth.rebuild()
    }

    /// A layer trusting several issuers (multi-tenant), each with its own key set and
    /// refresh task: add them with [`trust_issuer`](Self::trust_issuer) and
    /// [`trust_discovered_issuer`](Self::trust_discovered_issuer).
    ///
    /// A token's key set is chosen by its `iss`, which must equal a trusted issuer
    /// exactly; a key of one issuer never verifies a token claiming another. A token from
    /// any other issuer is rejected (401 `invalid_token`) before any key set is fetched.
    ///
    /// # Example
    ///
    /// ```
    /// let auth = jwks_auth::JwksAuth::multi_issuer()
    ///     .trust_issuer("https://acme.idp.example/", "https://acme.idp.example/keys")
    ///     .trust_discovered_issuer("https://login.example.com/zeta")
    ///     .audience("orders-api");
    /// ```
    pub fn multi_issuer() -> Self {
        let mut auth = Self::new("");
        auth.config.url = None;
        auth.config.tenants = Some(Vec::new());
        auth.rebuild()
    }

    /// A layer with a fixed key set (a JWKS document, `{"keys":[…]}`), for offline use and
    /// tests. There is no refresh task; unusable keys are skipped as for a fetched set.
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
        let mut auth = Self::new("");
        auth.config.url = None;
        auth.config.static_keys = Some(Arc::new(jwks));
        auth.rebuild()
    }
}

impl<T> JwksAuth<T> {
    fn from_config(config: Config) -> Self {
        let (inner, config) = config.build();
        Self {
            inner,
            config,
            _claims: PhantomData,
        }
    }

    fn rebuild(self) -> Self {
        Self::from_config(self.config)
    }

    fn with(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.config);
        self.rebuild()
    }

    /// Deserialize verified claims into `U` instead of [`StandardClaims`]; handlers then
    /// take [`Claims<U>`](crate::Claims). A token whose payload does not fit `U` is
    /// rejected with 401 `invalid_token`.
    ///
    /// A [`check`](Self::check) set before is for the old type and is dropped: set checks
    /// after choosing the claims type.
    pub fn claims<U>(self) -> JwksAuth<U>
    where
        U: serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let this = if self.config.check.is_some() {
            self.with(|c| c.check = None)
        } else {
            self
        };
        JwksAuth {
            inner: this.inner,
            config: this.config,
            _claims: PhantomData,
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
    pub fn check<F>(self, check: F) -> Self
    where
        F: Fn(&T) -> Result<(), AuthError> + Send + Sync + 'static,
        T: 'static,
    {
        let erased: Checker = Arc::new(move |claims: &dyn Any| match claims.downcast_ref::<T>() {
            Some(claims) => check(claims),
            // Cannot happen (the type is fixed by `claims::<T>()`); fail closed anyway.
            None => Err(AuthErrorKind::InvalidClaims.into()),
        });
        self.with(|c| c.check = Some(erased))
    }

    /// Also take the token from the cookie `name` (browser sessions). The bearer header
    /// stays a source unless [`bearer_header(false)`](Self::bearer_header).
    pub fn token_from_cookie(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.with(|c| c.sources.push(TokenSource::Cookie(name)))
    }

    /// Also take the token from the header `name` (the raw token, or `Bearer <token>`),
    /// e.g. `HeaderName::from_static("x-api-token")`.
    pub fn token_from_header(self, name: HeaderName) -> Self {
        self.with(|c| c.sources.push(TokenSource::Header(name)))
    }

    /// Also take the token from the query parameter `name`. Off unless called: tokens in
    /// URLs leak into logs, browser history and `Referer` headers (RFC 6750 §5.3).
    pub fn token_from_query(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.with(|c| c.sources.push(TokenSource::Query(name)))
    }

    /// Also take the token from what `find` returns for the request's headers and URI.
    pub fn token_from<F>(self, find: F) -> Self
    where
        F: Fn(&HeaderMap, &Uri) -> Option<String> + Send + Sync + 'static,
    {
        let find: TokenFn = Arc::new(find);
        self.with(|c| c.sources.push(TokenSource::Custom(find)))
    }

    /// Whether `Authorization: Bearer` is a token source (default `true`). With `false`
    /// and no other source, every request lacks credentials.
    pub fn bearer_header(self, enabled: bool) -> Self {
        self.with(|c| {
            c.sources.retain(|s| !matches!(s, TokenSource::Bearer));
            if enabled {
                c.sources.insert(0, TokenSource::Bearer);
            }
        })
    }

    /// Replace the rejection response. The function gets the [`AuthError`] (with its
    /// status, [`www_authenticate`](AuthError::www_authenticate) challenge and
    /// [`default_response`](AuthError::default_response)); the error is still put in the
    /// response's extensions. [`Authorize`](crate::Authorize) and
    /// [`RequireScope`](crate::RequireScope) route layers behind this layer answer their
    /// 403s with it too.
    ///
    /// # Example
    ///
    /// ```
    /// use axum::response::{IntoResponse, Response};
    /// use jwks_auth::JwksAuth;
    ///
    /// let auth = JwksAuth::new("https://idp.example/jwks.json").on_rejection(|err| {
    ///     let mut response = (err.status(), format!("denied: {err}")).into_response();
    ///     if let Some(challenge) = err.www_authenticate() {
    ///         response.headers_mut().insert("www-authenticate", challenge);
    ///     }
    ///     response
    /// });
    /// ```
    pub fn on_rejection<F>(self, respond: F) -> Self
    where
        F: Fn(&AuthError) -> Response + Send + Sync + 'static,
    {
        let respond: Rejector = Arc::new(respond);
        self.with(|c| c.on_rejection = Some(respond))
    }

    /// Trust `issuer`, whose keys are at `jwks_url` ([`multi_issuer`](Self::multi_issuer)
    /// layers only; on a layer with a single key source this is a configuration error).
    pub fn trust_issuer(self, issuer: impl Into<String>, jwks_url: impl Into<String>) -> Self {
        let tenant = Tenant {
            issuer: issuer.into(),
            jwks: Some(jwks_url.into()),
        };
        self.with(|c| c.tenants.get_or_insert_with(Vec::new).push(tenant))
    }

    /// Trust `issuer`, finding its keys through its discovery document, as
    /// [`from_issuer`](Self::from_issuer) does ([`multi_issuer`](Self::multi_issuer) layers only).
    pub fn trust_discovered_issuer(self, issuer: impl Into<String>) -> Self {
        let tenant = Tenant {
            issuer: issuer.into(),
            jwks: None,
        };
        self.with(|c| c.tenants.get_or_insert_with(Vec::new).push(tenant))
    }

    /// Accept this issuer (`iss` must equal it exactly). Call again to accept several.
    /// Defaults to no `iss` check.
    pub fn issuer(self, issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        self.with(|c| c.rules.issuers.push(issuer))
    }

    /// Accept this audience (`aud`, a string or an array, must contain it). Call again to
    /// accept several. Defaults to no `aud` check.
    pub fn audience(self, audience: impl Into<String>) -> Self {
        let audience = audience.into();
        self.with(|c| c.rules.audiences.push(audience))
    }

    /// Replace the algorithm allow-list. HS* is dropped: symmetric algorithms never make
    /// sense with a public key set (and `none` is not an [`Algorithm`]).
    /// Defaults to RS256/384/512, PS256/384/512, ES256, ES384 and EdDSA.
    pub fn algorithms(self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        let set = AlgSet::from_algs(algorithms);
        self.with(|c| c.rules.algorithms = set)
    }

    /// Clock skew tolerated on `exp` and `nbf`. Defaults to 60 s.
    pub fn leeway(self, leeway: Duration) -> Self {
        self.with(|c| c.rules.leeway = leeway)
    }

    /// Require the header's `typ` to be this (compared case-insensitively, the
    /// `application/` prefix optional), e.g. `"at+jwt"` for RFC 9068 access tokens.
    /// Defaults to no check.
    pub fn require_typ(self, typ: impl Into<String>) -> Self {
        let typ = typ.into();
        self.with(|c| c.rules.typ = Some(typ))
    }

    /// Require these claims to be present (any value). `exp` is always required.
    pub fn require_claims<I, S>(self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        self.with(|c| c.rules.required_claims.extend(names))
    }

    /// Largest token accepted, in bytes, checked before any decoding. Defaults to 16 KiB.
    pub fn max_token_len(self, bytes: usize) -> Self {
        self.with(|c| c.rules.max_token_len = bytes)
    }

    /// Time between periodic refreshes when the response has no `Cache-Control: max-age`
    /// (±10 % jitter); also the cap of the failure backoff. Defaults to 5 minutes.
    pub fn refresh_interval(self, interval: Duration) -> Self {
        self.with(|c| c.timing.refresh_interval = interval.max(Duration::from_secs(1)))
    }

    /// Minimum time between two refreshes forced by unknown `kid`s. Defaults to 30 s.
    pub fn cooldown(self, cooldown: Duration) -> Self {
        self.with(|c| c.timing.cooldown = cooldown)
    }

    /// How long the last good key set may be used without a successful refresh; after
    /// that, requests get 503. Defaults to 24 hours.
    pub fn max_stale(self, max_stale: Duration) -> Self {
        self.with(|c| c.timing.max_stale = max_stale)
    }

    /// Bound on one key set fetch (connect, headers and body), and so on how long a
    /// request waits for a refresh. Defaults to 5 s.
    pub fn fetch_timeout(self, timeout: Duration) -> Self {
        self.with(|c| c.timing.fetch_timeout = timeout)
    }

    /// Use this HTTP client for key set fetches instead of the default one (rustls,
    /// connect timeout 2 s, no redirects). The fetch timeout and body cap still apply;
    /// redirect and proxy policy are the client's.
    pub fn http_client(self, client: reqwest::Client) -> Self {
        self.with(|c| c.client = Some(client))
    }

    /// Allow a plain `http` key set URL for hosts that are not loopback. Off by default:
    /// keys fetched over plain HTTP can be replaced by anyone on the path.
    pub fn allow_http(self, allow: bool) -> Self {
        self.with(|c| c.allow_http = allow)
    }

    /// Add `realm="…"` to challenges. Characters that would need escaping are removed.
    pub fn realm(self, realm: impl AsRef<str>) -> Self {
        let realm = sanitize_realm(realm.as_ref());
        self.with(|c| c.realm = Some(realm))
    }

    /// Let requests without credentials through, without claims (handlers take
    /// `Option<Claims<T>>`). A token that is present but bad is still rejected.
    pub fn optional(self) -> Self {
        self.with(|c| c.optional = true)
    }

    /// Verifies a token outside of HTTP (a WebSocket message, a queued job): the same
    /// rules, key selection and refresh behaviour as the layer, returning the claims.
    ///
    /// It completes without waiting when the token's key is in the current key set; it
    /// waits (bounded by the fetch timeout) only for the first key set or a forced refresh.
    ///
    /// # Errors
    ///
    /// The [`AuthError`] the layer would have answered with.
    pub async fn verify(&self, token: &str) -> Result<T, AuthError>
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.inner.ensure_started();
        let claims = match self.inner.verify_now::<T>(token) {
            Verdict::Accept(claims) => claims,
            Verdict::Reject(e) => return Err(e),
            Verdict::Wait => {
                self.inner
                    .clone()
                    .verify_after_wait::<T>(token.to_owned())
                    .await?
            }
        };
        Ok(claims.0)
    }

    /// Cache up to `max_entries` verified tokens, so that a token seen again skips parsing
    /// and the signature check. Off by default.
    ///
    /// A hit compares the whole token, re-checks `exp`/`nbf`, and requires the key that
    /// verified it to still be in the key set; see the [cache module](crate#verified-token-cache)
    /// notes. Memory: at most `max_entries` × (token size cap + claims).
    pub fn cache(self, max_entries: usize) -> Self {
        self.with(|c| c.cache = Some(max_entries))
    }

    /// Waits until the first key set is loaded.
    ///
    /// # Errors
    ///
    /// Returns an error at once if the configuration makes a key set impossible (bad URL).
    /// Keeps waiting through fetch failures otherwise: bound it with
    /// [`ready_within`](Self::ready_within) or a timeout.
    pub async fn ready(&self) -> Result<(), ReadyError> {
        for (_, store) in &self.inner.stores {
            store.ready(None).await?;
        }
        Ok(())
    }

    /// Like [`ready`](Self::ready), but gives up after `limit`; the error then carries
    /// the last refresh error.
    ///
    /// # Errors
    ///
    /// On a configuration error, or when no key set arrived within `limit`.
    pub async fn ready_within(&self, limit: Duration) -> Result<(), ReadyError> {
        // A limit too far in the future to represent is no limit.
        let deadline = tokio::time::Instant::now().checked_add(limit);
        for (_, store) in &self.inner.stores {
            let left = deadline.map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
            store.ready(left).await?;
        }
        Ok(())
    }

    /// The key set's health: key ids, last success, last error, staleness.
    ///
    /// For a multi-issuer layer, the issuers' statuses combined: key ids and counts of all,
    /// the oldest last success, the first error, the most consecutive failures, stale if
    /// any is; see [`issuer_status`](Self::issuer_status) for one issuer.
    pub fn status(&self) -> Status {
        let mut statuses = self.inner.stores.iter().map(|(_, store)| store.status());
        let first = statuses.next().unwrap_or_else(Status::empty);
        statuses.fold(first, Status::combine)
    }

    /// The status of one trusted issuer's key set (multi-issuer layers).
    pub fn issuer_status(&self, issuer: &str) -> Option<Status> {
        self.inner
            .stores
            .iter()
            .find(|(i, _)| i.as_deref() == Some(issuer))
            .map(|(_, store)| store.status())
    }

    /// Forces a key set refresh now (joining one in flight, ignoring the cooldown) and
    /// waits for it, bounded by the fetch timeout.
    ///
    /// # Errors
    ///
    /// The refresh error, if the refresh failed; the last good key set is kept.
    pub async fn refresh_now(&self) -> Result<(), RefreshError> {
        let mut result = Ok(());
        for (_, store) in &self.inner.stores {
            if let Err(e) = store.refresh_now().await
                && result.is_ok()
            {
                result = Err(e);
            }
        }
        result
    }
}

impl<S, T> Layer<S> for JwksAuth<T> {
    type Service = JwksAuthService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        self.inner.ensure_started();
        JwksAuthService::new(inner, self.inner.clone())
    }
}
