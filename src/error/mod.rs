//! Errors: request-time rejections ([`AuthError`]), build-time problems ([`ConfigError`]),
//! key refresh failures ([`RefreshError`]) and [`ReadyError`] from
//! [`JwksAuth::ready`](crate::JwksAuth::ready).
//!
//! The three are kept apart because they reach different people: an [`AuthError`] is
//! turned into an RFC 6750 response for the client, a [`ConfigError`] is a mistake of the
//! operator, and a [`RefreshError`] is a problem between this service and its identity
//! provider, reported by [`JwksAuth::status`](crate::JwksAuth::status) and the logs.
//!
//! # Example
//!
//! ```
//! use jwks_auth::{AuthError, AuthErrorKind};
//! use axum::response::IntoResponse;
//!
//! let err = AuthError::insufficient_scope(["orders:write"]);
//! assert_eq!(err.kind(), AuthErrorKind::InsufficientScope);
//! let response = err.into_response();
//! assert_eq!(response.status(), 403);
//! assert_eq!(
//!     response.headers()["www-authenticate"],
//!     r#"Bearer error="insufficient_scope", error_description="the token lacks a required scope", scope="orders:write""#,
//! );
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

mod operator;

pub use operator::{ConfigError, ConfigErrorKind, ReadyError, RefreshError, RefreshErrorKind};

/// Why a request was not let through.
///
/// Every variant maps to one row of the RFC 6750 response table (see the crate docs).
/// The set of variants grows over time, so match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthErrorKind {
    /// No credentials: no `Authorization` header, or one with another scheme. 401, no error code.
    MissingCredentials,
    /// The request's credentials are malformed (empty `Bearer`, two tokens, two headers,
    /// characters outside RFC 6750's `b64token`). 400 `invalid_request`.
    InvalidRequest,
    /// The token is larger than the configured cap. 401 `invalid_token`.
    TokenTooLarge,
    /// Not three strict base64url segments, or header/payload not JSON objects,
    /// or duplicate JSON member names. 401 `invalid_token`.
    Malformed,
    /// A JWE, a JSON-serialized JWS or another token form this crate does not accept.
    /// 401 `invalid_token`.
    UnsupportedTokenType,
    /// The header's `alg` is not in the allow-list (or is `none`/HS*). 401 `invalid_token`.
    DisallowedAlgorithm,
    /// The header carries a `crit` extension this crate does not understand. 401 `invalid_token`.
    UnsupportedCritical,
    /// No key in the key set has the token's `kid`, even after a refresh. 401 `invalid_token`.
    UnknownKey,
    /// The key named by `kid` cannot verify the token's algorithm (wrong type, curve or `alg`),
    /// or a token without `kid` matches no key or too many keys. 401 `invalid_token`.
    KeyMismatch,
    /// The signature does not verify. 401 `invalid_token`.
    InvalidSignature,
    /// `exp` is in the past (beyond the leeway). 401 `invalid_token`.
    Expired,
    /// `nbf` is in the future (beyond the leeway). 401 `invalid_token`.
    NotYetValid,
    /// `iss` is missing or not one of the accepted issuers. 401 `invalid_token`.
    InvalidIssuer,
    /// `aud` is missing or names none of the accepted audiences. 401 `invalid_token`.
    InvalidAudience,
    /// The header's `typ` is not the required one. 401 `invalid_token`.
    InvalidType,
    /// A required claim (`exp`, or one configured with `require_claims`) is missing.
    /// 401 `invalid_token`.
    MissingClaim,
    /// A registered claim has the wrong JSON type, `nbf` is later than `exp`, or the
    /// payload does not deserialize into the claims type. 401 `invalid_token`.
    InvalidClaims,
    /// The token is sender-constrained (it carries `cnf`: DPoP or mutual-TLS bound) and
    /// was presented as a bearer token. 401 `invalid_token`.
    BoundToken,
    /// Authenticated, but a required scope is missing. 403 `insufficient_scope`.
    InsufficientScope,
    /// Authenticated, but a role or claim check refused access. 403 `insufficient_scope`
    /// (RFC 6750 has no other code for 403), without a `scope` attribute.
    AccessDenied,
    /// No usable key set: the identity provider was never reached, the key set is stale
    /// past `max_stale`, or the key source is misconfigured. 503 with `Retry-After`.
    KeysUnavailable,
    /// DPoP: the proof is missing, repeated, malformed, badly signed, or does not match
    /// the request (`htm`, `htu`, `iat`, `ath`). 401 `invalid_dpop_proof`.
    InvalidDpopProof,
    /// DPoP: the proof's key is not the key the token is bound to (`cnf.jkt`).
    /// 401 `invalid_dpop_proof`.
    DpopKeyMismatch,
    /// DPoP: this proof (its `jti`, with its key) was already used. 401 `invalid_dpop_proof`.
    DpopReplay,
    /// DPoP: the proof lacks the server's current nonce; the response carries one in
    /// `DPoP-Nonce`. 401 `use_dpop_nonce`.
    UseDpopNonce,
    /// DPoP: a token presented with the `DPoP` scheme is not bound to a key (no
    /// `cnf.jkt`). 401 `invalid_token`.
    UnboundToken,
    /// DPoP: the layer requires DPoP and the token came as a bearer token.
    /// 401 `invalid_token`, with a `DPoP` challenge.
    DpopRequired,
    /// DPoP: the replay store could not be reached, so the proof cannot be checked for
    /// replay. 503 with `Retry-After`: never accepted unchecked.
    ReplayStoreUnavailable,
}

impl AuthErrorKind {
    /// The HTTP status this kind of rejection is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::InsufficientScope | Self::AccessDenied => StatusCode::FORBIDDEN,
            Self::KeysUnavailable | Self::ReplayStoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The gRPC status code of this kind, for gRPC calls: 16 `UNAUTHENTICATED` (missing
    /// or bad credentials), 7 `PERMISSION_DENIED` (scope or authorization), 14
    /// `UNAVAILABLE` (no usable key set), 3 `INVALID_ARGUMENT` (a malformed header).
    pub fn grpc_code(self) -> u16 {
        match self {
            Self::InvalidRequest => 3,
            Self::InsufficientScope | Self::AccessDenied => 7,
            Self::KeysUnavailable | Self::ReplayStoreUnavailable => 14,
            _ => 16,
        }
    }

    /// The RFC 6750 `error` code, if this kind has one.
    pub fn error_code(self) -> Option<&'static str> {
        match self {
            Self::MissingCredentials | Self::KeysUnavailable | Self::ReplayStoreUnavailable => None,
            Self::InvalidRequest => Some("invalid_request"),
            Self::InvalidDpopProof | Self::DpopKeyMismatch | Self::DpopReplay => {
                Some("invalid_dpop_proof")
            }
            Self::UseDpopNonce => Some("use_dpop_nonce"),
            Self::InsufficientScope | Self::AccessDenied => Some("insufficient_scope"),
            _ => Some("invalid_token"),
        }
    }

    /// A short, fixed, human-readable description. Never contains request data.
    pub fn description(self) -> &'static str {
        match self {
            Self::MissingCredentials => "no bearer token",
            Self::InvalidRequest => "malformed authorization header",
            Self::TokenTooLarge => "the token is too large",
            Self::Malformed => "the token is malformed",
            Self::UnsupportedTokenType => "the token type is not supported",
            Self::DisallowedAlgorithm => "the token's algorithm is not allowed",
            Self::UnsupportedCritical => "the token has an unsupported critical header",
            Self::UnknownKey => "the token's signing key is unknown",
            Self::KeyMismatch => "the token's key does not fit its algorithm",
            Self::InvalidSignature => "the token's signature is invalid",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not valid yet",
            Self::InvalidIssuer => "the token's issuer is not accepted",
            Self::InvalidAudience => "the token's audience is not accepted",
            Self::InvalidType => "the token's type is not accepted",
            Self::MissingClaim => "the token lacks a required claim",
            Self::InvalidClaims => "the token's claims are invalid",
            Self::BoundToken => "the token is bound to a key and cannot be used as a bearer token",
            Self::InsufficientScope => "the token lacks a required scope",
            Self::AccessDenied => "the token does not grant access to this resource",
            Self::KeysUnavailable => "signing keys are not available",
            Self::InvalidDpopProof => "the DPoP proof is invalid",
            Self::DpopKeyMismatch => "the DPoP proof's key is not the key the token is bound to",
            Self::DpopReplay => "the DPoP proof was already used",
            Self::UseDpopNonce => "the DPoP proof must carry the server's nonce",
            Self::UnboundToken => "the token is not bound to a DPoP key",
            Self::DpopRequired => "the token must be presented with a DPoP proof",
            Self::ReplayStoreUnavailable => "the DPoP replay store is not available",
        }
    }
}

impl AuthErrorKind {
    /// A stable snake_case code for this kind (`"expired"`, `"unknown_key"`, …), for logs,
    /// metrics and custom response bodies. Distinct from the RFC 6750
    /// [`error_code`](Self::error_code), which groups many kinds under `invalid_token`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingCredentials => "missing_credentials",
            Self::InvalidRequest => "invalid_request",
            Self::TokenTooLarge => "token_too_large",
            Self::Malformed => "malformed",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::DisallowedAlgorithm => "disallowed_algorithm",
            Self::UnsupportedCritical => "unsupported_critical",
            Self::UnknownKey => "unknown_key",
            Self::KeyMismatch => "key_mismatch",
            Self::InvalidSignature => "invalid_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::InvalidIssuer => "invalid_issuer",
            Self::InvalidAudience => "invalid_audience",
            Self::InvalidType => "invalid_type",
            Self::MissingClaim => "missing_claim",
            Self::InvalidClaims => "invalid_claims",
            Self::BoundToken => "bound_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::AccessDenied => "access_denied",
            Self::KeysUnavailable => "unavailable",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::DpopKeyMismatch => "dpop_key_mismatch",
            Self::DpopReplay => "dpop_replay",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::UnboundToken => "unbound_token",
            Self::DpopRequired => "dpop_required",
            Self::ReplayStoreUnavailable => "replay_store_unavailable",
        }
    }
}

impl fmt::Display for AuthErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// What a DPoP challenge says, besides the error: the accepted proof algorithms.
#[derive(Debug, Clone)]
pub(crate) struct DpopChallenge {
    /// Only DPoP: no `Bearer` challenge.
    pub(crate) required: bool,
    /// `algs="…"`, space-separated.
    pub(crate) algs: Arc<str>,
}

/// A rejected request: what went wrong, and how to answer it.
///
/// `AuthError` is what the layer answers with (through its [`IntoResponse`](axum::response::IntoResponse) impl) and it
/// also rides in the rejection response's extensions, so outer layers can log it:
///
/// ```
/// # use axum::response::Response;
/// # fn log(response: &Response) {
/// if let Some(err) = response.extensions().get::<jwks_auth::AuthError>() {
///     tracing::info!(kind = ?err.kind(), "request rejected");
/// }
/// # }
/// ```
///
/// Nothing in an `AuthError` comes from the request: descriptions are fixed strings, the
/// realm and scopes come from the configuration.
#[derive(Debug, Clone)]
pub struct AuthError {
    pub(crate) kind: AuthErrorKind,
    pub(crate) realm: Option<Arc<str>>,
    pub(crate) scope: Option<Arc<str>>,
    pub(crate) retry_after: Option<Duration>,
    /// The request used the `DPoP` scheme (or the error is about its proof): the error
    /// is told in a `DPoP` challenge.
    pub(crate) dpop: bool,
    /// The layer's DPoP settings, when DPoP is on (added by the renderer, like the realm).
    pub(crate) challenge: Option<Arc<DpopChallenge>>,
    /// The current server nonce, sent as `DPoP-Nonce`.
    pub(crate) nonce: Option<http::HeaderValue>,
    /// Set once a layer's renderer produced the response, so that a layer seeing this
    /// error in a response from inside renders a handler's rejection but never its own.
    pub(crate) rendered: bool,
}

impl AuthError {
    pub(crate) fn new(kind: AuthErrorKind) -> Self {
        Self {
            kind,
            realm: None,
            scope: None,
            retry_after: None,
            dpop: false,
            challenge: None,
            nonce: None,
            rendered: false,
        }
    }

    pub(crate) fn unavailable(retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(AuthErrorKind::KeysUnavailable)
        }
    }

    /// A 403 `insufficient_scope` rejection naming the scopes the resource needs.
    ///
    /// Scope tokens are filtered to RFC 6749's `scope-token` characters (printable ASCII
    /// without space, `"` and `\`), so the challenge header is always well-formed.
    pub fn insufficient_scope<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut joined = String::new();
        for scope in scopes {
            let scope = scope.as_ref();
            if scope.is_empty() || !scope.bytes().all(is_scope_char) {
                continue;
            }
            if !joined.is_empty() {
                joined.push(' ');
            }
            joined.push_str(scope);
        }
        Self {
            scope: (!joined.is_empty()).then(|| Arc::from(joined)),
            ..Self::new(AuthErrorKind::InsufficientScope)
        }
    }

    pub(crate) fn with_realm(mut self, realm: Option<&Arc<str>>) -> Self {
        if self.realm.is_none() {
            self.realm = realm.cloned();
        }
        self
    }

    /// The realm of the challenge, if one was configured.
    pub fn realm(&self) -> Option<&str> {
        self.realm.as_deref()
    }

    /// What went wrong.
    pub fn kind(&self) -> AuthErrorKind {
        self.kind
    }

    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The scopes named in an `insufficient_scope` challenge, space-separated.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// For [`AuthErrorKind::KeysUnavailable`]: how long the client should wait.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

impl std::error::Error for AuthError {}

impl From<AuthErrorKind> for AuthError {
    fn from(kind: AuthErrorKind) -> Self {
        Self::new(kind)
    }
}

fn is_scope_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)
}

/// A realm is configuration, but it ends up inside a quoted-string: keep only characters
/// that need no escaping.
pub(crate) fn sanitize_realm(realm: &str) -> Arc<str> {
    let clean: String = realm
        .chars()
        .filter(|c| matches!(*c, ' '..='~') && *c != '"' && *c != '\\')
        .collect();
    Arc::from(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_shapes() {
        let missing = AuthError::new(AuthErrorKind::MissingCredentials);
        assert_eq!(missing.www_authenticate().unwrap(), "Bearer");
        let with_realm = missing.clone().with_realm(Some(&sanitize_realm("api")));
        assert_eq!(
            with_realm.www_authenticate().unwrap(),
            r#"Bearer realm="api""#
        );

        let invalid = AuthError::new(AuthErrorKind::Expired).with_realm(Some(&Arc::from("r")));
        assert_eq!(
            invalid.www_authenticate().unwrap(),
            r#"Bearer realm="r", error="invalid_token", error_description="the token has expired""#
        );
        assert!(
            AuthError::unavailable(Duration::from_secs(3))
                .www_authenticate()
                .is_none()
        );
    }

    #[test]
    fn scopes_and_realms_cannot_break_the_header() {
        let e =
            AuthError::insufficient_scope(["ok", "bad\"quote", "sp ace", "x\r\ny", "", "fine:1"]);
        assert_eq!(e.scope(), Some("ok fine:1"));
        assert_eq!(&*sanitize_realm("a\"b\\c\r\nd\u{7f}é"), "abcd");
    }

    #[test]
    fn every_kind_has_a_plain_description() {
        use AuthErrorKind::*;
        for kind in [
            MissingCredentials,
            InvalidRequest,
            TokenTooLarge,
            Malformed,
            UnsupportedTokenType,
            DisallowedAlgorithm,
            UnsupportedCritical,
            UnknownKey,
            KeyMismatch,
            InvalidSignature,
            Expired,
            NotYetValid,
            InvalidIssuer,
            InvalidAudience,
            InvalidType,
            MissingClaim,
            InvalidClaims,
            InsufficientScope,
            AccessDenied,
            KeysUnavailable,
            InvalidDpopProof,
            DpopKeyMismatch,
            DpopReplay,
            UseDpopNonce,
            UnboundToken,
            DpopRequired,
            ReplayStoreUnavailable,
        ] {
            let d = kind.description();
            assert!(
                d.bytes()
                    .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
            );
            let body: serde_json::Value =
                serde_json::from_str(&AuthError::new(kind).body_json()).unwrap();
            assert_eq!(body["error_description"], d);
        }
    }
}
