//! [`StandardClaims`]: the registered and OAuth claims, deserialized by hand (the
//! extractors are in `extract`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::error::AuthError;

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
    /// Every scope the token grants (see [`Scopes`]).
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        scope_words(self.scope.as_deref(), &self.scp)
    }
}

/// Claims that carry OAuth scopes; the one place scopes are matched.
///
/// Implemented for [`StandardClaims`]. For your own claims type, implement
/// [`scope_claim`](Self::scope_claim) (and [`scp_claim`](Self::scp_claim) if your
/// provider sends `scp`): one line, no derive. Then the layer's route layers
/// ([`JwksAuth::require_scopes`](crate::JwksAuth::require_scopes)) and the handler-side
/// checks below work for it.
///
/// ```
/// use jwks_auth::Scopes;
///
/// #[derive(Clone, serde::Deserialize)]
/// struct MyClaims {
///     sub: String,
///     #[serde(default)]
///     scope: String,
/// }
///
/// impl Scopes for MyClaims {
///     fn scope_claim(&self) -> Option<&str> {
///         Some(&self.scope)
///     }
/// }
///
/// let claims = MyClaims { sub: "u".into(), scope: "orders:read orders:write".into() };
/// assert!(claims.has_scope("orders:write"));
/// assert!(!claims.has_scope("orders"));
/// // In a handler returning `Result<_, AuthError>`: 403 `insufficient_scope` naming them.
/// assert!(claims.require_scopes(["orders:read", "orders:write"]).is_ok());
/// assert_eq!(claims.require_any_scope(["admin"]).unwrap_err().status(), 403);
/// ```
pub trait Scopes {
    /// The `scope` claim: space-separated scopes (RFC 8693 §4.2, RFC 9068).
    fn scope_claim(&self) -> Option<&str> {
        None
    }

    /// The `scp` claim, as Entra and Okta send it: entries, each possibly space-separated.
    fn scp_claim(&self) -> &[String] {
        &[]
    }

    /// Whether the token grants `scope`: a word of [`scope_claim`](Self::scope_claim) or
    /// of an entry of [`scp_claim`](Self::scp_claim), exact and case-sensitive.
    fn has_scope(&self, scope: &str) -> bool {
        scope_words(self.scope_claim(), self.scp_claim()).any(|w| w == scope)
    }

    /// `Ok` if the token grants every one of `scopes`, else 403 `insufficient_scope`
    /// naming them all.
    fn require_scopes<I, S>(&self, scopes: I) -> Result<(), AuthError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
        Self: Sized,
    {
        demand(self, scopes, true)
    }

    /// `Ok` if the token grants at least one of `scopes`, else 403 `insufficient_scope`
    /// naming them all.
    fn require_any_scope<I, S>(&self, scopes: I) -> Result<(), AuthError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
        Self: Sized,
    {
        demand(self, scopes, false)
    }

    /// [`require_scopes`](Self::require_scopes), a scope implied by a granted one (per
    /// `hierarchy`) counting as granted.
    fn require_scopes_in<I, S>(
        &self,
        hierarchy: &ScopeHierarchy,
        scopes: I,
    ) -> Result<(), AuthError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
        Self: Sized,
    {
        demand_in(Some(hierarchy), self, scopes, true)
    }

    /// [`require_any_scope`](Self::require_any_scope), with `hierarchy`.
    fn require_any_scope_in<I, S>(
        &self,
        hierarchy: &ScopeHierarchy,
        scopes: I,
    ) -> Result<(), AuthError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
        Self: Sized,
    {
        demand_in(Some(hierarchy), self, scopes, false)
    }
}

impl Scopes for StandardClaims {
    fn scope_claim(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    fn scp_claim(&self) -> &[String] {
        &self.scp
    }
}

/// Which scopes imply others (MCP 2026-07-28, "scope hierarchies"): `mcp:admin` ⊇
/// `mcp:write` ⊇ `mcp:read`. A token granting a scope is taken to grant every scope it
/// implies, transitively (cycles are harmless). Honoured by the layer's route layers
/// ([`JwksAuth::scope_hierarchy`](crate::JwksAuth::scope_hierarchy)) and, in handlers,
/// by [`Scopes::require_scopes_in`] and [`Scopes::require_any_scope_in`]; a 403 still
/// names the scopes the operation needs.
///
/// ```
/// use jwks_auth::{ScopeHierarchy, Scopes, StandardClaims};
///
/// let levels = ScopeHierarchy::new()
///     .implies("mcp:admin", ["mcp:write"])
///     .implies("mcp:write", ["mcp:read"]);
/// let claims: StandardClaims = serde_json::from_value(serde_json::json!({"scope": "mcp:admin"})).unwrap();
/// assert!(claims.require_scopes_in(&levels, ["mcp:read"]).is_ok());
/// assert!(!claims.has_scope("mcp:read"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ScopeHierarchy {
    /// Each scope with the scopes it implies directly.
    implies: Vec<(String, Vec<String>)>,
}

impl ScopeHierarchy {
    /// No scope implies another.
    pub fn new() -> Self {
        Self::default()
    }

    /// `scope` implies each of `implied` (and, transitively, what they imply).
    pub fn implies(
        mut self,
        scope: impl Into<String>,
        implied: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.implies
            .push((scope.into(), implied.into_iter().map(Into::into).collect()));
        self
    }

    /// Whether `claims` grant `scope`: directly, or through a scope that implies it.
    pub fn grants<C: Scopes + ?Sized>(&self, claims: &C, scope: &str) -> bool {
        let mut seen: Vec<&str> = vec![scope];
        let mut next = 0;
        while let Some(&s) = seen.get(next) {
            if claims.has_scope(s) {
                return true;
            }
            for (parent, children) in &self.implies {
                if children.iter().any(|c| c == s) && !seen.contains(&parent.as_str()) {
                    seen.push(parent);
                }
            }
            next += 1;
        }
        false
    }
}

/// Every one of `scopes` (`all`), or at least one, else 403 naming them all.
fn demand<C: Scopes, S: AsRef<str>>(
    claims: &C,
    scopes: impl IntoIterator<Item = S>,
    all: bool,
) -> Result<(), AuthError> {
    demand_in(None, claims, scopes, all)
}

/// [`demand`], with a hierarchy.
pub(crate) fn demand_in<C: Scopes, S: AsRef<str>>(
    hierarchy: Option<&ScopeHierarchy>,
    claims: &C,
    scopes: impl IntoIterator<Item = S>,
    all: bool,
) -> Result<(), AuthError> {
    let scopes: Vec<S> = scopes.into_iter().collect();
    let has = |s: &str| match hierarchy {
        Some(h) => h.grants(claims, s),
        None => claims.has_scope(s),
    };
    let mut granted = scopes.iter().map(|s| has(s.as_ref()));
    let ok = if all {
        granted.all(|g| g)
    } else {
        granted.any(|g| g)
    };
    if ok {
        Ok(())
    } else {
        Err(AuthError::insufficient_scope(scopes))
    }
}

/// The scopes of a `scope` string and `scp` entries: their space-separated words.
fn scope_words<'a>(scope: Option<&'a str>, scp: &'a [String]) -> impl Iterator<Item = &'a str> {
    scope
        .into_iter()
        .chain(scp.iter().map(String::as_str))
        .flat_map(|s| s.split(' '))
        .filter(|s| !s.is_empty())
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
