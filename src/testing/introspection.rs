//! The [`TestIssuer`]'s introspection endpoint (RFC 7662): opaque tokens it issues,
//! revocation on command, the client's credentials checked.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{IssuerState, JwksBehavior, TestIssuer, TokenBuilder, lock};
use crate::Introspection;
use crate::alg::b64_encode;

/// The client id the introspection endpoint accepts ([`TestIssuer::introspection`]).
pub const INTROSPECTION_CLIENT_ID: &str = "test-api";

/// The client secret the introspection endpoint accepts.
pub const INTROSPECTION_CLIENT_SECRET: &str = "test-api-secret: not for production";

impl TestIssuer {
    /// Issues an opaque access token (32 random bytes, base64url: not a JWT) with the
    /// claims `token` would carry (its header and signing key are not used). The
    /// introspection endpoint answers `{"active": true, …claims}` for it until it is
    /// [revoked](Self::revoke) (its `exp` is the layer's to judge).
    ///
    /// # Panics
    ///
    /// If the OS has no randomness.
    pub fn opaque(&self, token: TokenBuilder<'_>) -> String {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).expect("OS randomness");
        let opaque = b64_encode(&bytes);
        let (_, claims) = token.parts();
        let claims: Value = serde_json::from_str(&claims).expect("claims are JSON");
        lock(&self.state.opaque).insert(opaque.clone(), claims);
        opaque
    }

    /// Revokes an opaque token: the endpoint answers `{"active": false}` for it from now.
    pub fn revoke(&self, token: &str) {
        lock(&self.state.opaque).remove(token);
    }

    /// The introspection endpoint's URL.
    pub fn introspection_url(&self) -> String {
        format!("{}/introspect", self.state.base)
    }

    /// Introspection settings for this issuer: its endpoint, with the client credentials
    /// it accepts ([`INTROSPECTION_CLIENT_ID`], [`INTROSPECTION_CLIENT_SECRET`]).
    pub fn introspection(&self) -> Introspection {
        Introspection::new(
            self.introspection_url(),
            INTROSPECTION_CLIENT_ID,
            INTROSPECTION_CLIENT_SECRET,
        )
    }

    /// How many introspection requests were received.
    pub fn introspection_count(&self) -> u64 {
        self.state.introspections.load(Ordering::SeqCst)
    }

    /// Changes how introspection requests are answered (`Normal`: as above; `Body`: this
    /// text; `Status`, `Hang`, `Redirect`, `Drip` as for the key set).
    pub fn set_introspection_behavior(&self, behavior: JwksBehavior) {
        *lock(&self.state.introspect_behavior) = behavior;
    }
}

/// `application/x-www-form-urlencoded` decoding of one value.
fn form_decode(value: &str) -> Option<String> {
    let mut out = Vec::with_capacity(value.len());
    let mut bytes = value.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// The client's credentials: HTTP Basic (each part form-encoded), or in the form.
fn authenticated(headers: &HeaderMap, form: &[(String, String)]) -> bool {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(b).ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            Some((form_decode(id)?, form_decode(secret)?))
        });
    let (id, secret) = match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            field("client_id").map(str::to_owned),
            field("client_secret").map(str::to_owned),
        ),
    };
    id.as_deref() == Some(INTROSPECTION_CLIENT_ID)
        && secret.as_deref() == Some(INTROSPECTION_CLIENT_SECRET)
}

pub(super) async fn serve_introspection(
    State(state): State<Arc<IssuerState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    state.introspections.fetch_add(1, Ordering::SeqCst);
    let behavior = lock(&state.introspect_behavior).clone();
    match behavior {
        JwksBehavior::Normal => {}
        JwksBehavior::Status(code) => {
            return StatusCode::from_u16(code)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response();
        }
        JwksBehavior::Body(body) => {
            return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
        }
        JwksBehavior::Hang => std::future::pending::<()>().await,
        JwksBehavior::Redirect(to) => {
            return (StatusCode::FOUND, [(header::LOCATION, to)]).into_response();
        }
        JwksBehavior::Drip(interval) => {
            tokio::time::sleep(interval * 1000).await;
        }
    }
    let form: Vec<(String, String)> = body
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((form_decode(k)?, form_decode(v)?))
        })
        .collect();
    if !authenticated(&headers, &form) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let token = form
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.as_str());
    let answer = match token.and_then(|t| lock(&state.opaque).get(t).cloned()) {
        Some(Value::Object(mut claims)) => {
            claims.insert("active".into(), json!(true));
            Value::Object(claims)
        }
        _ => json!({"active": false}),
    };
    let signed = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/token-introspection+jwt"));
    if signed {
        // RFC 9701: signed by the issuer's RSA key, for this client.
        let key = lock(&state.keys)
            .iter()
            .find(|k| k.kid().starts_with("rsa"))
            .cloned();
        let Some(key) = key else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let header_json =
            json!({"typ": "token-introspection+jwt", "alg": "RS256", "kid": key.kid()});
        let claims = json!({
            "iss": state.base,
            "aud": INTROSPECTION_CLIENT_ID,
            "iat": crate::verify::now_secs() as i64,
            "token_introspection": answer,
        });
        let jwt = key.sign_compact(
            crate::Algorithm::RS256,
            &header_json.to_string(),
            &claims.to_string(),
        );
        return (
            [(header::CONTENT_TYPE, "application/token-introspection+jwt")],
            jwt,
        )
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        answer.to_string(),
    )
        .into_response()
}
