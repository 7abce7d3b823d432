//! Bearer credentials from request headers (RFC 6750 §2.1).
//!
//! `credentials = "Bearer" 1*SP b64token`, the scheme matched case-insensitively.
//! The outcomes map to the response table:
//!
//! - no `Authorization` header, or one with another scheme: no credentials (401 with a
//!   bare `Bearer` challenge, or `None` in optional mode);
//! - two `Authorization` headers, `Bearer` without a token, two tokens, or characters
//!   outside `b64token`: 400 `invalid_request`;
//! - a token over the size cap: 401 `invalid_token`, before any decoding.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::error::{AuthError, AuthErrorKind};

/// Finds the bearer token in `headers`.
///
/// Returns `Ok(None)` when the request carries no bearer credentials at all.
pub(crate) fn bearer_token(headers: &HeaderMap, max_len: usize) -> Result<Option<&str>, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthErrorKind::InvalidRequest.into());
    }
    let bytes = value.as_bytes();
    // Leading and trailing whitespace is not part of the field value (RFC 9110 §5.5).
    let bytes = trim_ows(bytes);
    let scheme_end = bytes
        .iter()
        .position(|b| *b == b' ' || *b == b'\t')
        .unwrap_or(bytes.len());
    let (scheme, rest) = bytes.split_at(scheme_end);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        // Another scheme (Basic, DPoP, …) is "no bearer credentials", not a malformed request.
        return Ok(None);
    }
    // 1*SP between scheme and token; be lenient with several spaces, strict with tabs.
    let token = trim_leading_spaces(rest);
    if token.is_empty() || token.len() == rest.len() && !rest.is_empty() {
        // "Bearer" alone, or "Bearer\t…".
        return Err(AuthErrorKind::InvalidRequest.into());
    }
    if token.len() > max_len {
        return Err(AuthErrorKind::TokenTooLarge.into());
    }
    if !is_b64token(token) {
        return Err(AuthErrorKind::InvalidRequest.into());
    }
    // b64token is ASCII, so this cannot fail; stay total anyway.
    std::str::from_utf8(token)
        .map(Some)
        .map_err(|_| AuthErrorKind::InvalidRequest.into())
}

fn trim_ows(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

fn trim_leading_spaces(mut b: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = b {
        b = rest;
    }
    b
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn is_b64token(token: &[u8]) -> bool {
    let body_len = token.len() - token.iter().rev().take_while(|b| **b == b'=').count();
    body_len > 0
        && token[..body_len].iter().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn extract(values: &[&[u8]]) -> Result<Option<String>, AuthErrorKind> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        bearer_token(&headers, 64)
            .map(|t| t.map(str::to_owned))
            .map_err(|e| e.kind())
    }

    #[test]
    fn finds_the_token() {
        assert_eq!(extract(&[b"Bearer a.b.c"]), Ok(Some("a.b.c".into())));
        assert_eq!(extract(&[b"bearer a.b.c"]), Ok(Some("a.b.c".into())));
        assert_eq!(extract(&[b"BEARER  a.b.c "]), Ok(Some("a.b.c".into())));
        assert_eq!(extract(&[b"Bearer abc=="]), Ok(Some("abc==".into())));
    }

    #[test]
    fn no_credentials() {
        assert_eq!(extract(&[]), Ok(None));
        assert_eq!(extract(&[b"Basic dXNlcjpwYXNz"]), Ok(None));
        assert_eq!(extract(&[b"Bearerx a.b.c"]), Ok(None));
        assert_eq!(extract(&[b""]), Ok(None));
    }

    #[test]
    fn malformed_requests() {
        use AuthErrorKind::InvalidRequest as Bad;
        assert_eq!(extract(&[b"Bearer"]), Err(Bad));
        assert_eq!(extract(&[b"Bearer   "]), Err(Bad));
        assert_eq!(extract(&[b"Bearer a.b.c d.e.f"]), Err(Bad));
        assert_eq!(extract(&[b"Bearer\ta.b.c"]), Err(Bad));
        assert_eq!(extract(&[b"Bearer a.b.c", b"Bearer a.b.c"]), Err(Bad));
        assert_eq!(extract(&[b"Bearer a,b"]), Err(Bad));
        assert_eq!(extract(&[b"Bearer a\"b"]), Err(Bad));
        assert_eq!(extract(&[b"Bearer ="]), Err(Bad));
        assert_eq!(extract(&[b"Bearer a=b"]), Err(Bad));
        assert_eq!(extract(&[b"Bearer \xc3\xa9"]), Err(Bad));
    }

    #[test]
    fn size_cap_comes_first() {
        let long = format!("Bearer {}", "a".repeat(65));
        assert_eq!(
            extract(&[long.as_bytes()]),
            Err(AuthErrorKind::TokenTooLarge)
        );
        let ok = format!("Bearer {}", "a".repeat(64));
        assert!(extract(&[ok.as_bytes()]).unwrap().is_some());
    }
}
