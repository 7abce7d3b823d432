//! The layer's plain configuration and its validation.
//!
//! [`JwksAuth`](crate::JwksAuth) is this data and nothing else until it is first used:
//! setters only change fields. The configuration is in two parts, because they make
//! different runtime state:
//!
//! - [`SourceConfig`]: where keys come from and how they are fetched (the key source, the
//!   HTTP client, `allow_http`, the refresh timing). It makes the key stores and their
//!   refresh tasks;
//! - [`RequestConfig`]: what is done with each request (verification rules, token
//!   sources, `optional`, the cache, the check, the realm and rejection hook). It makes
//!   the [`Authenticator`](crate::authenticate::Authenticator).
//!
//! Layers derived from one `JwksAuth` that differ only in request options share one key
//! store and one refresh task; changing the source part makes a new one.

use std::fmt;
use std::sync::Arc;

use crate::dpop::Dpop;
use crate::error::{ConfigError, ConfigErrorKind, RefreshError};
use crate::fetch::{Target, Transport};
use crate::keys::KeySet;
use crate::respond::Rejector;
use crate::status::Status;
use crate::store::{KeyStore, Source, Timing};
use crate::token::TokenSource;
use crate::verify::Rules;

/// A user's check on verified claims, typed over the layer's claims type.
pub(crate) type Check<T> = Arc<dyn Fn(&T) -> Result<(), crate::AuthError> + Send + Sync>;

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
    Multi(Vec<Tenant>),
}

/// One issuer trusted by a multi-issuer layer.
#[derive(Clone, Debug)]
pub(crate) struct Tenant {
    pub(crate) issuer: String,
    /// The JWKS URL, or `None` to use the issuer's discovery document.
    pub(crate) jwks: Option<String>,
}

/// The key source part of the configuration.
#[derive(Clone)]
pub(crate) struct SourceConfig {
    pub(crate) source: KeySource,
    pub(crate) timing: Timing,
    pub(crate) allow_http: bool,
    pub(crate) client: Option<reqwest::Client>,
    /// `trust_issuer` on a layer with a single key source.
    pub(crate) mixed: bool,
}

impl fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceConfig")
            .field("source", &self.source)
            .field("timing", &self.timing)
            .field("allow_http", &self.allow_http)
            .field("client", &self.client.is_some())
            .finish()
    }
}

impl SourceConfig {
    pub(crate) fn new(source: KeySource) -> Self {
        Self {
            source,
            timing: Timing::default(),
            allow_http: false,
            client: None,
            mixed: false,
        }
    }

    /// The issuers whose tokens this source's keys verify, when the source names them:
    /// the discovered issuer, or the trusted ones of a multi-issuer layer.
    pub(crate) fn issuers(&self) -> Vec<String> {
        match &self.source {
            KeySource::Discover(issuer) => vec![issuer.clone()],
            KeySource::Multi(tenants) => tenants.iter().map(|t| t.issuer.clone()).collect(),
            KeySource::Jwks(_) | KeySource::Static(_) => Vec::new(),
        }
    }

    /// The key stores: one, or one per trusted issuer. Parses a static key set (once) and
    /// builds the HTTP clients; does no I/O.
    pub(crate) fn build(&self) -> KeyStores {
        let remote = |label: &str, target: Result<Target, ConfigError>| {
            let remote = target.map_err(RefreshError::from).and_then(|target| {
                let transport = Transport::new(self.client.clone())?;
                Ok(crate::store::Remote { target, transport })
            });
            if let Err(e) = &remote {
                tracing::error!(error = %e, "jwks-auth: no key set can be fetched; every request will get 503");
            }
            Arc::new(KeyStore::labelled(
                label,
                Source::Remote(remote),
                self.timing,
                None,
            ))
        };
        let stores = match &self.source {
            KeySource::Jwks(url) => vec![(
                None,
                remote("", self.single(Target::jwks(url, self.allow_http))),
            )],
            KeySource::Discover(issuer) => vec![(
                None,
                remote("", self.single(Target::discovery(issuer, self.allow_http))),
            )],
            KeySource::Static(doc) => {
                let keys = KeySet::from_document(doc).unwrap_or_default();
                let store = KeyStore::new(Source::Static, self.timing, Some(keys));
                vec![(None, Arc::new(store))]
            }
            KeySource::Multi(tenants) if tenants.is_empty() => {
                vec![(
                    None,
                    remote("", Err(ConfigError::new(ConfigErrorKind::NoIssuers))),
                )]
            }
            KeySource::Multi(tenants) => tenants
                .iter()
                .map(|t| {
                    let target = match &t.jwks {
                        Some(url) => Target::jwks(url, self.allow_http),
                        None => Target::discovery(&t.issuer, self.allow_http),
                    };
                    (Some(t.issuer.clone()), remote(&t.issuer, target))
                })
                .collect(),
        };
        KeyStores { stores }
    }

    fn single(&self, target: Result<Target, ConfigError>) -> Result<Target, ConfigError> {
        if self.mixed {
            return Err(ConfigError::new(ConfigErrorKind::MixedSources));
        }
        target
    }
}

/// The key stores of a layer: one with no issuer, or one per trusted issuer.
#[derive(Debug)]
pub(crate) struct KeyStores {
    stores: Vec<(Option<String>, Arc<KeyStore>)>,
}

impl KeyStores {
    /// The key store for a token's issuer, and its index (for the cache's provenance).
    /// Multi-issuer: chosen by exact `iss`, so a key of one issuer never verifies a
    /// token claiming another.
    pub(crate) fn for_issuer(&self, iss: Option<&str>) -> Option<(usize, &Arc<KeyStore>)> {
        match self.stores.as_slice() {
            [(None, store)] => Some((0, store)),
            stores => stores
                .iter()
                .position(|(issuer, _)| iss.is_some() && issuer.as_deref() == iss)
                .map(|i| (i, &stores[i].1)),
        }
    }

    pub(crate) fn get(&self, index: usize) -> Option<&Arc<KeyStore>> {
        self.stores.get(index).map(|(_, store)| store)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<KeyStore>> {
        self.stores.iter().map(|(_, store)| store)
    }

    /// The status of one trusted issuer's store.
    pub(crate) fn issuer_status(&self, issuer: &str) -> Option<Status> {
        self.stores
            .iter()
            .find(|(i, _)| i.as_deref() == Some(issuer))
            .map(|(_, store)| store.status())
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
    /// A builder-order mistake, kept until the layer is used (setters never fail).
    pub(crate) error: Option<ConfigError>,
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
            error: self.error.clone(),
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
            error: None,
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
            error,
        }
    }

    /// The rules to verify with, for this key source, or why there can be none.
    pub(crate) fn rules_for(&self, source: &SourceConfig) -> Result<Rules, ConfigError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.rules.algorithms.is_empty() {
            return Err(ConfigError::new(ConfigErrorKind::NoAlgorithms));
        }
        if let Some(dpop) = &self.dpop {
            dpop.validate()?;
        }
        let mut rules = self.rules.clone();
        match &source.source {
            KeySource::Multi(_) if !rules.issuers.is_empty() => {
                return Err(ConfigError::new(ConfigErrorKind::IssuerOnMultiIssuer));
            }
            KeySource::Multi(_) => rules.issuers = source.issuers(),
            KeySource::Discover(issuer) if !rules.issuers.contains(issuer) => {
                rules.issuers.insert(0, issuer.clone());
            }
            _ => {}
        }
        Ok(rules)
    }
}
