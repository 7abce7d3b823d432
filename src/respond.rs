//! One renderer for every rejection: the layer's, the route layers' ([`Authorize`]) and
//! those of handlers that return an [`AuthError`].
//!
//! A rejection is always a response, never an error of the inner service. By default it
//! is the RFC 6750 answer: the status of the [`AuthErrorKind`], a `WWW-Authenticate`
//! challenge (with the configured `realm`), `Cache-Control: no-store`, a small JSON body,
//! and `Retry-After` on a 503. A user's [`on_rejection`](crate::JwksAuth::on_rejection)
//! hook replaces it: its response keeps its own status and headers, and gets the
//! default's where it set none (a hook that answers 200 gets the error's status). Either
//! way the [`AuthError`] rides in the response's extensions. How the error is told
//! (realm, scheme, nonce, gRPC) is the renderer's: the error holds only what went wrong.
//!
//! # gRPC
//!
//! A request whose `content-type` is `application/grpc` (or `application/grpc+proto`,
//! `+json`, …) gets a trailers-only gRPC response instead, whatever the hook: HTTP 200,
//! `content-type: application/grpc`, `grpc-status` from
//! [`AuthErrorKind::grpc_code`] (16 `UNAUTHENTICATED`, 7 `PERMISSION_DENIED`, 14
//! `UNAVAILABLE`, 3 `INVALID_ARGUMENT`), a fixed `grpc-message` (the kind's
//! description), and the `WWW-Authenticate` challenge and `Retry-After` kept for clients
//! that read them. gRPC clients then see a status, not a transport error.
//!
//! The layer puts its [`Responder`] in the extensions of every request it lets through
//! (with the claims and the scheme the request used, see `extract`), so the route layers
//! behind it answer exactly as it does (same realm, same hook, same scheme).
//!
//! [`Authorize`]: crate::Authorize

use std::fmt;
use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::error::{AuthError, AuthErrorKind};

/// RFC 9449 §8.1: the server's current nonce.
pub(crate) const DPOP_NONCE: &str = "dpop-nonce";

/// A user's replacement for rejection responses.
pub(crate) type Rejector = Arc<dyn Fn(&AuthError) -> Response + Send + Sync>;

/// What a layer with DPoP on says in its challenges, besides the error.
#[derive(Debug, Clone)]
pub(crate) struct DpopChallenge {
    /// Only DPoP: no `Bearer` challenge.
    pub(crate) required: bool,
    /// `algs="…"`, space-separated.
    pub(crate) algs: Arc<str>,
}

/// What only the request knows about how to answer it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reply {
    /// A gRPC call: a trailers-only gRPC status.
    pub(crate) grpc: bool,
    /// The request used the `DPoP` scheme (or sent a proof): the error is told in a
    /// `DPoP` challenge.
    pub(crate) dpop: bool,
    /// The current DPoP nonce, sent as `DPoP-Nonce`.
    pub(crate) nonce: Option<HeaderValue>,
}

impl Reply {
    /// How to answer `headers`' request, before anything else is known.
    pub(crate) fn to(headers: &HeaderMap) -> Self {
        Self {
            grpc: is_grpc(headers),
            ..Self::default()
        }
    }
}

/// Marks a response a layer's renderer produced: a layer seeing an [`AuthError`] in a
/// response from inside renders a handler's rejection, never one already rendered.
#[derive(Debug, Clone, Copy)]
struct Rendered;

/// How a layer answers rejections; shared by the layer and the route layers behind it.
#[derive(Clone, Default)]
pub(crate) struct Responder {
    pub(crate) realm: Option<Arc<str>>,
    pub(crate) hook: Option<Rejector>,
    /// The claims type the layer produces, for the error log of a mismatched route layer.
    pub(crate) claims_type: &'static str,
    /// The layer's DPoP challenge parameters, when DPoP is on.
    pub(crate) dpop: Option<DpopChallenge>,
    /// RFC 9728: the metadata document's URL, in every challenge, and the scopes a
    /// request without credentials is told it needs.
    pub(crate) resource: Option<ResourceChallenge>,
    /// The layer's scope hierarchy, for its route layers (carried with the responder in
    /// every admitted request).
    pub(crate) scopes: Option<Arc<crate::claims::ScopeHierarchy>>,
}

/// What a layer with [`ResourceMetadata`](crate::ResourceMetadata) adds to challenges.
#[derive(Debug, Clone)]
pub(crate) struct ResourceChallenge {
    pub(crate) metadata_url: Arc<str>,
    /// Space-separated; empty when none are declared.
    pub(crate) scopes: Arc<str>,
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("realm", &self.realm)
            .field("hook", &self.hook.is_some())
            .field("claims_type", &self.claims_type)
            .field("dpop", &self.dpop)
            .field("resource", &self.resource)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Whether the request is a gRPC call (`content-type: application/grpc*`).
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

impl Responder {
    /// The layer's answer to `error`, marked as rendered.
    pub(crate) fn respond(&self, error: AuthError, reply: &Reply) -> Response {
        tracing::debug!(kind = error.kind().as_str(), "jwks-auth: request rejected");
        let mut response = self.render(error, reply);
        response.extensions_mut().insert(Rendered);
        response
    }

    /// gRPC's trailers-only status for a gRPC call, else the hook's response or the
    /// RFC 6750 default; the status and headers of the default are kept where the hook's
    /// response leaves them unset, and the error rides in the extensions.
    fn render(&self, error: AuthError, reply: &Reply) -> Response {
        let kind = error.kind();
        let headers = self.headers(&error, reply);
        let mut response = if reply.grpc {
            let mut response = Response::new(Body::empty());
            let h = response.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            h.insert("grpc-status", HeaderValue::from(kind.grpc_code()));
            // Fixed ASCII descriptions: nothing to percent-encode.
            h.insert("grpc-message", HeaderValue::from_static(kind.description()));
            response
        } else if let Some(hook) = &self.hook {
            let mut response = hook(&error);
            if response.status() == StatusCode::OK {
                *response.status_mut() = kind.status();
            }
            response
        } else {
            let mut response = Response::new(Body::from(body_json(kind)));
            *response.status_mut() = kind.status();
            let h = response.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        };
        let h = response.headers_mut();
        for (name, value) in headers {
            if let Some(name) = name {
                h.entry(name).or_insert(value);
            }
        }
        response.extensions_mut().insert(error);
        response
    }

    /// `Cache-Control: no-store`, the challenge, `Retry-After` on a 503, and the nonce.
    fn headers(&self, error: &AuthError, reply: &Reply) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(4);
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = self.challenge(error, reply.dpop) {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        if let Some(retry) = error.retry_after() {
            headers.insert(RETRY_AFTER, HeaderValue::from(retry.as_secs().max(1)));
        }
        if let Some(nonce) = &reply.nonce {
            headers.insert(DPOP_NONCE, nonce.clone());
        }
        headers
    }

    /// The `WWW-Authenticate` challenge for `error` (a 5xx has none: it is no matter of
    /// credentials).
    ///
    /// Without DPoP, one `Bearer` challenge. With DPoP (RFC 9449 §7.1), the error is told
    /// in the scheme the request used (`in_dpop`; always `DPoP` on a layer that requires
    /// it), with `algs="…"`; a layer that allows both schemes names both, `Bearer` first
    /// (a client that reads one challenge reads the first), the other one bare:
    /// `Bearer realm="api", DPoP realm="api", algs="ES256"`.
    fn challenge(&self, error: &AuthError, in_dpop: bool) -> Option<HeaderValue> {
        if error.status().is_server_error() {
            return None;
        }
        let dpop = self.dpop.as_ref();
        let in_dpop = dpop.is_some_and(|c| in_dpop || c.required);
        let algs = dpop.map(|c| &*c.algs);
        let mut value = String::with_capacity(128);
        if !dpop.is_some_and(|c| c.required) {
            self.push_challenge(&mut value, error, "Bearer", !in_dpop, None);
        }
        if let Some(algs) = algs {
            if !value.is_empty() {
                value.push_str(", ");
            }
            self.push_challenge(&mut value, error, "DPoP", in_dpop, Some(algs));
        }
        // Every piece is a fixed string or was filtered when configured; fall back to the
        // bare scheme rather than panic if that ever stops being true.
        Some(HeaderValue::try_from(value).unwrap_or_else(|_| HeaderValue::from_static("Bearer")))
    }

    fn push_challenge(
        &self,
        out: &mut String,
        error: &AuthError,
        scheme: &str,
        with_error: bool,
        algs: Option<&str>,
    ) {
        out.push_str(scheme);
        let mut sep = " ";
        let mut param = |out: &mut String, name: &str, value: &str| {
            out.push_str(sep);
            out.push_str(name);
            out.push_str("=\"");
            out.push_str(value);
            out.push('"');
            sep = ", ";
        };
        if let Some(realm) = &self.realm {
            param(out, "realm", realm);
        }
        match error.kind().error_code().filter(|_| with_error) {
            Some(code) => {
                param(out, "error", code);
                param(out, "error_description", error.kind().description());
                if let Some(scope) = error.scope() {
                    param(out, "scope", scope);
                }
            }
            // No credentials (RFC 6750 §3.1: no `error`): the scopes a request needs.
            None if with_error && error.kind() == AuthErrorKind::MissingCredentials => {
                if let Some(r) = self.resource.as_ref().filter(|r| !r.scopes.is_empty()) {
                    param(out, "scope", &r.scopes);
                }
            }
            None => {}
        }
        if let Some(resource) = &self.resource {
            param(out, "resource_metadata", &resource.metadata_url);
        }
        if let Some(algs) = algs {
            param(out, "algs", algs);
        }
    }
}

/// A response from inside the layer that carries an [`AuthError`] no layer rendered (a
/// handler returned it, e.g. from [`Scopes::require_scopes`]) is rendered again by the
/// layer's responder, so it gets the realm, the scheme and the user's hook like every
/// other rejection. Any other response is returned as it is.
///
/// [`Scopes::require_scopes`]: crate::Scopes::require_scopes
pub(crate) fn rerender<B>(
    responder: &Responder,
    response: http::Response<B>,
    reply: &Reply,
) -> Result<Response, http::Response<B>> {
    let extensions = response.extensions();
    match extensions.get::<AuthError>() {
        Some(error) if extensions.get::<Rendered>().is_none() => {
            Ok(responder.respond(error.clone(), reply))
        }
        _ => Err(response),
    }
}

/// The small JSON body of the default response: `{"error":…,"error_description":…}`.
fn body_json(kind: AuthErrorKind) -> String {
    let error = match kind {
        AuthErrorKind::MissingCredentials => "unauthorized",
        kind if kind.status() == StatusCode::SERVICE_UNAVAILABLE => "temporarily_unavailable",
        kind if kind.status().is_server_error() => "server_error",
        kind => kind.error_code().unwrap_or("unauthorized"),
    };
    // Both strings are fixed ASCII without quotes or backslashes.
    format!(
        r#"{{"error":"{error}","error_description":"{}"}}"#,
        kind.description()
    )
}

/// The answer outside any layer: a bare `Bearer` challenge, the JSON body. Behind a
/// layer, the layer renders the error again with its realm, scheme and hook.
impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        Responder::default().render(self, &Reply::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn grpc() -> Reply {
        Reply {
            grpc: true,
            ..Reply::default()
        }
    }

    #[test]
    fn grpc_calls_get_trailers_only_statuses_whatever_the_hook() {
        let hooked = Responder {
            realm: Some(Arc::from("api")),
            hook: Some(Arc::new(|_: &AuthError| "http body".into_response())),
            ..Responder::default()
        };
        for (kind, code) in [
            (AuthErrorKind::MissingCredentials, "16"),
            (AuthErrorKind::Expired, "16"),
            (AuthErrorKind::InsufficientScope, "7"),
            (AuthErrorKind::AccessDenied, "7"),
            (AuthErrorKind::KeysUnavailable, "14"),
            (AuthErrorKind::InvalidRequest, "3"),
        ] {
            let response = hooked.respond(kind.into(), &grpc());
            assert_eq!(response.status(), 200, "{kind:?}");
            let h = response.headers();
            assert_eq!(h["content-type"], "application/grpc");
            assert_eq!(h["grpc-status"], code, "{kind:?}");
            assert_eq!(h["grpc-message"], kind.description());
            assert_eq!(
                h.get(WWW_AUTHENTICATE).is_some(),
                kind != AuthErrorKind::KeysUnavailable
            );
            assert!(response.extensions().get::<AuthError>().is_some());
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/grpc+proto"),
        );
        assert!(is_grpc(&headers));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(!is_grpc(&headers));
    }

    #[test]
    fn challenge_shapes() {
        let plain = Responder::default();
        let challenge = |r: &Responder, e: AuthError| r.challenge(&e, false);
        assert_eq!(
            challenge(&plain, AuthErrorKind::MissingCredentials.into()).unwrap(),
            "Bearer"
        );
        let realm = Responder {
            realm: Some(Arc::from("r")),
            ..Responder::default()
        };
        assert_eq!(
            challenge(&realm, AuthErrorKind::MissingCredentials.into()).unwrap(),
            r#"Bearer realm="r""#
        );
        assert_eq!(
            challenge(&realm, AuthErrorKind::Expired.into()).unwrap(),
            r#"Bearer realm="r", error="invalid_token", error_description="the token has expired""#
        );
        let unavailable =
            AuthError::unavailable(AuthErrorKind::KeysUnavailable, Duration::from_secs(3));
        assert!(challenge(&realm, unavailable).is_none());
        let dpop = Responder {
            dpop: Some(DpopChallenge {
                required: false,
                algs: Arc::from("ES256"),
            }),
            ..realm
        };
        assert_eq!(
            dpop.challenge(&AuthErrorKind::DpopReplay.into(), true)
                .unwrap(),
            r#"Bearer realm="r", DPoP realm="r", error="invalid_dpop_proof", error_description="the DPoP proof was already used", algs="ES256""#
        );
        assert_eq!(
            dpop.challenge(&AuthErrorKind::MissingCredentials.into(), false)
                .unwrap(),
            r#"Bearer realm="r", DPoP realm="r", algs="ES256""#
        );
    }

    #[test]
    fn a_hook_keeps_the_status_and_every_header_it_does_not_set() {
        let hooked = Responder {
            realm: Some(Arc::from("api")),
            hook: Some(Arc::new(|e: &AuthError| {
                if e.kind() == AuthErrorKind::Expired {
                    (StatusCode::IM_A_TEAPOT, "teapot").into_response()
                } else {
                    "custom".into_response()
                }
            })),
            ..Responder::default()
        };
        let err = AuthError::unavailable(AuthErrorKind::KeysUnavailable, Duration::from_secs(7));
        let response = hooked.respond(err, &Reply::default());
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[RETRY_AFTER], "7");
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        assert!(response.extensions().get::<AuthError>().is_some());

        let response = hooked.respond(AuthErrorKind::Expired.into(), &Reply::default());
        assert_eq!(
            response.status(),
            StatusCode::IM_A_TEAPOT,
            "the hook's own status"
        );
        assert_eq!(
            response.headers()[WWW_AUTHENTICATE],
            r#"Bearer realm="api", error="invalid_token", error_description="the token has expired""#
        );
    }

    #[test]
    fn a_handlers_error_is_rendered_again_but_never_twice() {
        let responder = Responder {
            realm: Some(Arc::from("r")),
            ..Responder::default()
        };
        let from_handler = AuthError::insufficient_scope(["a"]).into_response();
        assert_eq!(
            from_handler.headers()[WWW_AUTHENTICATE],
            r#"Bearer error="insufficient_scope", error_description="the token lacks a required scope", scope="a""#
        );
        let rendered = rerender(&responder, from_handler, &Reply::default()).unwrap();
        assert!(
            rendered.headers()[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with(r#"Bearer realm="r", error="insufficient_scope""#)
        );
        assert!(rerender(&responder, rendered, &Reply::default()).is_err());
    }
}
