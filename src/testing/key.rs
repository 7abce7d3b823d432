//! [`TestKey`]: generated signing keys, their JWKs, and raw signing.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

use crate::alg::{Algorithm, b64_encode as b64};

/// A generated signing key with its `kid`.
pub struct TestKey {
    kid: String,
    alg: Option<Algorithm>,
    material: Material,
    export: JwkExport,
}

/// How [`TestKey::jwk`] writes the public key: the shapes real exporters produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum JwkExport {
    /// RFC 7517/7518 as written by most identity providers: `kid`, `use: "sig"`, `alg`
    /// (left out for RSA), full-length coordinates.
    #[default]
    Standard,
    /// What WebCrypto (`crypto.subtle.exportKey("jwk", …)` in browsers and Node) writes
    /// for an Ed25519 key: `alg: "Ed25519"` (RFC 9864), `key_ops: ["verify"]`,
    /// `ext: true`, no `use`; the `kid` added by the publisher.
    WebCrypto,
    /// EC coordinates without their leading zero bytes, as authlib (and Keycloak before
    /// its fix) export them; pair it with [`TestKey::generate_short_coordinate`].
    ShortCoordinates,
}

enum Material {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair, Algorithm),
    Ed(Ed25519KeyPair),
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl TestKey {
    /// Generates a key able to sign `alg` (RSA-2048 for RS*/PS*, P-256 for ES256, P-384
    /// for ES384, P-521 for ES512, Ed25519 for EdDSA and Ed25519). Its JWK names `alg`
    /// unless it is RSA, whose JWK leaves `alg` out as many identity providers do.
    ///
    /// # Panics
    ///
    /// If key generation fails.
    pub fn generate(alg: Algorithm, kid: impl Into<String>) -> Self {
        use Algorithm::*;
        let material = match alg {
            RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => Material::Rsa(
                RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("RSA key generation"),
            ),
            ES256 => Material::Ec(
                EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key"),
                ES256,
            ),
            ES384 => Material::Ec(
                EcdsaKeyPair::generate(&sig::ECDSA_P384_SHA384_FIXED_SIGNING).expect("P-384 key"),
                ES384,
            ),
            ES512 => Material::Ec(
                EcdsaKeyPair::generate(&sig::ECDSA_P521_SHA512_FIXED_SIGNING).expect("P-521 key"),
                ES512,
            ),
            EdDSA | Ed25519 => Material::Ed(Ed25519KeyPair::generate().expect("Ed25519 key")),
        };
        let alg = (!matches!(material, Material::Rsa(_))).then_some(alg);
        Self {
            kid: kid.into(),
            alg,
            material,
            export: JwkExport::Standard,
        }
    }

    /// Generates an EC key (ES256, ES384 or ES512) one of whose coordinates has a leading
    /// zero byte, so that [`JwkExport::ShortCoordinates`] really shortens it (about one
    /// key in 64 qualifies; this tries until one does).
    ///
    /// # Panics
    ///
    /// For a non-EC algorithm.
    pub fn generate_short_coordinate(alg: Algorithm, kid: impl Into<String>) -> Self {
        assert!(
            matches!(alg, Algorithm::ES256 | Algorithm::ES384 | Algorithm::ES512),
            "short coordinates are an EC thing"
        );
        let kid = kid.into();
        loop {
            let key = Self::generate(alg, kid.clone());
            if let Material::Ec(k, _) = &key.material {
                let point = k.public_key().as_ref();
                let len = (point.len() - 1) / 2;
                if point[1] == 0 || point[1 + len] == 0 {
                    return key.with_export(JwkExport::ShortCoordinates);
                }
            }
        }
    }

    /// Sets the shape of the exported JWK.
    pub fn with_export(mut self, export: JwkExport) -> Self {
        self.export = export;
        self
    }

    /// Sets the `alg` the JWK advertises (`None` leaves it out).
    pub fn with_jwk_alg(mut self, alg: Option<Algorithm>) -> Self {
        self.alg = alg;
        self
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        let mut jwk = match &self.material {
            Material::Rsa(k) => {
                let c = sig::RsaPublicKeyComponents::<Vec<u8>>::from(k.public_key());
                json!({"kty": "RSA", "n": b64(&c.n), "e": b64(&c.e)})
            }
            Material::Ec(k, alg) => {
                let point = k.public_key().as_ref();
                let len = (point.len() - 1) / 2;
                let crv = match alg {
                    Algorithm::ES256 => "P-256",
                    Algorithm::ES384 => "P-384",
                    _ => "P-521",
                };
                let (mut x, mut y) = (&point[1..1 + len], &point[1 + len..]);
                if self.export == JwkExport::ShortCoordinates {
                    let strip = |c: &[u8]| c.iter().position(|b| *b != 0).unwrap_or(c.len());
                    x = &x[strip(x)..];
                    y = &y[strip(y)..];
                }
                json!({"kty": "EC", "crv": crv, "x": b64(x), "y": b64(y)})
            }
            Material::Ed(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())})
            }
        };
        jwk["kid"] = json!(self.kid);
        if self.export == JwkExport::WebCrypto {
            if matches!(self.material, Material::Ed(_)) {
                jwk["alg"] = json!("Ed25519");
            } else if let Some(alg) = self.alg {
                jwk["alg"] = json!(alg.as_str());
            }
            jwk["key_ops"] = json!(["verify"]);
            jwk["ext"] = json!(true);
            return jwk;
        }
        jwk["use"] = json!("sig");
        if let Some(alg) = self.alg {
            jwk["alg"] = json!(alg.as_str());
        }
        jwk
    }

    /// Signs `message` with `alg`.
    ///
    /// # Panics
    ///
    /// If `alg` does not fit the key type.
    pub fn sign(&self, alg: Algorithm, message: &[u8]) -> Vec<u8> {
        use Algorithm::*;
        let rng = SystemRandom::new();
        match &self.material {
            Material::Rsa(k) => {
                let padding: &'static dyn sig::RsaEncoding = match alg {
                    RS256 => &sig::RSA_PKCS1_SHA256,
                    RS384 => &sig::RSA_PKCS1_SHA384,
                    RS512 => &sig::RSA_PKCS1_SHA512,
                    PS256 => &sig::RSA_PSS_SHA256,
                    PS384 => &sig::RSA_PSS_SHA384,
                    PS512 => &sig::RSA_PSS_SHA512,
                    other => panic!("an RSA key cannot sign {other}"),
                };
                let mut out = vec![0; k.public_modulus_len()];
                k.sign(padding, &rng, message, &mut out)
                    .expect("RSA signing");
                out
            }
            Material::Ec(k, key_alg) => {
                assert_eq!(*key_alg, alg, "EC key signs only {key_alg:?}");
                k.sign(&rng, message)
                    .expect("ECDSA signing")
                    .as_ref()
                    .to_vec()
            }
            Material::Ed(k) => {
                assert!(
                    matches!(alg, EdDSA | Ed25519),
                    "an Ed25519 key signs only EdDSA (Ed25519)"
                );
                k.sign(message).as_ref().to_vec()
            }
        }
    }

    /// Builds a compact JWS from raw header and payload JSON text, signed with `alg`.
    /// The texts are used byte for byte, so tests can send duplicate members, odd
    /// numbers or anything else.
    pub fn sign_compact(&self, alg: Algorithm, header_json: &str, payload_json: &str) -> String {
        let input = format!(
            "{}.{}",
            b64(header_json.as_bytes()),
            b64(payload_json.as_bytes())
        );
        let signature = self.sign(alg, input.as_bytes());
        format!("{input}.{}", b64(&signature))
    }
}
