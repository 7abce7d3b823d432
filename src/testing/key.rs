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
    /// for ES384, Ed25519 for EdDSA). Its JWK names `alg` unless it is RSA, whose JWK
    /// leaves `alg` out as many identity providers do.
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
            EdDSA => Material::Ed(Ed25519KeyPair::generate().expect("Ed25519 key")),
        };
        let alg = (!matches!(material, Material::Rsa(_))).then_some(alg);
        Self {
            kid: kid.into(),
            alg,
            material,
        }
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
                let crv = if *alg == Algorithm::ES256 {
                    "P-256"
                } else {
                    "P-384"
                };
                json!({
                    "kty": "EC", "crv": crv,
                    "x": b64(&point[1..1 + len]), "y": b64(&point[1 + len..]),
                })
            }
            Material::Ed(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())})
            }
        };
        jwk["kid"] = json!(self.kid);
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
                assert_eq!(alg, EdDSA, "an Ed25519 key signs only EdDSA");
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

/// The name of an algorithm as it appears in a JOSE header (same as
/// [`Algorithm::as_str`]).
pub fn alg_name(alg: Algorithm) -> &'static str {
    alg.as_str()
}
