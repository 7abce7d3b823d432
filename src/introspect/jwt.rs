//! RFC 9701: the introspection answer as a JWT signed by the provider
//! (`application/token-introspection+jwt`), verified with the layer's own key stores,
//! through the same machinery as an access token.
//!
//! The JWT must be a compact JWS (no JWE), `typ` `token-introspection+jwt`, an allowed
//! algorithm, signed by a key of the store of its `iss` (one of the layer's issuers: an
//! unknown `kid` waits for the forced refresh a token's would), `aud` this service's
//! client id, `iat` within five minutes (and the leeway) of now, `exp` (if any) not
//! passed, and a `token_introspection` object: that object is then judged as a plain
//! answer. Anything else is 401 `inactive_token`, with a WARN once a minute for the
//! operator (a provider whose signed answers do not verify is misconfigured).

use serde_json::Value;

use crate::diagnose;
use crate::error::AuthErrorKind;
use crate::key_stores::KeyStores;
use crate::limits::MAX_BODY;
use crate::store::NoKeys;
use crate::verify::{KeyStep, Rules, Scheme};

/// How far `iat` may be from now.
const FRESH: f64 = 300.0;

/// The media type asked for and its `typ`.
pub(crate) const MEDIA_TYPE: &str = "application/token-introspection+jwt";

/// The `token_introspection` object of a signed answer, as JSON text, once the answer is
/// verified (see the module docs).
pub(crate) async fn unwrap(
    body: &[u8],
    rules: &Rules,
    client_id: &str,
    keys: &KeyStores,
    now: f64,
) -> Result<Vec<u8>, AuthErrorKind> {
    let refuse = |why: &'static str| {
        diagnose::per_minute(("introspection-jwt", why), || {
            tracing::warn!(
                why,
                "jwks-auth: a signed introspection answer did not verify; answering 401"
            );
        });
        AuthErrorKind::InactiveToken
    };
    let text = std::str::from_utf8(body)
        .map_err(|_| refuse("not text"))?
        .trim();
    let response_rules = Rules {
        audiences: vec![client_id.to_owned()],
        typ: Some("token-introspection+jwt".to_owned()),
        required_claims: vec!["iat".to_owned()],
        max_token_len: MAX_BODY,
        exp_optional: true,
        ..rules.clone()
    };
    let unverified = response_rules
        .check(text, Scheme::Bearer, now)
        .map_err(|_| refuse("shape, header or claims"))?;
    let iat = unverified
        .claim("iat")
        .and_then(Value::as_f64)
        .unwrap_or(f64::NAN);
    let fresh = iat.is_finite() && (now - iat).abs() <= FRESH + rules.leeway.as_secs_f64();
    if !fresh {
        return Err(refuse("iat not fresh"));
    }
    let found = keys
        .for_issuer(unverified.issuer())
        .ok()
        .flatten()
        .ok_or_else(|| refuse("issuer"))?;
    for waited in [false, true] {
        match found
            .store
            .with_keys(|set| unverified.verify_signature(text, set).map(|_| ()))
        {
            Ok(Ok(())) => {
                return match unverified.claim("token_introspection") {
                    Some(inner @ Value::Object(_)) => {
                        serde_json::to_vec(inner).map_err(|_| refuse("token_introspection"))
                    }
                    _ => Err(refuse("token_introspection")),
                };
            }
            Ok(Err(KeyStep::UnknownKid)) | Err(NoKeys::NotYet) if !waited => {
                keys.wait_for_keys(found.index).await;
            }
            _ => break,
        }
    }
    Err(refuse("signature"))
}
