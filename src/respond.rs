//! One renderer for every rejection: the layer's, the route layers' ([`Authorize`]) and
//! those of handlers that return an [`AuthError`].
//!
//! A rejection is always a response, never an error of the inner service. By default it
//! is the RFC 6750 answer: the status of the [`AuthErrorKind`], a `WWW-Authenticate`
//! challenge (with the configured `realm`), `Cache-Control: no-store`, a small JSON body,
//! and `Retry-After` on a 503. A user's [`on_rejection`](crate::JwksAuth::on_rejection)
//! hook replaces it; either way the [`AuthError`] rides in the response's extensions.
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
//! (with the claims, see `extract`), so the route layers behind it answer exactly as it
//! does (same realm, same hook).
//!
//! [`Authorize`]: crate::Authorize

use std::fmt;
use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::error::{AuthError, AuthErrorKind, DpopChallenge};

/// RFC 9449 §8.1: the server's current nonce.
pub(crate) const DPOP_NONCE: &str = "dpop-nonce";

/// A user's replacement for rejection responses.
pub(crate) type Rejector = Arc<dyn Fn(&AuthError) -> Response + Send + Sync>;

/// How a layer answers rejections; shared by the layer and the route layers behind it.
#[derive(Clone)]
pub(crate) struct Responder {
    pub(crate) realm: Option<Arc<str>>,
    pub(crate) hook: Option<Rejector>,
    /// The claims type the layer produces, for the error log of a mismatched route layer.
    pub(crate) claims_type: &'static str,
    /// The layer's DPoP challenge parameters, when DPoP is on.
    pub(crate) dpop: Option<Arc<DpopChallenge>>,
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("realm", &self.realm)
            .field("hook", &self.hook.is_some())
            .field("claims_type", &self.claims_type)
            .field("dpop", &self.dpop)
            .finish()
    }
}

/// Whether the request is a gRPC call (`content-type: application/grpc*`).
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The trailers-only gRPC answer to `error` (see the module docs).
pub(crate) fn grpc_response(error: AuthError) -> Response {
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", HeaderValue::from(error.kind.grpc_code()));
    // Fixed ASCII descriptions: nothing to percent-encode (gRPC allows 0x20-0x7E but '%').
    headers.insert(
        "grpc-message",
        HeaderValue::from_static(error.kind.description()),
    );
    headers.extend(error.headers());
    response.extensions_mut().insert(error);
    response
}

impl Responder {
    /// The response to `error`: gRPC's for a gRPC call, else the hook's or the RFC 6750
    /// default.
    pub(crate) fn respond(&self, error: AuthError, grpc: bool) -> Response {
        tracing::debug!(kind = error.kind.as_str(), "jwks-auth: request rejected");
        let mut error = error.with_realm(self.realm.as_ref());
        if error.challenge.is_none() {
            error.challenge = self.dpop.clone();
        }
        error.rendered = true;
        if grpc {
            return grpc_response(error);
        }
        match &self.hook {
            Some(hook) => {
                let mut response = hook(&error);
                response.extensions_mut().insert(error);
                response
            }
            None => error.into_response(),
        }
    }
}

/// A response from inside the layer that carries an [`AuthError`] no layer rendered (a
/// handler returned it, e.g. from [`StandardClaims::require_scopes`]) is rendered again
/// by the layer's responder, so it gets the realm and the user's hook like every other
/// rejection. Any other response is returned as it is.
///
/// [`StandardClaims::require_scopes`]: crate::StandardClaims::require_scopes
pub(crate) fn rerender<B>(
    responder: &Responder,
    response: http::Response<B>,
    grpc: bool,
) -> Result<Response, http::Response<B>> {
    match response.extensions().get::<AuthError>() {
        Some(error) if !error.rendered => Ok(responder.respond(error.clone(), grpc)),
        _ => Err(response),
    }
}

impl AuthError {
    /// The `WWW-Authenticate` challenge for this rejection, if it has one
    /// (a 503 has none).
    ///
    /// Without DPoP, one `Bearer` challenge. With DPoP (RFC 9449 §7.1), the error is told
    /// in the scheme the request used (`DPoP` for a proof's errors and on a layer that
    /// requires DPoP), with `algs="…"` in the `DPoP` challenge; a layer that allows both
    /// schemes adds the other one, bare: `Bearer realm="api", DPoP realm="api", algs="ES256"`.
    pub fn www_authenticate(&self) -> Option<HeaderValue> {
        if self.kind.status() == StatusCode::SERVICE_UNAVAILABLE {
            return None;
        }
        let dpop = self.challenge.as_deref();
        let in_dpop = dpop.is_some_and(|c| self.dpop || c.required);
        let algs = dpop.map(|c| &*c.algs);
        let mut value = String::with_capacity(128);
        if in_dpop {
            self.push_challenge(&mut value, "DPoP", true, algs);
            if dpop.is_some_and(|c| !c.required) {
                value.push_str(", ");
                self.push_challenge(&mut value, "Bearer", false, None);
            }
        } else {
            self.push_challenge(&mut value, "Bearer", true, None);
            if dpop.is_some() {
                value.push_str(", ");
                self.push_challenge(&mut value, "DPoP", false, algs);
            }
        }
        // Every piece is a fixed string or was filtered when configured; fall back to the
        // bare scheme rather than panic if that ever stops being true.
        Some(HeaderValue::try_from(value).unwrap_or_else(|_| HeaderValue::from_static("Bearer")))
    }

    fn push_challenge(&self, out: &mut String, scheme: &str, error: bool, algs: Option<&str>) {
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
        if let Some(code) = self.kind.error_code().filter(|_| error) {
            param(out, "error", code);
            param(out, "error_description", self.kind.description());
            if let Some(scope) = &self.scope {
                param(out, "scope", scope);
            }
        }
        if let Some(algs) = algs {
            param(out, "algs", algs);
        }
    }

    /// The headers of the default response: `WWW-Authenticate`, `Cache-Control: no-store`,
    /// on a 503 `Retry-After`, and with DPoP nonces the current `DPoP-Nonce`. Everything
    /// but the body and its `Content-Type`.
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(3);
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = self.www_authenticate() {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        if let Some(retry) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(retry.as_secs().max(1)));
        }
        if let Some(nonce) = &self.nonce {
            headers.insert(DPOP_NONCE, nonce.clone());
        }
        headers
    }

    /// The response this crate answers with by default (status, challenge, JSON body,
    /// `Retry-After`, and the error in the extensions), for custom rejection handlers that
    /// want to start from it.
    pub fn default_response(&self) -> Response {
        self.clone().into_response()
    }

    /// The default response with another body: the status, `WWW-Authenticate`,
    /// `Cache-Control` and `Retry-After` are kept, and the error rides in the extensions.
    ///
    /// ```
    /// use axum::response::IntoResponse;
    /// use jwks_auth::{AuthError, AuthErrorKind, JwksAuth};
    ///
    /// let auth = JwksAuth::new("https://idp.example/jwks.json").on_rejection(|err: &AuthError| {
    ///     let body = axum::Json(serde_json::json!({ "code": err.kind().as_str() }));
    ///     err.response_with_body(body)
    /// });
    /// let err = AuthError::from(AuthErrorKind::Expired);
    /// let response = err.response_with_body("expired");
    /// assert_eq!(response.status(), 401);
    /// assert!(response.headers().contains_key("www-authenticate"));
    /// ```
    pub fn response_with_body(&self, body: impl IntoResponse) -> Response {
        let mut response = body.into_response();
        *response.status_mut() = self.status();
        response.headers_mut().extend(self.headers());
        response.extensions_mut().insert(self.clone());
        response
    }

    /// The small JSON body of the response: `{"error":…,"error_description":…}`.
    pub fn body_json(&self) -> String {
        let error = match self.kind {
            AuthErrorKind::MissingCredentials => "unauthorized",
            kind if kind.status() == StatusCode::SERVICE_UNAVAILABLE => "temporarily_unavailable",
            kind => kind.error_code().unwrap_or("unauthorized"),
        };
        // Both strings are fixed ASCII without quotes or backslashes.
        format!(
            r#"{{"error":"{error}","error_description":"{}"}}"#,
            self.kind.description()
        )
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body_json()));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.extend(self.headers());
        response.extensions_mut().insert(self);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn grpc_calls_get_trailers_only_statuses_whatever_the_hook() {
        let hooked = Responder {
            realm: Some(Arc::from("api")),
            hook: Some(Arc::new(|e: &AuthError| e.response_with_body("http body"))),
            claims_type: "T",
            dpop: None,
        };
        for (kind, code) in [
            (AuthErrorKind::MissingCredentials, "16"),
            (AuthErrorKind::Expired, "16"),
            (AuthErrorKind::InsufficientScope, "7"),
            (AuthErrorKind::AccessDenied, "7"),
            (AuthErrorKind::KeysUnavailable, "14"),
            (AuthErrorKind::InvalidRequest, "3"),
        ] {
            let response = hooked.respond(kind.into(), true);
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
    fn a_replaced_body_keeps_the_status_and_every_header() {
        let err = AuthError::unavailable(Duration::from_secs(7));
        let response = err.response_with_body("custom");
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[RETRY_AFTER], "7");
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        assert!(response.extensions().get::<AuthError>().is_some());

        let err = AuthError::from(AuthErrorKind::Expired).with_realm(Some(&Arc::from("api")));
        let response = err.response_with_body("custom");
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.headers()[WWW_AUTHENTICATE],
            r#"Bearer realm="api", error="invalid_token", error_description="the token has expired""#
        );
    }

    #[test]
    fn the_responder_adds_its_realm_and_runs_the_hook() {
        let responder = Responder {
            realm: Some(Arc::from("r")),
            hook: None,
            claims_type: "T",
            dpop: None,
        };
        let response = responder.respond(AuthError::insufficient_scope(["a"]), false);
        assert_eq!(response.status(), 403);
        assert!(
            response.headers()[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with(r#"Bearer realm="r", error="insufficient_scope""#)
        );
        let hooked = Responder {
            hook: Some(Arc::new(|e: &AuthError| e.response_with_body("no"))),
            ..responder
        };
        let response = hooked.respond(AuthErrorKind::Expired.into(), false);
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.extensions().get::<AuthError>().unwrap().realm(),
            Some("r")
        );
    }
}
