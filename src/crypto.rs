//! The signature backend, chosen at compile time.
//!
//! - `aws_lc_rs` (default): every key of a key set is parsed once, when the set is
//!   built, into an `aws_lc_rs::signature::ParsedPublicKey` per algorithm it may verify.
//!   The request path only calls `verify_sig`: no key parsing, no allocation. A public
//!   key that aws-lc rejects (an EC point off the curve, a malformed RSA key) is skipped
//!   when the set is built.
//! - `rust_crypto`: jsonwebtoken's RustCrypto provider, called directly through its
//!   verifier factory.
//!
//! Neither path goes through jsonwebtoken's process-wide default provider, so enabling
//! both features (as `--all-features` does) cannot panic at run time: `aws_lc_rs` wins.

#[cfg(not(any(feature = "aws_lc_rs", feature = "rust_crypto")))]
compile_error!(
    "jwks-auth needs a crypto backend: enable the `aws_lc_rs` (default) or the `rust_crypto` feature"
);

/// Name of the crypto backend compiled in: `"aws_lc_rs"` or `"rust_crypto"`.
///
/// When both features are enabled, `aws_lc_rs` is used.
#[cfg(feature = "test-util")]
pub const CRYPTO_BACKEND: &str = if cfg!(feature = "aws_lc_rs") {
    "aws_lc_rs"
} else {
    "rust_crypto"
};

pub(crate) use imp::KeyVerifier;

/// Whether the backend verifies ES512 (P-521): aws-lc does; jsonwebtoken's RustCrypto
/// provider has no ES512, so with `rust_crypto` alone P-521 keys are skipped.
pub(crate) const SUPPORTS_P521: bool = cfg!(feature = "aws_lc_rs");

#[cfg(feature = "aws_lc_rs")]
mod imp {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};

    use crate::alg::Algorithm;

    /// Parsed public keys, one per algorithm the key may verify.
    pub(crate) struct KeyVerifier {
        keys: Vec<(Algorithm, ParsedPublicKey)>,
    }

    fn params(alg: Algorithm) -> &'static dyn sig::VerificationAlgorithm {
        use Algorithm::*;
        match alg {
            RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            PS256 => &sig::RSA_PSS_2048_8192_SHA256,
            PS384 => &sig::RSA_PSS_2048_8192_SHA384,
            PS512 => &sig::RSA_PSS_2048_8192_SHA512,
            ES256 => &sig::ECDSA_P256_SHA256_FIXED,
            ES384 => &sig::ECDSA_P384_SHA384_FIXED,
            ES512 => &sig::ECDSA_P521_SHA512_FIXED,
            EdDSA | Ed25519 => &sig::ED25519,
        }
    }

    impl KeyVerifier {
        fn parse(bytes: &[u8], algs: &[Algorithm]) -> Option<Self> {
            let mut keys = Vec::with_capacity(algs.len());
            for alg in algs {
                let alg = alg.canonical();
                keys.push((alg, ParsedPublicKey::new(params(alg), bytes).ok()?));
            }
            Some(Self { keys })
        }

        pub(crate) fn rsa(n: &[u8], e: &[u8], algs: &[Algorithm]) -> Option<Self> {
            let der = RsaPublicKeyComponents { n, e }.as_der().ok()?;
            Self::parse(der.as_ref(), algs)
        }

        /// `point`: the uncompressed SEC1 point (`04 || x || y`).
        pub(crate) fn ec(point: &[u8], alg: Algorithm) -> Option<Self> {
            Self::parse(point, &[alg])
        }

        pub(crate) fn ed25519(x: &[u8]) -> Option<Self> {
            Self::parse(x, &[Algorithm::EdDSA])
        }

        pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
            let alg = alg.canonical();
            self.keys
                .iter()
                .find(|(a, _)| *a == alg)
                .is_some_and(|(_, key)| key.verify_sig(message, signature).is_ok())
        }
    }
}

#[cfg(all(feature = "rust_crypto", not(feature = "aws_lc_rs")))]
mod imp {
    use jsonwebtoken::DecodingKey;
    use jsonwebtoken::crypto::CryptoProvider;

    use crate::alg::Algorithm;

    static PROVIDER: &CryptoProvider = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;

    /// A jsonwebtoken key; its verifier is built by the RustCrypto provider per check.
    pub(crate) struct KeyVerifier {
        key: DecodingKey,
        algs: Vec<Algorithm>,
    }

    /// jsonwebtoken's name for the same algorithm (it has no ES512).
    fn jwt_alg(alg: Algorithm) -> Option<jsonwebtoken::Algorithm> {
        use jsonwebtoken::Algorithm as J;
        Some(match alg {
            Algorithm::RS256 => J::RS256,
            Algorithm::RS384 => J::RS384,
            Algorithm::RS512 => J::RS512,
            Algorithm::PS256 => J::PS256,
            Algorithm::PS384 => J::PS384,
            Algorithm::PS512 => J::PS512,
            Algorithm::ES256 => J::ES256,
            Algorithm::ES384 => J::ES384,
            Algorithm::ES512 => return None,
            Algorithm::EdDSA | Algorithm::Ed25519 => J::EdDSA,
        })
    }

    impl KeyVerifier {
        fn checked(key: DecodingKey, algs: &[Algorithm]) -> Option<Self> {
            for alg in algs {
                (PROVIDER.verifier_factory)(&jwt_alg(*alg)?, &key).ok()?;
            }
            Some(Self {
                key,
                algs: algs.iter().map(|a| a.canonical()).collect(),
            })
        }

        pub(crate) fn rsa(n: &[u8], e: &[u8], algs: &[Algorithm]) -> Option<Self> {
            Self::checked(DecodingKey::from_rsa_raw_components(n, e), algs)
        }

        pub(crate) fn ec(point: &[u8], alg: Algorithm) -> Option<Self> {
            Self::checked(DecodingKey::from_ec_der(point), &[alg])
        }

        pub(crate) fn ed25519(x: &[u8]) -> Option<Self> {
            Self::checked(DecodingKey::from_ed_der(x), &[Algorithm::EdDSA])
        }

        pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
            let Some(jwt) = jwt_alg(alg) else {
                return false;
            };
            self.algs.contains(&alg.canonical())
                && (PROVIDER.verifier_factory)(&jwt, &self.key)
                    .is_ok_and(|v| v.verify(message, &signature.to_vec()).is_ok())
        }
    }
}
