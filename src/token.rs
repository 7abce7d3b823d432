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
//!
//! # Other token sources
//!
//! [`JwksAuth`](crate::JwksAuth) can also take the token from a named cookie, a custom
//! header (the raw token, or `Bearer <token>`), the query string (opt-in only: URLs end up
//! in logs and `Referer` headers, see RFC 6750 §2.3 and §5.3), or a function of the
//! headers and URI. Every configured source is read; if they carry **different** tokens
//! the request is malformed (400 `invalid_request`): the layer never picks one of two
//! credentials. The same token in two places is fine. Every token, whatever its source,
//! must be a `b64token` and is subject to the size cap.

use std::borrow::Cow;
use std::sync::Arc;

use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderName, Uri};

use crate::error::{AuthError, AuthErrorKind};
use crate::verify::Scheme;

/// A user function that finds the token in a request's headers and URI.
pub(crate) type TokenFn = Arc<dyn Fn(&HeaderMap, &Uri) -> Option<String> + Send + Sync>;

/// Where the layer looks for the token ([`JwksAuth::token_sources`]). Whatever the
/// source, the token must be an RFC 6750 `b64token` within the size cap.
///
/// [`JwksAuth::token_sources`]: crate::JwksAuth::token_sources
#[derive(Clone)]
#[non_exhaustive]
pub enum TokenSource {
    /// `Authorization: Bearer …` (the default, alone).
    Bearer,
    /// The cookie with this name (browser sessions). Only this cookie is read: other
    /// cookies, whatever their bytes, never change the answer.
    Cookie(String),
    /// The header with this name (e.g. `x-api-token`): the raw token, or
    /// `Bearer <token>`.
    Header(HeaderName),
    /// The query parameter with this name. Use only when nothing else can carry the
    /// token: URLs end up in logs, browser history and `Referer` headers (RFC 6750 §5.3).
    Query(String),
    /// What this function returns for the request's headers and URI.
    Custom(TokenFn),
}

impl TokenSource {
    /// A [`Custom`](Self::Custom) source from a function.
    pub fn custom<F>(find: F) -> Self
    where
        F: Fn(&HeaderMap, &Uri) -> Option<String> + Send + Sync + 'static,
    {
        Self::Custom(Arc::new(find))
    }
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bearer => f.write_str("Bearer"),
            Self::Cookie(n) => write!(f, "Cookie({n:?})"),
            Self::Header(n) => write!(f, "Header({n:?})"),
            Self::Query(n) => write!(f, "Query({n:?})"),
            Self::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// A request's credentials: the token, and the scheme it came with.
#[derive(Debug)]
pub(crate) struct Credentials<'a> {
    pub(crate) scheme: Scheme,
    pub(crate) token: Cow<'a, str>,
}

/// Finds the request's credentials: with DPoP on, `Authorization: DPoP` first, then every
/// configured token source. `Ok(None)` when there are none; an error comes with the
/// scheme to tell it in (a `DPoP` header without the DPoP scheme is told in DPoP's).
pub(crate) fn find_credentials<'a>(
    sources: &[TokenSource],
    dpop: bool,
    headers: &'a HeaderMap,
    uri: &'a Uri,
    max_len: usize,
) -> Result<Option<Credentials<'a>>, (Scheme, AuthError)> {
    let mut found = None;
    let mut scheme = Scheme::Bearer;
    if dpop {
        match scheme_token(headers, b"dpop", max_len) {
            Ok(Some(token)) => {
                found = Some(Cow::Borrowed(token));
                scheme = Scheme::Dpop;
            }
            // A proof without the DPoP scheme: the client is confused, say so.
            Ok(None) if headers.contains_key("dpop") => {
                return Err((Scheme::Dpop, AuthErrorKind::InvalidRequest.into()));
            }
            Ok(None) => {}
            Err(e) => return Err((Scheme::Dpop, e)),
        }
    }
    let token = find_token(sources, headers, uri, max_len, found).map_err(|e| (scheme, e))?;
    Ok(token.map(|token| Credentials { scheme, token }))
}

/// Adds the tokens of every configured source to `found`.
///
/// Returns `Ok(None)` when no source carries one; 400 when two carry different tokens.
fn find_token<'a>(
    sources: &[TokenSource],
    headers: &'a HeaderMap,
    uri: &'a Uri,
    max_len: usize,
    mut found: Option<Cow<'a, str>>,
) -> Result<Option<Cow<'a, str>>, AuthError> {
    for source in sources {
        let token: Option<Cow<'a, str>> = match source {
            // Checked against the size cap and `b64token` by `scheme_token`.
            TokenSource::Bearer => scheme_token(headers, b"bearer", max_len)?.map(Cow::Borrowed),
            TokenSource::Cookie(name) => cookie_token(headers, name)?.map(Cow::Borrowed),
            TokenSource::Header(name) => header_token(headers, name)?.map(Cow::Borrowed),
            TokenSource::Query(name) => query_token(uri, name)?,
            TokenSource::Custom(f) => f(headers, uri).map(Cow::Owned),
        };
        let Some(token) = token else { continue };
        if !matches!(source, TokenSource::Bearer) {
            check_token(token.as_bytes(), max_len)?;
        }
        agree(&mut found, token)?;
    }
    Ok(found)
}

/// Keeps the first credential; a different second one is a malformed request (400): the
/// layer never chooses between two credentials. The same one twice is fine.
fn agree<T: PartialEq>(found: &mut Option<T>, next: T) -> Result<(), AuthError> {
    match found {
        Some(previous) if *previous != next => Err(AuthErrorKind::InvalidRequest.into()),
        Some(_) => Ok(()),
        None => {
            *found = Some(next);
            Ok(())
        }
    }
}

fn check_token(token: &[u8], max_len: usize) -> Result<(), AuthError> {
    if token.len() > max_len {
        return Err(AuthErrorKind::TokenTooLarge.into());
    }
    if !is_b64token(token) {
        return Err(AuthErrorKind::InvalidRequest.into());
    }
    Ok(())
}

/// The value of the cookie `name`; two different values are a malformed request.
///
/// Parsed over the raw bytes, pair by pair (RFC 6265 §4.2.1), across every `Cookie`
/// header: only the value of the cookie named `name` is validated, so other cookies,
/// whatever their bytes (non-ASCII, no `=`, garbage), never change the answer.
fn cookie_token<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, AuthError> {
    let mut found: Option<&'a str> = None;
    for value in headers.get_all(COOKIE) {
        for pair in value.as_bytes().split(|b| *b == b';') {
            let Some(eq) = pair.iter().position(|b| *b == b'=') else {
                continue;
            };
            let (n, v) = (trim_ows(&pair[..eq]), trim_ows(&pair[eq + 1..]));
            if n != name.as_bytes() {
                continue;
            }
            let v = match v {
                [b'"', inner @ .., b'"'] => inner,
                v => v,
            };
            // Ours: it must be text (the token check that follows is stricter still).
            let v = std::str::from_utf8(v)
                .map_err(|_| AuthError::from(AuthErrorKind::InvalidRequest))?;
            agree(&mut found, v)?;
        }
    }
    Ok(found.filter(|v| !v.is_empty()))
}

/// A custom header: the raw token, or `Bearer <token>`; at most one such header.
fn header_token<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'a str>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthErrorKind::InvalidRequest.into());
    }
    let value = value
        .to_str()
        .map_err(|_| AuthError::from(AuthErrorKind::InvalidRequest))?
        .trim();
    let value = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim_start(),
        _ => value,
    };
    if value.is_empty() {
        return Err(AuthErrorKind::InvalidRequest.into());
    }
    Ok(Some(value))
}

/// The query parameter `name` (percent-decoded); present twice with different values,
/// or badly encoded, is a malformed request.
fn query_token<'a>(uri: &'a Uri, name: &str) -> Result<Option<Cow<'a, str>>, AuthError> {
    let Some(query) = uri.query() else {
        return Ok(None);
    };
    let mut found: Option<Cow<'a, str>> = None;
    for pair in query.split('&') {
        let Some((n, v)) = pair.split_once('=') else {
            continue;
        };
        if n != name {
            continue;
        }
        let v = percent_decode(v).ok_or_else(|| AuthError::from(AuthErrorKind::InvalidRequest))?;
        agree(&mut found, v)?;
    }
    Ok(found.filter(|v| !v.is_empty()))
}

fn percent_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.contains(['%', '+']) {
        return Some(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// The token of `Authorization: <wanted> <token>` (RFC 6750 §2.1; RFC 9449 §7.1 gives
/// `DPoP` the same syntax); `Ok(None)` when the request uses another scheme or none.
fn scheme_token<'a>(
    headers: &'a HeaderMap,
    wanted: &[u8],
    max_len: usize,
) -> Result<Option<&'a str>, AuthError> {
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
    if !scheme.eq_ignore_ascii_case(wanted) {
        // Another scheme (Basic, DPoP, …) is "no credentials of this scheme", not a
        // malformed request.
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

/// Whether `c` may appear in a `b64token` before its trailing `=`s. Branch-free range
/// tests, so that the scan below vectorises: a token is checked 16 or 32 bytes at a time.
#[inline(always)]
fn is_token_char(c: u8) -> bool {
    // `c | 0x20` maps A-Z onto a-z and leaves a-z alone; nothing else lands in a-z.
    let letter = (c | 0x20).wrapping_sub(b'a') < 26;
    // '-' '.' '/' and the digits are the contiguous 0x2D..=0x39.
    let dash_dot_slash_digit = c.wrapping_sub(b'-') < 13;
    letter | dash_dot_slash_digit | (c == b'+') | (c == b'_') | (c == b'~')
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn is_b64token(token: &[u8]) -> bool {
    let body_len = token.len() - token.iter().rev().take_while(|b| **b == b'=').count();
    // `fold` rather than `all`: no early exit, so the loop vectorises (a rejected token is
    // rare, and its cost is bounded by the size cap checked first).
    body_len > 0
        && token[..body_len]
            .iter()
            .fold(true, |ok, b| ok & is_token_char(*b))
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
        scheme_token(&headers, b"bearer", 64)
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

    fn find(
        sources: &[TokenSource],
        headers: &[(&str, &str)],
        uri: &str,
    ) -> Result<Option<String>, AuthErrorKind> {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let uri: Uri = uri.parse().unwrap();
        find_token(sources, &map, &uri, 64, None)
            .map(|t| t.map(Cow::into_owned))
            .map_err(|e| e.kind())
    }

    #[test]
    fn the_token_alphabet_is_exactly_b64token() {
        for c in 0..=255u8 {
            let expected =
                c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
            assert_eq!(is_token_char(c), expected, "byte {c:#04x}");
        }
        assert!(is_b64token(b"a.b-c_d~e+f/g=="));
        assert!(!is_b64token(b"===") && !is_b64token(b"a=b") && !is_b64token(b""));
    }

    #[test]
    fn unrelated_cookies_never_change_the_answer() {
        let cookie = [TokenSource::Bearer, TokenSource::Cookie("session".into())];
        let with = |values: &[&[u8]]| {
            let mut map = HeaderMap::new();
            map.append(AUTHORIZATION, HeaderValue::from_static("Bearer x.y.z"));
            for v in values {
                map.append(COOKIE, HeaderValue::from_bytes(v).unwrap());
            }
            find_token(&cookie, &map, &Uri::from_static("/"), 64, None)
                .map(|t| t.map(Cow::into_owned))
                .map_err(|e| e.kind())
        };
        let ok = Ok(Some("x.y.z".to_owned()));
        // Non-ASCII (UTF-8 and Latin-1 bytes), no `=`, stray quotes, empty pairs.
        assert_eq!(with(&[b"theme=caf\xc3\xa9"]), ok);
        assert_eq!(with(&[b"theme=caf\xe9; lang=\xff\xfe"]), ok);
        assert_eq!(with(&[b"\xff\xfe; ;; =; junk\"; a=\"b"]), ok);
        // Several Cookie headers, ours in one of them, the others hostile.
        assert_eq!(with(&[b"theme=caf\xe9", b"session=x.y.z", b"x=\x80"]), ok);
        assert_eq!(with(&[b"theme=caf\xe9", b"session=\"x.y.z\"; z=\xc3"]), ok);
        // Our own cookie is still validated: bytes there are a malformed request, and
        // a different token there is two credentials.
        assert_eq!(
            with(&[b"session=caf\xe9"]),
            Err(AuthErrorKind::InvalidRequest)
        );
        assert_eq!(
            with(&[b"session=a.b.c"]),
            Err(AuthErrorKind::InvalidRequest)
        );
    }

    #[test]
    fn other_sources() {
        use AuthErrorKind::InvalidRequest as Bad;
        let cookie = [TokenSource::Bearer, TokenSource::Cookie("session".into())];
        assert_eq!(
            find(&cookie, &[("cookie", "a=1; session=x.y.z; b=2")], "/"),
            Ok(Some("x.y.z".into()))
        );
        assert_eq!(
            find(&cookie, &[("cookie", "session=\"x.y.z\"")], "/"),
            Ok(Some("x.y.z".into()))
        );
        assert_eq!(find(&cookie, &[("cookie", "other=x.y.z")], "/"), Ok(None));
        assert_eq!(
            find(&cookie, &[("cookie", "session=a.b.c; session=x.y.z")], "/"),
            Err(Bad)
        );
        assert_eq!(find(&cookie, &[("cookie", "session=a b")], "/"), Err(Bad));
        // Same token in two sources: fine. Different tokens: never pick one.
        assert_eq!(
            find(
                &cookie,
                &[
                    ("authorization", "Bearer x.y.z"),
                    ("cookie", "session=x.y.z")
                ],
                "/"
            ),
            Ok(Some("x.y.z".into()))
        );
        assert_eq!(
            find(
                &cookie,
                &[
                    ("authorization", "Bearer a.b.c"),
                    ("cookie", "session=x.y.z")
                ],
                "/"
            ),
            Err(Bad)
        );

        let header = [TokenSource::Header(HeaderName::from_static("x-api-token"))];
        assert_eq!(
            find(&header, &[("x-api-token", "x.y.z")], "/"),
            Ok(Some("x.y.z".into()))
        );
        assert_eq!(
            find(&header, &[("x-api-token", "Bearer x.y.z")], "/"),
            Ok(Some("x.y.z".into()))
        );
        assert_eq!(
            find(&header, &[("x-api-token", "a"), ("x-api-token", "b")], "/"),
            Err(Bad)
        );
        assert_eq!(
            find(&header, &[("authorization", "Bearer x.y.z")], "/"),
            Ok(None),
            "bearer not configured"
        );

        let query = [
            TokenSource::Bearer,
            TokenSource::Query("access_token".into()),
        ];
        assert_eq!(
            find(&query, &[], "/p?a=1&access_token=x.y.z"),
            Ok(Some("x.y.z".into()))
        );
        assert_eq!(
            find(&query, &[], "/p?access_token=x%2Ey.z"),
            Ok(Some("x.y.z".into()))
        );
        assert_eq!(find(&query, &[], "/p?access_token=x%ZZ"), Err(Bad));
        assert_eq!(
            find(&query, &[], "/p?access_token=a.b.c&access_token=x.y.z"),
            Err(Bad)
        );
        assert_eq!(
            find(&[TokenSource::Bearer], &[], "/p?access_token=x.y.z"),
            Ok(None),
            "query is opt-in"
        );

        let custom = [TokenSource::Custom(Arc::new(|h: &HeaderMap, _: &Uri| {
            h.get("x-forwarded-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        }))];
        assert_eq!(
            find(&custom, &[("x-forwarded-token", "x.y.z")], "/"),
            Ok(Some("x.y.z".into()))
        );
        assert_eq!(
            find(&custom, &[("x-forwarded-token", "x\"y")], "/"),
            Err(Bad)
        );
        let long = "a".repeat(65);
        assert_eq!(
            find(&custom, &[("x-forwarded-token", &long)], "/"),
            Err(AuthErrorKind::TokenTooLarge)
        );
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
