//! Token verification: shape, header, claims, key selection and signature.
//!
//! The order is chosen so that cheap checks run first and a junk token never costs a
//! signature check or a key set fetch:
//!
//! 1. size cap (in [`token`](crate::token)), exactly three strict base64url segments;
//! 2. header: a JSON object without duplicate members; `alg` in the allow-list; no `crit`
//!    (this crate understands no extension); no `enc`/`zip`; `typ` if required.
//!    `jku`, `x5u`, `jwk` and `x5c` are ignored: a key is only ever taken from the key set;
//! 3. payload: a JSON object without duplicate members; `exp` required, `nbf`, `iss`,
//!    `aud`, required claims; registered claims of the wrong JSON type are invalid;
//! 4. key selection by `kid` (see [`keys`](crate::keys));
//! 5. signature, with the algorithm fixed by the key's type and the allow-list;
//! 6. the payload, already parsed, deserialized into the user's claims type.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::de::value::MapDeserializer;
use serde_json::Value;

use crate::alg::{AlgSet, Algorithm, Compact, DEFAULT_ALGORITHMS, b64_decode};
use crate::diagnose;
use crate::error::AuthErrorKind;
use crate::json::{ClaimSet, Header, parse_claims, parse_header};
use crate::keys::{Key, KeySet, Lookup};
use crate::limits::{LEEWAY, MAX_TOKEN_LEN};

/// The verification rules, built once from the layer's configuration.
#[derive(Clone, Debug)]
pub(crate) struct Rules {
    pub(crate) algorithms: AlgSet,
    pub(crate) leeway: Duration,
    pub(crate) issuers: Vec<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) typ: Option<String>,
    pub(crate) required_claims: Vec<String>,
    pub(crate) max_token_len: usize,
    /// Whether a token without `exp` passes (only a signed introspection response, RFC
    /// 9701, whose freshness is its `iat`): never for an access token.
    pub(crate) exp_optional: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            algorithms: AlgSet::from_algs(DEFAULT_ALGORITHMS),
            leeway: LEEWAY,
            issuers: Vec::new(),
            audiences: Vec::new(),
            typ: None,
            required_claims: Vec::new(),
            max_token_len: MAX_TOKEN_LEN,
            exp_optional: false,
        }
    }
}

/// A token parsed once, whose shape, header and claims passed: its signature is not
/// checked yet. It holds offsets into the token, not borrows, so it can wait (for a key
/// set) across an `.await` together with the token it came from.
pub(crate) struct Unverified {
    alg: Algorithm,
    kid: Option<String>,
    /// `header.payload`: the first `signing_len` bytes of the token.
    signing_len: usize,
    signature: Vec<u8>,
    /// The claims, parsed once (with the duplicate check); moved into the user's type
    /// after the signature.
    claims: ClaimSet,
    /// The decoded payload, kept (not copied) for the rare report of claims that do not
    /// fit the user's type.
    payload: Vec<u8>,
    pub(crate) exp: f64,
    pub(crate) nbf: Option<f64>,
    /// `cnf.jkt`, for a token presented with the DPoP scheme.
    pub(crate) jkt: Option<Box<str>>,
}

/// How the token was presented: it decides what `cnf` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// A bearer token (any token source but `Authorization: DPoP`): it must not carry
    /// `cnf` ([`AuthErrorKind::BoundToken`]).
    Bearer,
    /// `Authorization: DPoP`: it must carry `cnf.jkt` ([`AuthErrorKind::UnboundToken`]).
    Dpop,
}

/// Why signature verification did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyStep {
    /// No key with the token's `kid`: a key set refresh may help.
    UnknownKid,
    /// Rejected for good.
    Reject(AuthErrorKind),
}

#[cfg(test)]
thread_local! {
    /// How many tokens [`Rules::check`] parsed on this thread (tests count parses).
    pub(crate) static PARSES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

pub(crate) fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Rules {
    /// Steps 1 to 3: everything that needs no key, for a token presented with `scheme`.
    /// The only place a token is parsed.
    pub(crate) fn check(
        &self,
        token: &str,
        scheme: Scheme,
        now: f64,
    ) -> Result<Unverified, AuthErrorKind> {
        if token.len() > self.max_token_len {
            return Err(AuthErrorKind::TokenTooLarge);
        }
        let Some(jws) = Compact::split(token) else {
            // Five segments is the compact JWE form.
            return Err(if token.split('.').count() == 5 {
                AuthErrorKind::UnsupportedTokenType
            } else {
                AuthErrorKind::Malformed
            });
        };
        #[cfg(test)]
        PARSES.with(|p| p.set(p.get() + 1));
        // Header first, so that an unsecured (`alg: none`, empty signature) token is
        // reported as a disallowed algorithm.
        let header = b64_decode(jws.header).ok_or(AuthErrorKind::Malformed)?;
        let header = parse_header(&header)?;
        let (alg, kid) = self.check_header(header)?;

        let payload = b64_decode(jws.payload).ok_or(AuthErrorKind::Malformed)?;
        let claims = parse_claims(&payload)?;
        let (exp, nbf) = self.check_claims(&claims, now)?;
        let jkt = binding(&claims, scheme)?;

        if jws.signature.is_empty() {
            return Err(AuthErrorKind::Malformed);
        }
        let signature = b64_decode(jws.signature).ok_or(AuthErrorKind::Malformed)?;
        Ok(Unverified {
            alg,
            kid,
            signing_len: jws.signing_len(),
            signature,
            claims,
            payload,
            exp,
            nbf,
            jkt,
        })
    }

    fn check_header(
        &self,
        header: Header<'_>,
    ) -> Result<(Algorithm, Option<String>), AuthErrorKind> {
        if header.jwe {
            return Err(AuthErrorKind::UnsupportedTokenType);
        }
        if header.crit {
            // RFC 7515 §4.1.11: a recipient that does not understand an extension listed
            // in `crit` must reject the token. This crate understands none.
            return Err(AuthErrorKind::UnsupportedCritical);
        }
        let alg = header
            .alg
            .and_then(|name| Algorithm::from_name(&name))
            .filter(|a| self.algorithms.contains(*a))
            .ok_or(AuthErrorKind::DisallowedAlgorithm)?;
        if let Some(required) = &self.typ
            && !header.typ.is_some_and(|typ| typ_matches(&typ, required))
        {
            return Err(AuthErrorKind::InvalidType);
        }
        Ok((alg, header.kid.map(Cow::into_owned)))
    }

    /// Returns `exp` and `nbf`. Also judges an active introspection response's members.
    pub(crate) fn check_claims(
        &self,
        claims: &ClaimSet,
        now: f64,
    ) -> Result<(f64, Option<f64>), AuthErrorKind> {
        let exp = match numeric_date(claims, "exp")? {
            Some(exp) => exp,
            None if self.exp_optional => f64::INFINITY,
            None => return Err(AuthErrorKind::MissingClaim),
        };
        let nbf = numeric_date(claims, "nbf")?;
        if nbf.is_some_and(|nbf| nbf > exp) {
            // Valid at no instant, whatever the leeway.
            return Err(AuthErrorKind::InvalidClaims);
        }
        self.in_time(exp, nbf, now)?;
        numeric_date(claims, "iat")?;
        for name in ["sub", "jti"] {
            if claims.get(name).is_some_and(|v| !v.is_string()) {
                return Err(AuthErrorKind::InvalidClaims);
            }
        }
        match claims.get("iss") {
            Some(Value::String(iss)) => self.check_issuer(Some(iss))?,
            Some(_) => return Err(AuthErrorKind::InvalidClaims),
            None => self.check_issuer(None)?,
        }
        match claims.get("aud") {
            Some(Value::String(aud)) => self.check_audience(std::iter::once(aud.as_str()))?,
            Some(Value::Array(auds)) => {
                let mut strings = Vec::with_capacity(auds.len());
                for aud in auds {
                    strings.push(aud.as_str().ok_or(AuthErrorKind::InvalidClaims)?);
                }
                self.check_audience(strings.into_iter())?;
            }
            Some(_) => return Err(AuthErrorKind::InvalidClaims),
            None if !self.audiences.is_empty() => return Err(AuthErrorKind::InvalidAudience),
            None => {}
        }
        // A required claim whose value is `null` is as good as absent.
        if self
            .required_claims
            .iter()
            .any(|name| claims.get(name).is_none_or(Value::is_null))
        {
            return Err(AuthErrorKind::MissingClaim);
        }
        Ok((exp, nbf))
    }

    /// `exp` and `nbf` against `now`, with the leeway: at parse time, after a wait, and
    /// at every cache hit.
    pub(crate) fn in_time(
        &self,
        exp: f64,
        nbf: Option<f64>,
        now: f64,
    ) -> Result<(), AuthErrorKind> {
        let leeway = self.leeway.as_secs_f64();
        if now >= exp + leeway {
            return Err(AuthErrorKind::Expired);
        }
        if nbf.is_some_and(|nbf| now + leeway < nbf) {
            return Err(AuthErrorKind::NotYetValid);
        }
        Ok(())
    }

    fn check_issuer(&self, iss: Option<&str>) -> Result<(), AuthErrorKind> {
        if self.issuers.is_empty() || iss.is_some_and(|iss| self.issuers.iter().any(|i| i == iss)) {
            Ok(())
        } else {
            Err(AuthErrorKind::InvalidIssuer)
        }
    }

    fn check_audience<'a>(
        &self,
        mut auds: impl Iterator<Item = &'a str>,
    ) -> Result<(), AuthErrorKind> {
        if self.audiences.is_empty() || auds.any(|a| self.audiences.iter().any(|x| x == a)) {
            Ok(())
        } else {
            Err(AuthErrorKind::InvalidAudience)
        }
    }
}

impl Unverified {
    /// The token's `iss`, if it is a string (already checked against the rules).
    pub(crate) fn issuer(&self) -> Option<&str> {
        self.claim_str("iss")
    }

    /// A claim of the token.
    pub(crate) fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }

    /// A claim of the token, if it is a string.
    pub(crate) fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// Steps 4 and 5: key selection and the signature over `token`, the token this was
    /// parsed from. Returns the key that verified.
    pub(crate) fn verify_signature<'k>(
        &self,
        token: &str,
        keys: &'k KeySet,
    ) -> Result<&'k Key, KeyStep> {
        let signing_input = &token.as_bytes()[..self.signing_len];
        match keys.lookup(self.kid.as_deref(), self.alg) {
            Lookup::UnknownKid => Err(KeyStep::UnknownKid),
            Lookup::Mismatch => Err(KeyStep::Reject(AuthErrorKind::KeyMismatch)),
            Lookup::Found(candidates) => candidates
                .into_iter()
                .find(|key| key.verify(self.alg, signing_input, &self.signature))
                .ok_or(KeyStep::Reject(AuthErrorKind::InvalidSignature)),
        }
    }

    /// Step 6: the claims, parsed once, moved into the user's type.
    ///
    /// (Deserializing the user's type from the text instead, after an allocation-free
    /// validation scan, was measured: no faster, and it parses twice.)
    ///
    /// Claims that do not fit `T` are 401 `invalid_claims` for the client, with no detail;
    /// the operator gets a WARN naming the field path and serde's reason without the
    /// value, at most once a minute per distinct reason.
    pub(crate) fn into_claims<T: DeserializeOwned>(self) -> Result<T, AuthErrorKind> {
        claims_into(self.claims, &self.payload)
    }
}

/// Claims that passed the rules (a verified token's, an active introspection response's)
/// moved into the user's type; `payload` is their JSON text, parsed again only to name
/// the field in the rare WARN.
pub(crate) fn claims_into<T: DeserializeOwned>(
    claims: ClaimSet,
    payload: &[u8],
) -> Result<T, AuthErrorKind> {
    // The map deserializer checks itself that every member was consumed.
    let members = MapDeserializer::<_, serde_json::Error>::new(claims.0.into_iter());
    T::deserialize(members).map_err(|e| {
            let claims = std::any::type_name::<T>();
            let reason = redact(&e.to_string());
            diagnose::per_minute(("claims-fit", claims, &reason), || {
                // Rare, and rate-limited: parse once more to name the field.
                let mut payload = serde_json::Deserializer::from_slice(payload);
                let field = match serde_path_to_error::deserialize::<_, T>(&mut payload) {
                    Err(e) => diagnose::printable(&e.path().to_string()),
                    Ok(_) => String::from("?"),
                };
                tracing::warn!(
                    claims,
                    field = %field,
                    reason = %reason,
                    "jwks-auth: a verified token's claims do not fit the claims type; answering 401 invalid_claims"
                );
            });
            AuthErrorKind::InvalidClaims
        })
}

/// What `cnf` says for a token presented with `scheme`.
///
/// RFC 9449 §7.2, RFC 8705 §3: a sender-constrained token (any `cnf`: DPoP `jkt`,
/// mutual-TLS `x5t#S256`) presented as a bearer token is a downgrade; it is refused
/// rather than treated as a bearer token. With the DPoP scheme, the token must carry
/// `cnf.jkt`, a SHA-256 thumbprint (43 base64url characters).
pub(crate) fn binding(
    claims: &ClaimSet,
    scheme: Scheme,
) -> Result<Option<Box<str>>, AuthErrorKind> {
    let cnf = claims.get("cnf");
    match scheme {
        Scheme::Bearer if cnf.is_some() => Err(AuthErrorKind::BoundToken),
        Scheme::Bearer => Ok(None),
        // A `cnf` with another confirmation method besides `jkt` (an mTLS `x5t#S256`,
        // anything this crate cannot check) is refused: the proof alone would not
        // confirm it.
        Scheme::Dpop => match cnf.and_then(Value::as_object) {
            Some(cnf) if cnf.len() > 1 => Err(AuthErrorKind::InvalidClaims),
            cnf => cnf
                .and_then(|cnf| cnf.get("jkt"))
                .and_then(Value::as_str)
                .filter(|jkt| jkt.len() == 43 && b64_decode(jkt).is_some())
                .map(|jkt| Some(jkt.into()))
                .ok_or(AuthErrorKind::UnboundToken),
        },
    }
}

/// A serde message without the token's values: quoted strings and the backticked value
/// of an `invalid type`/`invalid value` are dropped (`invalid type: string, expected a
/// sequence`), and what is left is printable and bounded.
fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let (head, tail) = match message.split_once(", expected") {
        Some((head, tail)) => (head, Some(tail)),
        None => (message, None),
    };
    let value_in_head = head.starts_with("invalid type: ") || head.starts_with("invalid value: ");
    let mut quoted: Option<char> = None;
    let mut escaped = false;
    for c in head.chars() {
        match quoted {
            // Serde writes strings with Debug's escapes.
            Some(_) if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(end) if c == end => quoted = None,
            Some(_) => {}
            None if c == '"' || (c == '`' && value_in_head) => quoted = Some(c),
            None => out.push(c),
        }
    }
    let mut out = out.trim_end().to_owned();
    if let Some(tail) = tail {
        out.push_str(", expected");
        out.push_str(tail);
    }
    out.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(160)
        .collect()
}

/// RFC 7515 §4.1.9: compare case-insensitively, the `application/` prefix optional.
pub(crate) fn typ_matches(typ: &str, required: &str) -> bool {
    fn strip(s: &str) -> &str {
        match s.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &s[12..],
            _ => s,
        }
    }
    strip(typ).eq_ignore_ascii_case(strip(required))
}

/// A registered NumericDate: integer or fractional JSON number, finite. Any other JSON type
/// is invalid, never "absent".
fn numeric_date(claims: &ClaimSet, name: &str) -> Result<Option<f64>, AuthErrorKind> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(AuthErrorKind::InvalidClaims),
        },
        Some(_) => Err(AuthErrorKind::InvalidClaims),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &str) -> String {
        crate::alg::b64_encode(s.as_bytes())
    }

    fn token(header: &str, payload: &str) -> String {
        format!("{}.{}.{}", enc(header), enc(payload), enc("sig"))
    }

    const NOW: f64 = 1_700_000_000.0;
    const H: &str = r#"{"alg":"RS256","kid":"k"}"#;

    fn check(rules: &Rules, header: &str, payload: &str) -> Result<(), AuthErrorKind> {
        rules
            .check(&token(header, payload), Scheme::Bearer, NOW)
            .map(|_| ())
    }

    #[test]
    fn strict_json() {
        let ok = parse_claims(br#"{"a":1,"b":{"c":[1,{"d":2}]},"\u0061b":3}"#).unwrap();
        assert_eq!(
            ok.get("ab"),
            Some(&Value::from(3)),
            "escaped names are decoded"
        );
        assert!(parse_claims(br#"{"a":1,"a":2}"#).is_err());
        // The same name, once escaped: still a duplicate.
        assert!(parse_claims(br#"{"a":1,"\u0061":2}"#).is_err());
        assert!(parse_claims(br#"{"a":{"b":1,"b":1}}"#).is_err());
        assert!(parse_claims(br#"{"a":[{"b":1,"b":1}]}"#).is_err());
        assert!(parse_claims(br#"[1]"#).is_err());
        assert!(parse_claims(br#""s""#).is_err());
        assert!(parse_claims(br#"{"a":1} x"#).is_err());
        let deep = format!("{{\"a\":{}}}", "[".repeat(10_000));
        assert!(
            parse_claims(deep.as_bytes()).is_err(),
            "recursion is bounded"
        );
        assert!(parse_header(br#"{"alg":"RS256","x":{"y":1,"y":2}}"#).is_err());
        assert!(parse_header(br#"{"alg":"RS256","\u0061lg":"none"}"#).is_err());
    }

    #[test]
    fn serde_reasons_lose_the_values() {
        assert_eq!(
            redact(r#"invalid type: string "admin\" x", expected a sequence"#),
            "invalid type: string, expected a sequence"
        );
        assert_eq!(
            redact("invalid value: integer `-1`, expected u32"),
            "invalid value: integer, expected u32"
        );
        assert_eq!(redact("missing field `roles`"), "missing field `roles`");
    }

    #[test]
    fn strict_base64url() {
        assert_eq!(b64_decode("YWJj"), Some(b"abc".to_vec()));
        assert_eq!(b64_decode("YWI"), Some(b"ab".to_vec()));
        assert!(b64_decode("YWI=").is_none());
        assert!(b64_decode("YW I").is_none());
        assert!(b64_decode("+/+/").is_none());
        // Non-canonical trailing bits ("YWJ" is canonical for "ab"… "YWK" is not).
        assert!(b64_decode("YWK").is_none());
    }

    #[test]
    fn shapes() {
        let r = Rules::default();
        let p = r#"{"exp":1800000000}"#;
        assert!(check(&r, H, p).is_ok());
        let t = token(H, p);
        assert_eq!(
            r.check(&format!("{t}.x.y"), Scheme::Bearer, NOW).err(),
            Some(AuthErrorKind::UnsupportedTokenType)
        );
        assert_eq!(
            r.check(&format!("{t}.x"), Scheme::Bearer, NOW).err(),
            Some(AuthErrorKind::Malformed)
        );
        assert_eq!(
            r.check("a.b", Scheme::Bearer, NOW).err(),
            Some(AuthErrorKind::Malformed)
        );
        assert_eq!(
            r.check(&format!("{}.{}.", enc(H), enc(p)), Scheme::Bearer, NOW)
                .err(),
            Some(AuthErrorKind::Malformed)
        );
        assert_eq!(check(&r, "[]", p), Err(AuthErrorKind::Malformed));
        assert_eq!(check(&r, H, "[1]"), Err(AuthErrorKind::Malformed));
        assert_eq!(
            check(&r, H, r#"{"exp":1800000000,"exp":1}"#),
            Err(AuthErrorKind::Malformed)
        );
    }

    #[test]
    fn header_rules() {
        let r = Rules::default();
        let p = r#"{"exp":1800000000}"#;
        for alg in [
            "none", "None", "HS256", "HS512", "RSA1_5", "Ed448", "ES256K", "",
        ] {
            let h = format!(r#"{{"alg":"{alg}"}}"#);
            assert_eq!(
                check(&r, &h, p),
                Err(AuthErrorKind::DisallowedAlgorithm),
                "{alg}"
            );
        }
        assert_eq!(
            check(&r, r#"{"kid":"k"}"#, p),
            Err(AuthErrorKind::DisallowedAlgorithm)
        );
        assert_eq!(check(&r, r#"{"alg":1}"#, p), Err(AuthErrorKind::Malformed));
        assert_eq!(
            check(&r, r#"{"alg":"RS256","kid":5}"#, p),
            Err(AuthErrorKind::Malformed)
        );
        assert_eq!(
            check(&r, r#"{"alg":"RS256","crit":["exp"],"exp":1}"#, p),
            Err(AuthErrorKind::UnsupportedCritical)
        );
        assert_eq!(
            check(&r, r#"{"alg":"RS256","enc":"A128GCM"}"#, p),
            Err(AuthErrorKind::UnsupportedTokenType)
        );
        let only_es = Rules {
            algorithms: AlgSet::from_algs([Algorithm::ES256]),
            ..Rules::default()
        };
        assert_eq!(
            check(&only_es, H, p),
            Err(AuthErrorKind::DisallowedAlgorithm)
        );
        assert_eq!(
            check(&only_es, r#"{"alg":"HS256"}"#, p),
            Err(AuthErrorKind::DisallowedAlgorithm)
        );
        assert!(check(&only_es, r#"{"alg":"ES256"}"#, p).is_ok());
    }

    #[test]
    fn typ_rules() {
        let r = Rules {
            typ: Some("at+jwt".into()),
            ..Rules::default()
        };
        let p = r#"{"exp":1800000000}"#;
        assert!(check(&r, r#"{"alg":"RS256","typ":"at+jwt"}"#, p).is_ok());
        assert!(check(&r, r#"{"alg":"RS256","typ":"application/AT+JWT"}"#, p).is_ok());
        assert_eq!(
            check(&r, r#"{"alg":"RS256","typ":"JWT"}"#, p),
            Err(AuthErrorKind::InvalidType)
        );
        assert_eq!(check(&r, H, p), Err(AuthErrorKind::InvalidType));
        assert_eq!(
            check(&Rules::default(), r#"{"alg":"RS256","typ":7}"#, p),
            Err(AuthErrorKind::Malformed)
        );
    }

    #[test]
    fn time_claims() {
        let r = Rules::default();
        let ok = |p: &str| check(&r, H, p);
        assert_eq!(ok("{}"), Err(AuthErrorKind::MissingClaim));
        assert!(ok(r#"{"exp":1700000001}"#).is_ok());
        assert!(ok(r#"{"exp":1.7e9}"#).is_ok(), "within leeway");
        assert!(
            ok(r#"{"exp":1699999941}"#).is_ok(),
            "59 s ago, inside the 60 s leeway"
        );
        assert_eq!(ok(r#"{"exp":1699999940}"#), Err(AuthErrorKind::Expired));
        assert_eq!(
            ok(r#"{"exp":"1800000000"}"#),
            Err(AuthErrorKind::InvalidClaims)
        );
        assert_eq!(ok(r#"{"exp":null}"#), Err(AuthErrorKind::InvalidClaims));
        assert_eq!(ok(r#"{"exp":true}"#), Err(AuthErrorKind::InvalidClaims));
        assert_eq!(ok(r#"{"exp":1e400}"#), Err(AuthErrorKind::Malformed));
        assert_eq!(
            ok(r#"{"exp":1800000000,"nbf":1700000100}"#),
            Err(AuthErrorKind::NotYetValid)
        );
        assert!(ok(r#"{"exp":1800000000,"nbf":1700000050.5}"#).is_ok());
        assert_eq!(
            ok(r#"{"exp":1800000000,"nbf":"0"}"#),
            Err(AuthErrorKind::InvalidClaims)
        );
        assert_eq!(
            ok(r#"{"exp":1800000000,"iat":[]}"#),
            Err(AuthErrorKind::InvalidClaims)
        );
        assert_eq!(
            ok(r#"{"exp":1800000000,"sub":1}"#),
            Err(AuthErrorKind::InvalidClaims)
        );
        let strict = Rules {
            leeway: Duration::ZERO,
            ..Rules::default()
        };
        assert_eq!(
            check(&strict, H, r#"{"exp":1700000000}"#),
            Err(AuthErrorKind::Expired)
        );
    }

    #[test]
    fn issuer_and_audience() {
        let r = Rules {
            issuers: vec!["https://idp.example/".into()],
            audiences: vec!["api".into(), "other".into()],
            ..Rules::default()
        };
        let ok = |p: &str| check(&r, H, p);
        let e = r#""exp":1800000000"#;
        assert!(
            ok(&format!(
                r#"{{{e},"iss":"https://idp.example/","aud":"api"}}"#
            ))
            .is_ok()
        );
        assert!(
            ok(&format!(
                r#"{{{e},"iss":"https://idp.example/","aud":["x","other"]}}"#
            ))
            .is_ok()
        );
        assert_eq!(
            ok(&format!(
                r#"{{{e},"iss":"https://idp.example","aud":"api"}}"#
            )),
            Err(AuthErrorKind::InvalidIssuer)
        );
        assert_eq!(
            ok(&format!(
                r#"{{{e},"iss":"HTTPS://idp.example/","aud":"api"}}"#
            )),
            Err(AuthErrorKind::InvalidIssuer)
        );
        assert_eq!(
            ok(&format!(r#"{{{e},"aud":"api"}}"#)),
            Err(AuthErrorKind::InvalidIssuer)
        );
        assert_eq!(
            ok(&format!(
                r#"{{{e},"iss":["https://idp.example/"],"aud":"api"}}"#
            )),
            Err(AuthErrorKind::InvalidClaims)
        );
        assert_eq!(
            ok(&format!(r#"{{{e},"iss":"https://idp.example/"}}"#)),
            Err(AuthErrorKind::InvalidAudience)
        );
        assert_eq!(
            ok(&format!(
                r#"{{{e},"iss":"https://idp.example/","aud":"API"}}"#
            )),
            Err(AuthErrorKind::InvalidAudience)
        );
        assert_eq!(
            ok(&format!(
                r#"{{{e},"iss":"https://idp.example/","aud":["api",1]}}"#
            )),
            Err(AuthErrorKind::InvalidClaims)
        );
        assert_eq!(
            ok(&format!(r#"{{{e},"iss":"https://idp.example/","aud":[]}}"#)),
            Err(AuthErrorKind::InvalidAudience)
        );
        // Without configured values, mistyped claims are still invalid.
        assert_eq!(
            check(&Rules::default(), H, &format!(r#"{{{e},"aud":5}}"#)),
            Err(AuthErrorKind::InvalidClaims)
        );
    }

    #[test]
    fn required_claims() {
        let r = Rules {
            required_claims: vec!["sub".into()],
            ..Rules::default()
        };
        assert_eq!(
            check(&r, H, r#"{"exp":1800000000}"#),
            Err(AuthErrorKind::MissingClaim)
        );
        assert!(check(&r, H, r#"{"exp":1800000000,"sub":"u"}"#).is_ok());
    }

    /// Property tests: the parser is total (any input gives a result, never a panic) and
    /// whatever it lets through meets the rules.
    mod properties {
        use super::*;
        use proptest::prelude::*;
        use proptest::sample::select;

        fn member_name() -> impl Strategy<Value = String> {
            prop_oneof![
                select(vec![
                    "alg", "kid", "typ", "crit", "enc", "zip", "jwk", "jku", "exp", "nbf", "iss",
                    "aud", "sub", "scope",
                ])
                .prop_map(String::from),
                "[a-z]{1,6}",
            ]
        }

        /// Any JSON value a few levels deep, biased toward JOSE names and values.
        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                (NOW as i64 - 1000..NOW as i64 + 1000).prop_map(Value::from),
                any::<f64>().prop_filter_map("finite", |f| {
                    serde_json::Number::from_f64(f).map(Value::Number)
                }),
                ".{0,12}".prop_map(Value::from),
                select(vec![
                    "RS256", "none", "HS256", "ES256", "EdDSA", "k", "JWT", "at+jwt"
                ])
                .prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 32, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
                    prop::collection::vec((member_name(), inner), 0..6)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn object(fixed: Vec<(&'static str, Option<Value>)>, extra: Vec<(String, Value)>) -> Value {
            let mut map = serde_json::Map::new();
            for (name, value) in fixed {
                if let Some(value) = value {
                    map.insert(name.into(), value);
                }
            }
            map.extend(extra);
            Value::Object(map)
        }

        /// A header object: mostly a known alg, sometimes extra (hostile) members.
        fn header_value() -> impl Strategy<Value = Value> {
            let alg = select(vec![
                "RS256", "PS384", "ES256", "EdDSA", "none", "HS256", "ES512",
            ])
            .prop_map(Value::from);
            (
                prop::option::weighted(0.95, alg),
                prop::option::of(".{0,8}".prop_map(Value::from)),
                prop::collection::vec((member_name(), json_value()), 0..2),
            )
                .prop_map(|(alg, kid, extra)| object(vec![("alg", alg), ("kid", kid)], extra))
        }

        /// A claims object with dates around `NOW`, sometimes extra members.
        fn payload_value() -> impl Strategy<Value = Value> {
            let date = prop_oneof![
                (NOW as i64 - 200..NOW as i64 + 200).prop_map(Value::from),
                (NOW - 200.0..NOW + 200.0).prop_map(Value::from),
                json_value(),
            ];
            (
                prop::option::weighted(0.9, date.clone()),
                prop::option::of(date),
                prop::collection::vec((member_name(), json_value()), 0..3),
            )
                .prop_map(|(exp, nbf, extra)| object(vec![("exp", exp), ("nbf", nbf)], extra))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn any_text_gets_an_answer(token in "\\PC{0,300}") {
                let _ = Rules::default().check(&token, Scheme::Bearer, NOW);
            }

            #[test]
            fn any_token_shaped_text_gets_an_answer(token in "[A-Za-z0-9_.=+/~-]{0,400}") {
                let _ = Rules::default().check(&token, Scheme::Bearer, NOW);
            }

            #[test]
            fn any_json_gets_an_answer_and_what_passes_meets_the_rules(
                header in prop_oneof![4 => header_value(), 1 => json_value()],
                payload in prop_oneof![4 => payload_value(), 1 => json_value()],
                raw_header in prop::option::weighted(0.1, "\\PC{0,40}"),
                signature in prop::collection::vec(any::<u8>(), 0..80),
            ) {
                let header_text = raw_header.unwrap_or_else(|| header.to_string());
                let token = format!(
                    "{}.{}.{}",
                    enc(&header_text),
                    enc(&payload.to_string()),
                    crate::alg::b64_encode(&signature)
                );
                let rules = Rules::default();
                if rules.check(&token, Scheme::Bearer, NOW).is_ok() {
                    let header: Value = serde_json::from_str(&header_text).unwrap();
                    let alg = header["alg"].as_str().unwrap();
                    prop_assert!(DEFAULT_ALGORITHMS.iter().any(|a| Algorithm::from_name(alg) == Some(*a)));
                    prop_assert!(header.get("crit").is_none() && header.get("enc").is_none());
                    prop_assert!(!signature.is_empty());
                    let exp = payload["exp"].as_f64().unwrap();
                    prop_assert!(exp + rules.leeway.as_secs_f64() > NOW);
                    if let Some(nbf) = payload.get("nbf") {
                        prop_assert!(nbf.as_f64().unwrap() - rules.leeway.as_secs_f64() <= NOW);
                    }
                }
            }
        }
    }
}
