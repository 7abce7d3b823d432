//! [`StandardClaims`]: the registered and OAuth claims, deserialized by hand (the
//! extractors are in `extract`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// The registered claims (RFC 7519 §4.1), the OAuth `scope`/`scp` claims, and every other
/// claim in [`extra`](Self::extra).
///
/// NumericDates (`exp`, `nbf`, `iat`) may be integers or fractional numbers in the token;
/// they are given here in whole seconds, rounded down. `aud` may be a string or an array.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[non_exhaustive]
pub struct StandardClaims {
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audiences (a single string in the token becomes one element).
    #[serde(
        default,
        deserialize_with = "string_or_array",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub aud: Vec<String>,
    /// Expiry, seconds since the epoch. Always present in a verified token.
    #[serde(default, deserialize_with = "numeric_date")]
    pub exp: Option<i64>,
    /// Not before, seconds since the epoch.
    #[serde(
        default,
        deserialize_with = "numeric_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub nbf: Option<i64>,
    /// Issued at, seconds since the epoch.
    #[serde(
        default,
        deserialize_with = "numeric_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub iat: Option<i64>,
    /// Token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Space-separated scopes (RFC 8693 §4.2, RFC 9068).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Scopes as Entra and Okta send them: a string or an array.
    #[serde(
        default,
        deserialize_with = "string_or_array",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub scp: Vec<String>,
    /// Every other claim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl StandardClaims {
    /// Every scope of the token: the words of `scope`, then the entries of `scp`
    /// (each entry split on spaces too).
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope
            .as_deref()
            .into_iter()
            .chain(self.scp.iter().map(String::as_str))
            .flat_map(|s| s.split(' '))
            .filter(|s| !s.is_empty())
    }

    /// Whether the token grants `scope` (exact, case-sensitive match).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// For handlers: `Ok` if the token grants every one of `scopes`, else the 403
    /// `insufficient_scope` rejection to return (`AuthError` is a response).
    ///
    /// ```
    /// # use jwks_auth::{AuthError, Claims};
    /// async fn delete_order(Claims(claims): Claims) -> Result<&'static str, AuthError> {
    ///     claims.require_scopes(["orders:delete"])?;
    ///     Ok("deleted")
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// [`AuthErrorKind::InsufficientScope`](crate::AuthErrorKind::InsufficientScope)
    /// naming the required scopes.
    pub fn require_scopes<I, S>(&self, scopes: I) -> Result<(), crate::AuthError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let scopes: Vec<S> = scopes.into_iter().collect();
        if scopes.iter().all(|s| self.has_scope(s.as_ref())) {
            Ok(())
        } else {
            Err(crate::AuthError::insufficient_scope(scopes))
        }
    }
}

// Written by hand rather than derived: `#[serde(flatten)]` on `extra` would buffer the
// whole payload through serde's private `Content` type first, which costs about as much
// as the rest of the claims handling together.
impl<'de> Deserialize<'de> for StandardClaims {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(StandardClaimsVisitor)
    }
}

struct StandardClaimsVisitor;

impl<'de> Visitor<'de> for StandardClaimsVisitor {
    type Value = StandardClaims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWT claims object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StandardClaims, A::Error> {
        let mut c = StandardClaims::default();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match &*key {
                "iss" => c.iss = Some(map.next_value()?),
                "sub" => c.sub = Some(map.next_value()?),
                "jti" => c.jti = Some(map.next_value()?),
                "scope" => c.scope = Some(map.next_value()?),
                "aud" => c.aud = map.next_value::<OneOrMany>()?.0,
                "scp" => c.scp = map.next_value::<OneOrMany>()?.0,
                "exp" => c.exp = Some(map.next_value::<NumericDate>()?.0),
                "nbf" => c.nbf = Some(map.next_value::<NumericDate>()?.0),
                "iat" => c.iat = Some(map.next_value::<NumericDate>()?.0),
                _ => {
                    c.extra.insert(key.into_owned(), map.next_value()?);
                }
            }
        }
        Ok(c)
    }
}

/// A string or an array of strings.
struct OneOrMany(Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_owned()]))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(OneOrMany(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// An integer or fractional NumericDate, in whole seconds (rounded down).
struct NumericDate(i64);

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if !v.is_finite() {
            return Err(serde::de::Error::custom("NumericDate is not finite"));
        }
        // `as` saturates at the i64 bounds.
        Ok(NumericDate(v.floor() as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn standard_claims_from_varied_tokens() {
        let c: StandardClaims = serde_json::from_value(json!({
            "iss": "i", "sub": "s", "aud": "a", "exp": 1.7e9, "nbf": 1699999999.9,
            "scope": "read  write", "scp": ["admin", "x y"], "tenant": "t1"
        }))
        .unwrap();
        assert_eq!(c.aud, vec!["a"]);
        assert_eq!(c.exp, Some(1_700_000_000));
        assert_eq!(c.nbf, Some(1_699_999_999));
        assert_eq!(
            c.scopes().collect::<Vec<_>>(),
            ["read", "write", "admin", "x", "y"]
        );
        assert!(c.has_scope("admin") && !c.has_scope("Admin") && !c.has_scope(""));
        assert_eq!(c.extra["tenant"], "t1");

        let arr: StandardClaims =
            serde_json::from_value(json!({"aud": ["a", "b"], "exp": 1})).unwrap();
        assert_eq!(arr.aud, vec!["a", "b"]);
        assert!(serde_json::from_value::<StandardClaims>(json!({"aud": 5, "exp": 1})).is_err());
    }
}
