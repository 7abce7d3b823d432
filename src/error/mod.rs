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
///
/// # Stable codes
///
/// What each kind is answered with; [`as_str`](Self::as_str) is stable across versions
/// (for logs, metrics' `kind` label and your own bodies), `error` is the RFC 6750 /
/// RFC 9449 code of the challenge, gRPC the status code of a gRPC call's answer. (A
/// test reads this table against the enum, so it cannot drift.)
///
/// | kind | [`as_str`](Self::as_str) | HTTP | gRPC | `error` |
/// |---|---|---|---|---|
/// | [`MissingCredentials`](Self::MissingCredentials) | `missing_credentials` | 401 | 16 | — |
/// | [`InvalidRequest`](Self::InvalidRequest) | `invalid_request` | 400 | 3 | `invalid_request` |
/// | [`TokenTooLarge`](Self::TokenTooLarge) | `token_too_large` | 401 | 16 | `invalid_token` |
/// | [`Malformed`](Self::Malformed) | `malformed` | 401 | 16 | `invalid_token` |
/// | [`UnsupportedTokenType`](Self::UnsupportedTokenType) | `unsupported_token_type` | 401 | 16 | `invalid_token` |
/// | [`DisallowedAlgorithm`](Self::DisallowedAlgorithm) | `disallowed_algorithm` | 401 | 16 | `invalid_token` |
/// | [`UnsupportedCritical`](Self::UnsupportedCritical) | `unsupported_critical` | 401 | 16 | `invalid_token` |
/// | [`UnknownKey`](Self::UnknownKey) | `unknown_key` | 401 | 16 | `invalid_token` |
/// | [`KeyMismatch`](Self::KeyMismatch) | `key_mismatch` | 401 | 16 | `invalid_token` |
/// | [`InvalidSignature`](Self::InvalidSignature) | `invalid_signature` | 401 | 16 | `invalid_token` |
/// | [`Expired`](Self::Expired) | `expired` | 401 | 16 | `invalid_token` |
/// | [`NotYetValid`](Self::NotYetValid) | `not_yet_valid` | 401 | 16 | `invalid_token` |
/// | [`InvalidIssuer`](Self::InvalidIssuer) | `invalid_issuer` | 401 | 16 | `invalid_token` |
/// | [`InvalidAudience`](Self::InvalidAudience) | `invalid_audience` | 401 | 16 | `invalid_token` |
/// | [`InvalidType`](Self::InvalidType) | `invalid_type` | 401 | 16 | `invalid_token` |
/// | [`MissingClaim`](Self::MissingClaim) | `missing_claim` | 401 | 16 | `invalid_token` |
/// | [`InvalidClaims`](Self::InvalidClaims) | `invalid_claims` | 401 | 16 | `invalid_token` |
/// | [`BoundToken`](Self::BoundToken) | `bound_token` | 401 | 16 | `invalid_token` |
/// | [`InsufficientScope`](Self::InsufficientScope) | `insufficient_scope` | 403 | 7 | `insufficient_scope` |
/// | [`AccessDenied`](Self::AccessDenied) | `access_denied` | 403 | 7 | `insufficient_scope` |
/// | [`KeysUnavailable`](Self::KeysUnavailable) | `keys_unavailable` | 503 | 14 | — |
/// | [`InvalidDpopProof`](Self::InvalidDpopProof) | `invalid_dpop_proof` | 401 | 16 | `invalid_dpop_proof` |
/// | [`DpopKeyMismatch`](Self::DpopKeyMismatch) | `dpop_key_mismatch` | 401 | 16 | `invalid_dpop_proof` |
/// | [`DpopReplay`](Self::DpopReplay) | `dpop_replay` | 401 | 16 | `invalid_dpop_proof` |
/// | [`UseDpopNonce`](Self::UseDpopNonce) | `use_dpop_nonce` | 401 | 16 | `use_dpop_nonce` |
/// | [`UnboundToken`](Self::UnboundToken) | `unbound_token` | 401 | 16 | `invalid_token` |
/// | [`DpopRequired`](Self::DpopRequired) | `dpop_required` | 401 | 16 | `invalid_token` |
/// | [`ReplayStoreUnavailable`](Self::ReplayStoreUnavailable) | `replay_store_unavailable` | 503 | 14 | — |
/// | [`InactiveToken`](Self::InactiveToken) | `inactive_token` | 401 | 16 | `invalid_token` |
/// | [`IntrospectionUnavailable`](Self::IntrospectionUnavailable) | `introspection_unavailable` | 503 | 14 | — |
/// | [`Misconfigured`](Self::Misconfigured) | `misconfigured` | 500 | 13 | — |
///
/// With DPoP, a `DPoP` challenge carries the errors of a DPoP request; 5xx answers carry
/// no challenge and 503 a `Retry-After`.
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
    /// Introspection (RFC 7662): the endpoint says the token is not active (revoked,
    /// expired, unknown), or its answer is not an introspection response. 401
    /// `invalid_token`.
    InactiveToken,
    /// Introspection: the endpoint could not answer (down, an error status, a timeout,
    /// our client credentials refused), or the layer's budget of calls is spent. 503
    /// with `Retry-After`: never accepted unchecked.
    IntrospectionUnavailable,
    /// The service is wired or configured wrongly (a route layer with no auth layer
    /// above it, one for another claims type, a misconfigured layer's
    /// [`verify`](crate::JwksAuth::verify)): the operator's mistake, not the client's.
    /// 500, and an ERROR in the log naming the fix.
    Misconfigured,
}

/// Everything the crate says about one kind of rejection: one row of
/// [`AuthErrorKind::facts`].
struct Facts {
    status: StatusCode,
    grpc: u16,
    /// The RFC 6750 / RFC 9449 `error` code, if the challenge carries one.
    error: Option<&'static str>,
    code: &'static str,
    description: &'static str,
}

const fn row(
    status: StatusCode,
    grpc: u16,
    error: Option<&'static str>,
    code: &'static str,
    description: &'static str,
) -> Facts {
    Facts {
        status,
        grpc,
        error,
        code,
        description,
    }
}

const UNAUTHORIZED: StatusCode = StatusCode::UNAUTHORIZED;
const INVALID_TOKEN: Option<&str> = Some("invalid_token");
const INVALID_PROOF: Option<&str> = Some("invalid_dpop_proof");

impl AuthErrorKind {
    /// The one table of the kinds: HTTP status, gRPC code, RFC 6750 `error`, stable code
    /// and description. Exhaustive, so a new kind cannot fall into a default row.
    #[rustfmt::skip]
    const fn facts(self) -> Facts {
        use StatusCode as S;
        match self {
            Self::MissingCredentials => row(UNAUTHORIZED, 16, None, "missing_credentials", "no bearer token"),
            Self::InvalidRequest => row(S::BAD_REQUEST, 3, Some("invalid_request"), "invalid_request", "malformed authorization header"),
            Self::TokenTooLarge => row(UNAUTHORIZED, 16, INVALID_TOKEN, "token_too_large", "the token is too large"),
            Self::Malformed => row(UNAUTHORIZED, 16, INVALID_TOKEN, "malformed", "the token is malformed"),
            Self::UnsupportedTokenType => row(UNAUTHORIZED, 16, INVALID_TOKEN, "unsupported_token_type", "the token type is not supported"),
            Self::DisallowedAlgorithm => row(UNAUTHORIZED, 16, INVALID_TOKEN, "disallowed_algorithm", "the token's algorithm is not allowed"),
            Self::UnsupportedCritical => row(UNAUTHORIZED, 16, INVALID_TOKEN, "unsupported_critical", "the token has an unsupported critical header"),
            Self::UnknownKey => row(UNAUTHORIZED, 16, INVALID_TOKEN, "unknown_key", "the token's signing key is unknown"),
            Self::KeyMismatch => row(UNAUTHORIZED, 16, INVALID_TOKEN, "key_mismatch", "the token's key does not fit its algorithm"),
            Self::InvalidSignature => row(UNAUTHORIZED, 16, INVALID_TOKEN, "invalid_signature", "the token's signature is invalid"),
            Self::Expired => row(UNAUTHORIZED, 16, INVALID_TOKEN, "expired", "the token has expired"),
            Self::NotYetValid => row(UNAUTHORIZED, 16, INVALID_TOKEN, "not_yet_valid", "the token is not valid yet"),
            Self::InvalidIssuer => row(UNAUTHORIZED, 16, INVALID_TOKEN, "invalid_issuer", "the token's issuer is not accepted"),
            Self::InvalidAudience => row(UNAUTHORIZED, 16, INVALID_TOKEN, "invalid_audience", "the token's audience is not accepted"),
            Self::InvalidType => row(UNAUTHORIZED, 16, INVALID_TOKEN, "invalid_type", "the token's type is not accepted"),
            Self::MissingClaim => row(UNAUTHORIZED, 16, INVALID_TOKEN, "missing_claim", "the token lacks a required claim"),
            Self::InvalidClaims => row(UNAUTHORIZED, 16, INVALID_TOKEN, "invalid_claims", "the token's claims are invalid"),
            Self::BoundToken => row(UNAUTHORIZED, 16, INVALID_TOKEN, "bound_token", "the token is bound to a key and cannot be used as a bearer token"),
            Self::InsufficientScope => row(S::FORBIDDEN, 7, Some("insufficient_scope"), "insufficient_scope", "the token lacks a required scope"),
            Self::AccessDenied => row(S::FORBIDDEN, 7, Some("insufficient_scope"), "access_denied", "the token does not grant access to this resource"),
            Self::KeysUnavailable => row(S::SERVICE_UNAVAILABLE, 14, None, "keys_unavailable", "signing keys are not available"),
            Self::InvalidDpopProof => row(UNAUTHORIZED, 16, INVALID_PROOF, "invalid_dpop_proof", "the DPoP proof is invalid"),
            Self::DpopKeyMismatch => row(UNAUTHORIZED, 16, INVALID_PROOF, "dpop_key_mismatch", "the DPoP proof's key is not the key the token is bound to"),
            Self::DpopReplay => row(UNAUTHORIZED, 16, INVALID_PROOF, "dpop_replay", "the DPoP proof was already used"),
            Self::UseDpopNonce => row(UNAUTHORIZED, 16, Some("use_dpop_nonce"), "use_dpop_nonce", "the DPoP proof must carry the server's nonce"),
            Self::UnboundToken => row(UNAUTHORIZED, 16, INVALID_TOKEN, "unbound_token", "the token is not bound to a DPoP key"),
            Self::DpopRequired => row(UNAUTHORIZED, 16, INVALID_TOKEN, "dpop_required", "the token must be presented with a DPoP proof"),
            Self::ReplayStoreUnavailable => row(S::SERVICE_UNAVAILABLE, 14, None, "replay_store_unavailable", "the DPoP replay store is not available"),
            Self::InactiveToken => row(UNAUTHORIZED, 16, INVALID_TOKEN, "inactive_token", "the token is not active"),
            Self::IntrospectionUnavailable => row(S::SERVICE_UNAVAILABLE, 14, None, "introspection_unavailable", "token introspection is not available"),
            Self::Misconfigured => row(S::INTERNAL_SERVER_ERROR, 13, None, "misconfigured", "the authentication layer is misconfigured"),
        }
    }

    /// The HTTP status this kind of rejection is answered with.
    pub const fn status(self) -> StatusCode {
        self.facts().status
    }

    /// The gRPC status code of this kind, for gRPC calls: 16 `UNAUTHENTICATED` (missing
    /// or bad credentials), 7 `PERMISSION_DENIED` (scope or authorization), 14
    /// `UNAVAILABLE` (no usable key set or replay store), 3 `INVALID_ARGUMENT` (a
    /// malformed header).
    pub const fn grpc_code(self) -> u16 {
        self.facts().grpc
    }

    /// The RFC 6750 (or RFC 9449) `error` code of the challenge, if this kind has one.
    pub const fn error_code(self) -> Option<&'static str> {
        self.facts().error
    }

    /// A short, fixed, human-readable description. Never contains request data.
    pub const fn description(self) -> &'static str {
        self.facts().description
    }

    /// A stable snake_case code for this kind (`"expired"`, `"unknown_key"`, …), for logs,
    /// metrics and custom response bodies. Distinct from the RFC 6750
    /// [`error_code`](Self::error_code), which groups many kinds under `invalid_token`.
    pub const fn as_str(self) -> &'static str {
        self.facts().code
    }
}

impl fmt::Display for AuthErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// A rejected request: what went wrong, and how to answer it.
///
/// `AuthError` is what the layer answers with, and it also rides in the rejection
/// response's extensions, so outer layers can log it:
///
/// ```
/// # use axum::response::Response;
/// # fn log(response: &Response) {
/// if let Some(err) = response.extensions().get::<jwks_auth::AuthError>() {
///     tracing::info!(kind = err.kind().as_str(), "request rejected");
/// }
/// # }
/// ```
///
/// A handler (or a check) may return one: behind the layer it is answered like the
/// layer's own rejections (realm, DPoP scheme, the user's hook). Nothing in an
/// `AuthError` comes from the request: descriptions are fixed strings, scopes come from
/// the configuration. How it is told (realm, scheme, nonce, gRPC) belongs to the layer's
/// renderer, not to the error.
#[derive(Debug, Clone)]
pub struct AuthError {
    kind: AuthErrorKind,
    scope: Option<Arc<str>>,
    retry_after: Option<Duration>,
}

impl AuthError {
    pub(crate) const fn new(kind: AuthErrorKind) -> Self {
        Self {
            kind,
            scope: None,
            retry_after: None,
        }
    }

    /// A 503 whose `Retry-After` is `retry_after` (at least a second).
    pub(crate) fn unavailable(kind: AuthErrorKind, retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(kind)
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

    /// For a 503: how long the client should wait.
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
    fn scopes_and_realms_cannot_break_the_header() {
        let e =
            AuthError::insufficient_scope(["ok", "bad\"quote", "sp ace", "x\r\ny", "", "fine:1"]);
        assert_eq!(e.scope(), Some("ok fine:1"));
        assert_eq!(&*sanitize_realm("a\"b\\c\r\nd\u{7f}é"), "abcd");
    }

    /// Every kind, by an exhaustive match: a new kind fails to compile here until added.
    fn all_kinds() -> Vec<AuthErrorKind> {
        use AuthErrorKind::*;
        let all = vec![
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
            BoundToken,
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
            InactiveToken,
            IntrospectionUnavailable,
            Misconfigured,
        ];
        for kind in &all {
            match kind {
                MissingCredentials
                | InvalidRequest
                | TokenTooLarge
                | Malformed
                | UnsupportedTokenType
                | DisallowedAlgorithm
                | UnsupportedCritical
                | UnknownKey
                | KeyMismatch
                | InvalidSignature
                | Expired
                | NotYetValid
                | InvalidIssuer
                | InvalidAudience
                | InvalidType
                | MissingClaim
                | InvalidClaims
                | BoundToken
                | InsufficientScope
                | AccessDenied
                | KeysUnavailable
                | InvalidDpopProof
                | DpopKeyMismatch
                | DpopReplay
                | UseDpopNonce
                | UnboundToken
                | DpopRequired
                | ReplayStoreUnavailable
                | InactiveToken
                | IntrospectionUnavailable
                | Misconfigured => {}
            }
        }
        all
    }

    #[test]
    fn the_stable_codes_table_is_the_enum() {
        let source = include_str!("mod.rs");
        let rows: Vec<&str> = source
            .lines()
            .filter(|l| l.starts_with("/// | [`"))
            .collect();
        let kinds = all_kinds();
        assert_eq!(rows.len(), kinds.len(), "one row per kind");
        for (row, kind) in rows.iter().zip(&kinds) {
            let cells: Vec<&str> = row
                .trim_start_matches("///")
                .split('|')
                .map(str::trim)
                .collect();
            assert!(cells[1].starts_with(&format!("[`{kind:?}`]")), "{row}");
            assert_eq!(cells[2], format!("`{}`", kind.as_str()), "{row}");
            assert_eq!(cells[3], kind.status().as_str(), "{row}");
            assert_eq!(cells[4], kind.grpc_code().to_string(), "{row}");
            let error = kind
                .error_code()
                .map_or("—".to_owned(), |e| format!("`{e}`"));
            assert_eq!(cells[5], error, "{row}");
        }
    }

    #[test]
    fn every_kind_has_a_plain_description() {
        for kind in all_kinds() {
            let d = kind.description();
            assert!(
                d.bytes()
                    .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
            );
            let code = kind.as_str();
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
        }
    }
}
