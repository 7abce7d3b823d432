//! The errors an operator sees, not a client: [`ConfigError`] (a mistake in the layer's
//! configuration), [`RefreshError`] (a problem between this service and its identity
//! provider) and [`ReadyError`] (from [`JwksAuth::ready`](crate::JwksAuth::ready)).

use std::fmt;
use std::sync::Arc;

/// A problem with the layer's configuration, found when it is first used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    kind: ConfigErrorKind,
}

/// What is wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The key set or issuer URL does not parse.
    InvalidUrl,
    /// The URL is plain `http` to a host that is not loopback, and
    /// [`Refresh::allow_http`](crate::Refresh::allow_http) was not set.
    InsecureUrl,
    /// The URL's scheme is neither `https` nor `http`.
    UnsupportedScheme,
    /// The algorithm allow-list is empty after removing algorithms that are never accepted.
    NoAlgorithms,
    /// A [`multi_issuer`](crate::JwksAuth::multi_issuer) layer trusts no issuer.
    NoIssuers,
    /// No [`audience`](crate::JwksAuth::audience): tokens issued for any API of the
    /// provider (and its ID tokens) would be accepted. Give the audience your tokens
    /// carry, or give the check up by name with
    /// [`accept_any_audience`](crate::JwksAuth::accept_any_audience).
    NoAudience,
    /// No [`issuer`](crate::JwksAuth::issuer) on a layer whose key source names none
    /// ([`new`](crate::JwksAuth::new), [`from_jwks`](crate::JwksAuth::from_jwks)): a
    /// token claiming any issuer would be accepted. Give the issuer, or give the check
    /// up by name with [`accept_any_issuer`](crate::JwksAuth::accept_any_issuer).
    NoIssuer,
    /// The static key set of [`from_jwks`](crate::JwksAuth::from_jwks) is not a JWKS
    /// document (`{"keys": [...]}`).
    InvalidJwks,
    /// [`issuer`](crate::JwksAuth::issuer) was set on a
    /// [`multi_issuer`](crate::JwksAuth::multi_issuer) layer, whose accepted issuers are
    /// exactly the trusted ones: list them in `multi_issuer([..])` instead.
    IssuerOnMultiIssuer,
    /// [`claims`](crate::JwksAuth::claims) was called after [`check`](crate::JwksAuth::check):
    /// the check is typed over the old claims type and would be lost. Choose the claims
    /// type first, then add checks.
    CheckBeforeClaims,
    /// DPoP is on without a usable [`Dpop::base_url`](crate::Dpop::base_url) (an absolute
    /// `http(s)` URL without query or fragment) and without
    /// [`Dpop::trust_host_header`](crate::Dpop::trust_host_header) (whose scheme is
    /// `http` or `https`): a proof's `htu` could not be checked.
    DpopBaseUrl,
    /// A [`Dpop::nonce_secret`](crate::Dpop::nonce_secret) shorter than 32 bytes (nonces
    /// must be unpredictable, RFC 9449 §8), or no OS randomness for the default one.
    DpopNonceSecret,
    /// An [`IssuerRule`](crate::IssuerRule) template that breaks its rules: an absolute
    /// `http(s)` URL with at least one placeholder, each `{name}` a whole path segment
    /// or a whole host label under a fixed suffix of two labels or more, names unique
    /// (a JWKS URL template uses the issuer's), no query, fragment, userinfo, `%` or
    /// whitespace.
    IssuerTemplate,
    /// [`Introspection::discovered`](crate::Introspection::discovered) on a layer that
    /// discovers no issuer: give the endpoint's URL with
    /// [`Introspection::new`](crate::Introspection::new), or use
    /// [`from_issuer`](crate::JwksAuth::from_issuer).
    IntrospectionEndpoint,
    /// [`ResourceMetadata`](crate::ResourceMetadata) that cannot be served: its resource
    /// is not an absolute `https` URL (`http` only for loopback) without query or
    /// fragment, it names no authorization server, or a value has characters a header or
    /// a JSON string cannot carry plainly.
    ResourceMetadata,
}

impl ConfigError {
    pub(crate) fn new(kind: ConfigErrorKind) -> Self {
        Self { kind }
    }

    /// What is wrong.
    pub fn kind(&self) -> &ConfigErrorKind {
        &self.kind
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Each message names the mistake and the fix.
        f.write_str(match self.kind {
            ConfigErrorKind::InvalidUrl => "invalid key set url: give an absolute https url",
            ConfigErrorKind::InsecureUrl => {
                "key set url must use https (http is allowed for loopback hosts, or with Refresh::allow_http)"
            }
            ConfigErrorKind::UnsupportedScheme => "key set url scheme must be https or http",
            ConfigErrorKind::NoAlgorithms => {
                "no acceptable algorithm is allowed: give algorithms() at least one the backend verifies"
            }
            ConfigErrorKind::NoIssuers => {
                "the multi-issuer layer trusts no issuer: list them in multi_issuer([..])"
            }
            ConfigErrorKind::NoAudience => {
                "no audience: call .audience(\"<your API's audience>\") with the aud your tokens carry, or .accept_any_audience() to give the check up"
            }
            ConfigErrorKind::NoIssuer => {
                "no issuer: call .issuer(\"<your identity provider's iss>\"), or .accept_any_issuer() to give the check up (from_issuer and multi_issuer bind theirs)"
            }
            ConfigErrorKind::InvalidJwks => {
                "from_jwks() needs a JWKS document: a JSON object with a \"keys\" array"
            }
            ConfigErrorKind::IssuerOnMultiIssuer => {
                "issuer() on a multi_issuer layer: its issuers are the trusted ones; list them in multi_issuer([..])"
            }
            ConfigErrorKind::CheckBeforeClaims => {
                "claims::<T>() after check(): the check would be dropped; choose the claims type first"
            }
            ConfigErrorKind::DpopNonceSecret => {
                "DPoP nonces need an unpredictable secret: Dpop::nonce_secret takes at least 32 random bytes"
            }
            ConfigErrorKind::ResourceMetadata => {
                "invalid protected resource metadata: the resource must be an absolute https url (http for loopback) without query or fragment, with at least one authorization server, and printable scopes without quotes"
            }
            ConfigErrorKind::IntrospectionEndpoint => {
                "Introspection::discovered needs a from_issuer layer (its discovery document names the endpoint): give the endpoint's url with Introspection::new"
            }
            ConfigErrorKind::IssuerTemplate => {
                "invalid issuer template: give an absolute http(s) url whose {placeholders} are whole path segments or whole host labels under a fixed suffix of two labels or more (https://kc.example.com/realms/{realm}, https://{tenant}.auth.example.com/), no query, fragment, userinfo or %"
            }
            ConfigErrorKind::DpopBaseUrl => {
                "DPoP needs the service's public base url (Dpop::base_url, an absolute http(s) url), or Dpop::trust_host_header(\"https\") (or \"http\")"
            }
        })
    }
}

impl std::error::Error for ConfigError {}

/// A failed attempt to fetch or use a key set. The last good key set is kept.
#[derive(Debug, Clone)]
pub struct RefreshError {
    pub(crate) kind: RefreshErrorKind,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    url: Option<Arc<str>>,
}

/// Why a refresh failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshErrorKind {
    /// The configuration is unusable (see [`ConfigError`]).
    Config(ConfigError),
    /// The connection could not be made, or broke.
    Connect,
    /// The request took longer than the fetch timeout.
    Timeout,
    /// The server answered with a status other than 200 or 304 (redirects are not followed).
    Status(u16),
    /// The body is larger than the cap.
    BodyTooLarge,
    /// The body is not a JSON Web Key Set (`{"keys":[…]}`).
    InvalidJwks,
    /// The set parsed, but no key in it is usable.
    NoUsableKeys,
    /// The discovery document is invalid.
    InvalidDiscovery,
    /// The discovery document names another issuer than the configured one. Fatal:
    /// [`ready`](crate::JwksAuth::ready) returns it at once (the task keeps retrying).
    IssuerMismatch {
        /// The configured issuer.
        configured: String,
        /// The document's `issuer` (control characters removed, at most 256 characters).
        discovered: String,
    },
    /// The HTTP client could not be built. Terminal: no fetch will ever be attempted.
    Client,
    /// The server answered `304 Not Modified` to a request that carried no validator.
    UnexpectedNotModified,
}

impl RefreshError {
    pub(crate) fn new(kind: RefreshErrorKind) -> Self {
        Self {
            kind,
            source: None,
            url: None,
        }
    }

    /// The same error, naming the URL that was fetched (kept if already set).
    pub(crate) fn at(mut self, url: &str) -> Self {
        if self.url.is_none() {
            self.url = Some(Arc::from(url));
        }
        self
    }

    /// The URL whose fetch failed (the key set or the discovery document), if any.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    pub(crate) fn with_source(
        kind: RefreshErrorKind,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            source: Some(Arc::new(source)),
            url: None,
        }
    }

    /// Why the refresh failed.
    pub fn kind(&self) -> &RefreshErrorKind {
        &self.kind
    }

    /// An error that retrying cannot fix without a change at the identity provider or in
    /// the configuration.
    pub(crate) fn is_fatal(&self) -> bool {
        matches!(self.kind, RefreshErrorKind::IssuerMismatch { .. })
    }
}

impl fmt::Display for RefreshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_kind(f)?;
        if let Some(url) = &self.url {
            write!(f, " ({url})")?;
        }
        Ok(())
    }
}

impl RefreshError {
    fn fmt_kind(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            RefreshErrorKind::Config(e) => write!(f, "configuration: {e}"),
            RefreshErrorKind::Connect => f.write_str("could not reach the key set server"),
            RefreshErrorKind::Timeout => f.write_str("key set request timed out"),
            RefreshErrorKind::Status(s) => write!(f, "key set server answered {s}"),
            RefreshErrorKind::BodyTooLarge => f.write_str("key set response is too large"),
            RefreshErrorKind::InvalidJwks => f.write_str("response is not a JSON Web Key Set"),
            RefreshErrorKind::NoUsableKeys => f.write_str("key set has no usable key"),
            RefreshErrorKind::InvalidDiscovery => f.write_str("invalid discovery document"),
            RefreshErrorKind::IssuerMismatch {
                configured,
                discovered,
            } => {
                write!(
                    f,
                    "the discovery document's issuer {discovered:?} is not the configured issuer {configured:?}"
                )?;
                if configured.trim_end_matches('/') == discovered.trim_end_matches('/') {
                    f.write_str(" (they differ only by a trailing slash)")?;
                }
                Ok(())
            }
            RefreshErrorKind::Client => f.write_str("the HTTP client could not be built"),
            RefreshErrorKind::UnexpectedNotModified => {
                f.write_str("key set server answered 304 to a request without validators")
            }
        }
    }
}

impl std::error::Error for RefreshError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e.as_ref() as &(dyn std::error::Error + 'static))
    }
}

impl From<ConfigError> for RefreshError {
    fn from(e: ConfigError) -> Self {
        Self::new(RefreshErrorKind::Config(e))
    }
}

/// Why [`JwksAuth::ready`](crate::JwksAuth::ready) gave up.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ReadyError {
    /// The configuration makes a key set impossible.
    Config(ConfigError),
    /// A key set is impossible for another reason: the HTTP client could not be built,
    /// or a discovery document names another issuer.
    Terminal(RefreshError),
    /// No key set arrived within the limit; the last refresh error seen, if any.
    Timeout(Option<RefreshError>),
}

impl ReadyError {
    /// A key set is impossible: a configuration error is told as such.
    pub(crate) fn terminal(e: RefreshError) -> Self {
        match e.kind {
            RefreshErrorKind::Config(c) => Self::Config(c),
            _ => Self::Terminal(e),
        }
    }

    /// `true` when the wait ended because of the time limit, not because a key set is
    /// impossible.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }

    /// The configuration error that makes a key set impossible, if that is the reason.
    pub fn config_error(&self) -> Option<&ConfigError> {
        match self {
            Self::Config(c) => Some(c),
            _ => None,
        }
    }

    /// The refresh error: the terminal one, or the last one seen while waiting.
    pub fn last_error(&self) -> Option<&RefreshError> {
        match self {
            Self::Config(_) => None,
            Self::Terminal(e) => Some(e),
            Self::Timeout(last) => last.as_ref(),
        }
    }
}

impl fmt::Display for ReadyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(c) => write!(f, "key set unavailable: {c}"),
            Self::Terminal(e) => write!(f, "key set unavailable: {e}"),
            Self::Timeout(Some(e)) => {
                write!(f, "timed out waiting for the key set; last error: {e}")
            }
            Self::Timeout(None) => f.write_str("timed out waiting for the key set"),
        }
    }
}

impl std::error::Error for ReadyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(c) => Some(c),
            Self::Terminal(e) | Self::Timeout(Some(e)) => Some(e),
            Self::Timeout(None) => None,
        }
    }
}
