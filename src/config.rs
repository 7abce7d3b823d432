//! The layer's plain configuration, and [`validate`]: the one place it is judged.
//!
//! [`JwksAuth`](crate::JwksAuth) is this data and nothing else until it is first used:
//! setters only change fields. The configuration is in two parts, because they make
//! different runtime state:
//!
//! - [`SourceConfig`]: where keys come from and how they are fetched ([`KeySource`],
//!   [`Refresh`]). It makes the key stores and their refresh tasks;
//! - [`RequestConfig`]: what is done with each request (verification rules, token
//!   sources, `optional`, the cache, the check, the realm and rejection hook, DPoP). With
//!   the key stores, it makes the [`Authenticator`](crate::authenticate::Authenticator).
//!
//! Layers derived from one `JwksAuth` that differ only in request options share one key
//! store and one refresh task; changing the source part makes a new one.

use std::fmt;
use std::sync::Arc;

use crate::claims::ScopeHierarchy;
use crate::dpop::{Dpop, DpopCheck};
use crate::error::{AuthError, ConfigError, ConfigErrorKind, RefreshError};
use crate::fetch::{Target, Transport};
use crate::introspect::{Introspection, Introspector};
use crate::key_stores::KeyStores;
use crate::keys::KeySet;
pub(crate) use crate::refresh_config::Refresh;
use crate::resource::ResourceMetadata;
use crate::respond::{Rejector, ResourceChallenge};
use crate::store::{KeyStore, Remote, Source};
use crate::tenants::{Compiled, IssuerRule, RuleStores};
use crate::token::TokenSource;
use crate::verify::Rules;

/// A user's check on verified claims (the layer's `check`, a route layer's), typed over
/// the claims type.
pub(crate) type Check<T> = Arc<dyn Fn(&T) -> Result<(), AuthError> + Send + Sync>;

/// Where keys come from.
#[derive(Debug, Clone)]
pub(crate) enum KeySource {
    /// A JWKS URL.
    Jwks(String),
    /// An OIDC issuer; the JWKS URL comes from its discovery document.
    Discover(String),
    /// A fixed JWKS document (parsed once, when the layer is first used).
    Static(Arc<serde_json::Value>),
    /// Several trusted issuers, each with its own key set.
    Multi(Vec<TrustedIssuer>),
}

/// One issuer trusted by a [`multi_issuer`](crate::JwksAuth::multi_issuer) layer, with
/// where its keys are; or a rule for many ([`TrustedIssuer::rule`]).
///
/// ```
/// use jwks_auth::{IssuerRule, TrustedIssuer};
///
/// let acme = TrustedIssuer::new("https://acme.idp.example/", "https://acme.idp.example/keys");
/// let zeta = TrustedIssuer::discovered("https://login.example.com/zeta");
/// let realms = TrustedIssuer::rule(IssuerRule::discovered("kc", "https://kc.example.com/realms/{realm}"));
/// ```
#[derive(Clone, Debug)]
pub struct TrustedIssuer(pub(crate) Trusted);

#[derive(Clone, Debug)]
pub(crate) enum Trusted {
    /// One issuer; its JWKS URL, or `None` to use its discovery document.
    Fixed {
        issuer: String,
        jwks: Option<String>,
    },
    /// Issuers that follow a template.
    Rule(IssuerRule),
}

impl TrustedIssuer {
    /// Tokens whose `iss` is exactly `issuer` are verified with the keys at `jwks_url`.
    pub fn new(issuer: impl Into<String>, jwks_url: impl Into<String>) -> Self {
        Self(Trusted::Fixed {
            issuer: issuer.into(),
            jwks: Some(jwks_url.into()),
        })
    }

    /// Tokens whose `iss` is exactly `issuer` are verified with the keys its discovery
    /// document names, as [`from_issuer`](crate::JwksAuth::from_issuer) finds them.
    pub fn discovered(issuer: impl Into<String>) -> Self {
        Self(Trusted::Fixed {
            issuer: issuer.into(),
            jwks: None,
        })
    }

    /// Tokens whose `iss` follows `rule`'s template (see [`IssuerRule`]): each concrete
    /// issuer gets its own key store on first use, within the layer's bounds
    /// ([`Refresh::tenant_stores`], [`Refresh::new_tenants`]). Fixed issuers are matched
    /// first, then rules in order.
    pub fn rule(rule: IssuerRule) -> Self {
        Self(Trusted::Rule(rule))
    }
}

/// The key source part of the configuration.
#[derive(Clone, Debug)]
pub(crate) struct SourceConfig {
    pub(crate) source: KeySource,
    pub(crate) refresh: Refresh,
}

impl SourceConfig {
    pub(crate) fn new(source: KeySource) -> Self {
        Self {
            source,
            refresh: Refresh::default(),
        }
    }

    fn target(&self, url: &str, discover: bool) -> Result<Target, ConfigError> {
        let allow_http = self.refresh.allow_http;
        if discover {
            Target::discovery(url, allow_http)
        } else {
            Target::jwks(url, allow_http)
        }
    }

    /// The key stores: one, or one per trusted issuer. Parses a static key set (once) and
    /// builds the HTTP clients; does no I/O. A mistake [`validate`] reports makes a store
    /// that answers 503 (for [`status`](crate::JwksAuth::status) on such a layer).
    pub(crate) fn build(&self) -> KeyStores {
        let timing = self.refresh.timing;
        let remote = |label: &str, target: Result<Target, ConfigError>| {
            let remote = target.map_err(RefreshError::from).and_then(|target| {
                let transport = Transport::new(self.refresh.client.clone())?;
                Ok(Remote { target, transport })
            });
            Arc::new(KeyStore::new(label, Source::Remote(remote), timing, None))
        };
        let stores = match &self.source {
            KeySource::Jwks(url) => vec![(None, remote("", self.target(url, false)))],
            KeySource::Discover(issuer) => vec![(None, remote("", self.target(issuer, true)))],
            KeySource::Static(doc) => {
                let keys = KeySet::from_document(doc).unwrap_or_default();
                let store = KeyStore::new("", Source::Static, timing, Some(keys));
                vec![(None, Arc::new(store))]
            }
            KeySource::Multi(issuers) => issuers
                .iter()
                .filter_map(|t| match &t.0 {
                    Trusted::Fixed { issuer, jwks } => {
                        let target = self.target(jwks.as_ref().unwrap_or(issuer), jwks.is_none());
                        Some((Some(issuer.clone()), remote(issuer, target)))
                    }
                    Trusted::Rule(_) => None,
                })
                .collect(),
        };
        let rules: Vec<Compiled> = match &self.source {
            // A rule that does not compile is reported by `validate`.
            KeySource::Multi(issuers) => issuers
                .iter()
                .filter_map(|t| match &t.0 {
                    Trusted::Rule(rule) => Compiled::new(rule).ok(),
                    Trusted::Fixed { .. } => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let rules = (!rules.is_empty())
            .then(|| RuleStores::new(rules, stores.len(), self.refresh.fetching()));
        KeyStores::new(stores, rules)
    }
}

/// The request part of the configuration.
pub(crate) struct RequestConfig<T> {
    pub(crate) rules: Rules,
    pub(crate) realm: Option<Arc<str>>,
    pub(crate) optional: bool,
    /// Verified-token cache entries (`0`: off).
    pub(crate) cache: usize,
    pub(crate) on_rejection: Option<Rejector>,
    pub(crate) check: Option<Check<T>>,
    pub(crate) sources: Vec<TokenSource>,
    /// DPoP, when on.
    pub(crate) dpop: Option<Dpop>,
    /// Introspection of opaque tokens, when on.
    pub(crate) introspection: Option<Introspection>,
    /// RFC 9728 metadata, when the layer knows its resource.
    pub(crate) resource: Option<ResourceMetadata>,
    /// Which scopes imply others, for the route layers.
    pub(crate) scopes: Option<Arc<ScopeHierarchy>>,
    /// A builder-order mistake, kept until the layer is used (setters never fail).
    pub(crate) error: Option<ConfigError>,
    /// The explicit opt-outs of the audience and issuer checks.
    pub(crate) any_audience: bool,
    pub(crate) any_issuer: bool,
}

impl<T> Clone for RequestConfig<T> {
    fn clone(&self) -> Self {
        Self {
            rules: self.rules.clone(),
            realm: self.realm.clone(),
            optional: self.optional,
            cache: self.cache,
            on_rejection: self.on_rejection.clone(),
            check: self.check.clone(),
            sources: self.sources.clone(),
            dpop: self.dpop.clone(),
            introspection: self.introspection.clone(),
            resource: self.resource.clone(),
            scopes: self.scopes.clone(),
            error: self.error.clone(),
            any_audience: self.any_audience,
            any_issuer: self.any_issuer,
        }
    }
}

impl<T> fmt::Debug for RequestConfig<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestConfig")
            .field("rules", &self.rules)
            .field("realm", &self.realm)
            .field("optional", &self.optional)
            .field("cache", &self.cache)
            .field("on_rejection", &self.on_rejection.is_some())
            .field("check", &self.check.is_some())
            .field("sources", &self.sources)
            .field("dpop", &self.dpop)
            .field("introspection", &self.introspection)
            .field("resource", &self.resource)
            .field("scopes", &self.scopes)
            .field("any_audience", &self.any_audience)
            .field("any_issuer", &self.any_issuer)
            .finish()
    }
}

impl<T> Default for RequestConfig<T> {
    fn default() -> Self {
        Self {
            rules: Rules::default(),
            realm: None,
            optional: false,
            cache: crate::limits::CACHE_ENTRIES,
            on_rejection: None,
            check: None,
            sources: vec![TokenSource::Bearer],
            dpop: None,
            introspection: None,
            resource: None,
            scopes: None,
            error: None,
            any_audience: false,
            any_issuer: false,
        }
    }
}

impl<T> RequestConfig<T> {
    /// The same options for another claims type. A check cannot follow (it is typed over
    /// `T`): that is recorded as [`ConfigErrorKind::CheckBeforeClaims`].
    pub(crate) fn retype<U>(self) -> RequestConfig<U> {
        let error = match (&self.error, &self.check) {
            (Some(e), _) => Some(e.clone()),
            (None, Some(_)) => Some(ConfigError::new(ConfigErrorKind::CheckBeforeClaims)),
            (None, None) => None,
        };
        RequestConfig {
            rules: self.rules,
            realm: self.realm,
            optional: self.optional,
            cache: self.cache,
            on_rejection: self.on_rejection,
            check: None,
            sources: self.sources,
            dpop: self.dpop,
            introspection: self.introspection,
            resource: self.resource,
            scopes: self.scopes,
            error,
            any_audience: self.any_audience,
            any_issuer: self.any_issuer,
        }
    }
}

/// A configuration that passed [`validate`]: the rules to verify with (the issuers of
/// the key source included) and DPoP made runtime state.
#[derive(Debug)]
pub(crate) struct Validated {
    pub(crate) rules: Rules,
    pub(crate) dpop: Option<DpopCheck>,
    pub(crate) introspect: Option<Introspector>,
    pub(crate) resource: Option<ResourceChallenge>,
}

/// Judges the whole configuration, with no I/O: the only place a configuration mistake
/// is found. The key source's URLs, the static key set, the rules and DPoP.
pub(crate) fn validate<T>(
    request: &RequestConfig<T>,
    source: &SourceConfig,
) -> Result<Validated, ConfigError> {
    if let Some(e) = &request.error {
        return Err(e.clone());
    }
    if request.rules.algorithms.is_empty() {
        return Err(ConfigError::new(ConfigErrorKind::NoAlgorithms));
    }
    let mut rules = request.rules.clone();
    match &source.source {
        KeySource::Jwks(url) => drop(source.target(url, false)?),
        KeySource::Discover(issuer) => {
            source.target(issuer, true)?;
            if !rules.issuers.contains(issuer) {
                rules.issuers.insert(0, issuer.clone());
            }
        }
        KeySource::Static(doc) => {
            let keys = doc.as_object().and_then(|d| d.get("keys"));
            if !keys.is_some_and(serde_json::Value::is_array) {
                return Err(ConfigError::new(ConfigErrorKind::InvalidJwks));
            }
        }
        KeySource::Multi(_) if !rules.issuers.is_empty() => {
            return Err(ConfigError::new(ConfigErrorKind::IssuerOnMultiIssuer));
        }
        KeySource::Multi(issuers) if issuers.is_empty() => {
            return Err(ConfigError::new(ConfigErrorKind::NoIssuers));
        }
        KeySource::Multi(issuers) => {
            let mut has_rules = false;
            for t in issuers {
                match &t.0 {
                    Trusted::Fixed { issuer, jwks } => {
                        source.target(jwks.as_ref().unwrap_or(issuer), jwks.is_none())?;
                        rules.issuers.push(issuer.clone());
                    }
                    Trusted::Rule(rule) => {
                        let (issuer, jwks) = Compiled::new(rule)?.samples();
                        source.target(jwks.as_ref().unwrap_or(&issuer), jwks.is_none())?;
                        has_rules = true;
                    }
                }
            }
            if has_rules {
                // The key stores are the gate: fixed issuers exactly, then the rules.
                rules.issuers.clear();
            }
        }
    }
    // RFC 8707 / MCP: the resource is the audience, exactly, unless one is given.
    if let Some(resource) = &request.resource {
        resource.validate()?;
        if rules.audiences.is_empty() && !request.any_audience {
            rules.audiences.push(resource.resource.clone());
        }
    }
    // Secure by default: both checks unless given up by name (RFC 8725 §3.8-3.9).
    if rules.audiences.is_empty() && !request.any_audience {
        return Err(ConfigError::new(ConfigErrorKind::NoAudience));
    }
    let fixed_source = matches!(source.source, KeySource::Jwks(_) | KeySource::Static(_));
    if fixed_source && rules.issuers.is_empty() && !request.any_issuer {
        return Err(ConfigError::new(ConfigErrorKind::NoIssuer));
    }
    let dpop = request.dpop.as_ref().map(DpopCheck::build).transpose()?;
    let refresh = &source.refresh;
    let introspect = request
        .introspection
        .as_ref()
        .map(|i| {
            let issuer = match &source.source {
                KeySource::Discover(issuer) => Some(issuer.as_str()),
                _ => None,
            };
            let transport = (refresh.allow_http, refresh.client.clone());
            Introspector::build(i, transport, refresh.timing.fetch_timeout, issuer)
        })
        .transpose()?;
    let resource = request.resource.as_ref().map(|r| ResourceChallenge {
        metadata_url: Arc::from(r.metadata_url()),
        scopes: Arc::from(r.scopes.join(" ")),
    });
    Ok(Validated {
        rules,
        dpop,
        introspect,
        resource,
    })
}
