//! Strict JSON for JOSE headers and JWT claims: objects without duplicate member names
//! at any depth (RFC 7519 allows last-wins; we reject, which closes parser-differential
//! attacks), parsed once into what the verifier reads.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::AuthErrorKind;

/// The top-level claims in token order. A short vector, not a map: a payload has a
/// handful of members, and a linear scan beats building a tree for them.
pub(crate) struct ClaimSet(pub(crate) Vec<(String, Value)>);

impl ClaimSet {
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// Parses the payload: a JSON object without duplicate member names at any depth.
pub(crate) fn parse_claims(bytes: &[u8]) -> Result<ClaimSet, AuthErrorKind> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let claims = de
        .deserialize_map(ClaimSetVisitor)
        .map_err(|_| AuthErrorKind::Malformed)?;
    de.end().map_err(|_| AuthErrorKind::Malformed)?;
    Ok(claims)
}

struct ClaimSetVisitor;

impl<'de> Visitor<'de> for ClaimSetVisitor {
    type Value = ClaimSet;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWT claims object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ClaimSet, A::Error> {
        let mut members: Vec<(String, Value)> =
            Vec::with_capacity(map.size_hint().unwrap_or(8).min(64));
        while let Some(CowStr(name)) = map.next_key::<CowStr<'de>>()? {
            if members.iter().any(|(n, _)| *n == *name) {
                return Err(de::Error::custom("duplicate member name"));
            }
            let StrictValue(value) = map.next_value()?;
            members.push((name.into_owned(), value));
        }
        Ok(ClaimSet(members))
    }
}

/// What the verifier reads from a JOSE header. `jku`, `x5u` and `x5c` are read only as
/// far as the duplicate check needs; `jwk` only by the DPoP proof check: none of them is
/// ever used to verify an access token.
#[derive(Default)]
pub(crate) struct Header<'a> {
    pub(crate) alg: Option<Cow<'a, str>>,
    pub(crate) kid: Option<Cow<'a, str>>,
    pub(crate) typ: Option<Cow<'a, str>>,
    pub(crate) crit: bool,
    pub(crate) jwe: bool,
    /// The `jwk` member: read for DPoP proofs (which carry their key), never used to
    /// verify an access token.
    pub(crate) jwk: Option<Value>,
}

/// Parses a header: a JSON object without duplicate members (at any depth), whose
/// `alg`, `kid` and `typ`, when present, are strings.
pub(crate) fn parse_header(bytes: &[u8]) -> Result<Header<'_>, AuthErrorKind> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let header = de
        .deserialize_map(HeaderVisitor)
        .map_err(|_| AuthErrorKind::Malformed)?;
    de.end().map_err(|_| AuthErrorKind::Malformed)?;
    Ok(header)
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = Header<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JOSE header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header<'de>, A::Error> {
        let mut header = Header::default();
        let mut seen: Vec<CowStr<'de>> = Vec::new();
        while let Some(CowStr(name)) = map.next_key::<CowStr<'de>>()? {
            if seen.iter().any(|s| s.0 == name) {
                return Err(de::Error::custom("duplicate member name"));
            }
            match &*name {
                "alg" => header.alg = Some(map.next_value::<CowStr<'de>>()?.0),
                "kid" => header.kid = Some(map.next_value::<CowStr<'de>>()?.0),
                "typ" => header.typ = Some(map.next_value::<CowStr<'de>>()?.0),
                "jwk" => header.jwk = Some(map.next_value::<StrictValue>()?.0),
                other => {
                    header.crit |= other == "crit";
                    header.jwe |= other == "enc" || other == "zip";
                    map.next_value::<StrictValue>()?;
                }
            }
            seen.push(CowStr(name));
        }
        Ok(header)
    }
}

/// A string, borrowed from the input when it has no escapes.
struct CowStr<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A `serde_json::Value` whose objects may not repeat a member name.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match out.entry(key) {
                serde_json::map::Entry::Occupied(_) => {
                    return Err(de::Error::custom("duplicate member name"));
                }
                serde_json::map::Entry::Vacant(slot) => {
                    let StrictValue(v) = map.next_value()?;
                    slot.insert(v);
                }
            }
        }
        Ok(Value::Object(out))
    }
}
