//! The only `unsafe` code of Trent's key cryptography: direct calls into AWS-LC (`aws-lc-sys`,
//! pinned to the exact version aws-lc-rs links, so both use one library) for the three things
//! the safe aws-lc-rs 1.19 API lacks:
//!
//! - ML-DSA signing and verification with an externally computed mu (FIPS 204, section 6.2;
//!   AWS `MessageType: EXTERNAL_MU`): AWS-LC's `EVP_PKEY_sign`/`EVP_PKEY_verify` on a PQDSA key
//!   take mu, while its message path is what aws-lc-rs exposes;
//! - Ed25519ph (RFC 8032 HashEdDSA, empty context): `ED25519ph_sign` / `ED25519ph_verify`;
//! - ML-KEM private keys in PKCS#8 (seed or expanded form): `EVP_parse_private_key`, whose
//!   expanded decapsulation key aws-lc-rs then takes through its safe `DecapsulationKey::new`.
//!
//! Every pointer handed to AWS-LC comes from a live Rust slice or from an AWS-LC constructor
//! whose result is checked for NULL and owned by a guard that frees it exactly once. Lengths
//! passed with a pointer are the lengths of the same slice. No pointer outlives its guard.

use aws_lc_sys as sys;
use zeroize::Zeroizing;

use crate::secret::SecretBytes;

/// Owns an `EVP_PKEY` and frees it on drop.
struct Pkey(*mut sys::EVP_PKEY);

impl Pkey {
    /// Takes ownership of a pointer returned by an AWS-LC constructor; `None` for NULL.
    fn new(ptr: *mut sys::EVP_PKEY) -> Option<Self> {
        if ptr.is_null() {
            clear_errors();
            None
        } else {
            Some(Self(ptr))
        }
    }
}

impl Drop for Pkey {
    fn drop(&mut self) {
        // SAFETY: `self.0` is a non-NULL EVP_PKEY we own (checked in `new`), freed only here.
        unsafe { sys::EVP_PKEY_free(self.0) }
    }
}

/// Owns an `EVP_PKEY_CTX` and frees it on drop.
struct PkeyCtx(*mut sys::EVP_PKEY_CTX);

impl PkeyCtx {
    /// A context for operations with `key`; the context takes its own reference to the key.
    fn for_key(key: &Pkey) -> Option<Self> {
        // SAFETY: `key.0` is a live EVP_PKEY; a NULL engine is allowed. EVP_PKEY_CTX_new
        // up-references the key, so the context stays valid independently of `key`.
        let ctx = unsafe { sys::EVP_PKEY_CTX_new(key.0, std::ptr::null_mut()) };
        if ctx.is_null() {
            clear_errors();
            None
        } else {
            Some(Self(ctx))
        }
    }
}

impl Drop for PkeyCtx {
    fn drop(&mut self) {
        // SAFETY: `self.0` is a non-NULL context we own, freed only here.
        unsafe { sys::EVP_PKEY_CTX_free(self.0) }
    }
}

/// Drops whatever AWS-LC queued on this thread's error queue after a failure, so that a later,
/// unrelated aws-lc-rs call does not see it.
fn clear_errors() {
    // SAFETY: no arguments; touches only the calling thread's error queue.
    unsafe { sys::ERR_clear_error() }
}

/// Parses a DER PKCS#8 private key; `None` if it does not parse or has trailing bytes.
fn parse_pkcs8(der: &[u8]) -> Option<Pkey> {
    let mut cbs = sys::CBS {
        data: der.as_ptr(),
        len: der.len(),
    };
    // SAFETY: `cbs` points at `der`, which outlives this call; EVP_parse_private_key only reads
    // through it and advances it, and returns a new EVP_PKEY or NULL.
    let key = Pkey::new(unsafe { sys::EVP_parse_private_key(&mut cbs) })?;
    (cbs.len == 0).then_some(key)
}

/// The EVP type of a key (`EVP_PKEY_PQDSA`, `EVP_PKEY_KEM`, ...).
fn key_type(key: &Pkey) -> i32 {
    // SAFETY: `key.0` is a live EVP_PKEY.
    unsafe { sys::EVP_PKEY_id(key.0) }
}

/// AWS-LC's NID for ML-DSA-44/65/87, indexed 0..3.
pub fn ml_dsa_nid(index: u8) -> i32 {
    match index {
        0 => sys::NID_MLDSA44,
        1 => sys::NID_MLDSA65,
        _ => sys::NID_MLDSA87,
    }
}

/// Signs an external mu with the ML-DSA key in `pkcs8`, which must be of parameter set `nid`.
/// `None` when the key does not parse, is of another kind, or `mu` is not 64 bytes.
pub fn ml_dsa_sign_mu(pkcs8: &[u8], nid: i32, mu: &[u8]) -> Option<Vec<u8>> {
    let key = parse_pkcs8(pkcs8)?;
    // SAFETY: `key.0` is a live EVP_PKEY.
    if key_type(&key) != sys::EVP_PKEY_PQDSA
        || unsafe { sys::EVP_PKEY_pqdsa_get_type(key.0) } != nid
    {
        return None;
    }
    let ctx = PkeyCtx::for_key(&key)?;
    // SAFETY: `ctx.0` is a live context for a private PQDSA key.
    if unsafe { sys::EVP_PKEY_sign_init(ctx.0) } != 1 {
        clear_errors();
        return None;
    }
    let mut len = 0usize;
    // SAFETY: a NULL output asks only for the signature length, written to `len`.
    if unsafe { sys::EVP_PKEY_sign(ctx.0, std::ptr::null_mut(), &mut len, mu.as_ptr(), mu.len()) }
        != 1
    {
        clear_errors();
        return None;
    }
    let mut signature = vec![0u8; len];
    // SAFETY: `signature` has `len` writable bytes and `len` says so; `mu` is a live slice of
    // `mu.len()` bytes. For PQDSA keys EVP_PKEY_sign is the external-mu path and checks that
    // the input is exactly 64 bytes.
    let rc = unsafe {
        sys::EVP_PKEY_sign(
            ctx.0,
            signature.as_mut_ptr(),
            &mut len,
            mu.as_ptr(),
            mu.len(),
        )
    };
    if rc != 1 {
        clear_errors();
        return None;
    }
    signature.truncate(len);
    Some(signature)
}

/// Verifies an ML-DSA signature over an external mu with a raw public key of parameter set
/// `nid`.
pub fn ml_dsa_verify_mu(nid: i32, public_key: &[u8], mu: &[u8], signature: &[u8]) -> bool {
    // SAFETY: `public_key` is a live slice of `public_key.len()` bytes; AWS-LC copies it and
    // returns a new EVP_PKEY or NULL (wrong length).
    let raw = unsafe {
        sys::EVP_PKEY_pqdsa_new_raw_public_key(nid, public_key.as_ptr(), public_key.len())
    };
    let Some(key) = Pkey::new(raw) else {
        return false;
    };
    let Some(ctx) = PkeyCtx::for_key(&key) else {
        return false;
    };
    // SAFETY: `ctx.0` is a live context for a PQDSA public key.
    if unsafe { sys::EVP_PKEY_verify_init(ctx.0) } != 1 {
        clear_errors();
        return false;
    }
    // SAFETY: both slices are live for the call and their lengths are passed with them; for
    // PQDSA keys EVP_PKEY_verify is the external-mu path.
    let rc = unsafe {
        sys::EVP_PKEY_verify(
            ctx.0,
            signature.as_ptr(),
            signature.len(),
            mu.as_ptr(),
            mu.len(),
        )
    };
    if rc != 1 {
        clear_errors();
    }
    rc == 1
}

/// Ed25519ph (empty context) signature of `message` by the key with this seed and public key.
pub fn ed25519ph_sign(seed: &[u8; 32], public_key: &[u8; 32], message: &[u8]) -> Option<[u8; 64]> {
    // AWS-LC's Ed25519 private key is seed || public key.
    let mut private_key = Zeroizing::new([0u8; 64]);
    let (seed_part, public_part) = private_key.split_at_mut(32);
    seed_part.copy_from_slice(seed);
    public_part.copy_from_slice(public_key);
    let mut signature = [0u8; 64];
    // SAFETY: `signature` has the 64 writable bytes ED25519ph_sign writes; `private_key` has
    // the 64 bytes it reads; `message` is a live slice passed with its length; a NULL context
    // with length 0 is the empty context.
    let rc = unsafe {
        sys::ED25519ph_sign(
            signature.as_mut_ptr(),
            message.as_ptr(),
            message.len(),
            private_key.as_ptr(),
            std::ptr::null(),
            0,
        )
    };
    if rc != 1 {
        clear_errors();
        return None;
    }
    Some(signature)
}

/// Verifies an Ed25519ph (empty context) signature.
pub fn ed25519ph_verify(public_key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = <&[u8; 64]>::try_from(signature) else {
        return false;
    };
    // SAFETY: `signature` is 64 bytes and `public_key` 32, the sizes ED25519ph_verify reads;
    // `message` is a live slice passed with its length; NULL/0 is the empty context.
    let rc = unsafe {
        sys::ED25519ph_verify(
            message.as_ptr(),
            message.len(),
            signature.as_ptr(),
            public_key.as_ptr(),
            std::ptr::null(),
            0,
        )
    };
    if rc != 1 {
        clear_errors();
    }
    rc == 1
}

/// An ML-KEM private key from PKCS#8 (seed or expanded form): its expanded decapsulation key
/// and its encapsulation key. `None` if it does not parse or is not an ML-KEM key.
pub fn ml_kem_keys(pkcs8: &[u8]) -> Option<(SecretBytes, Vec<u8>)> {
    let key = parse_pkcs8(pkcs8)?;
    if key_type(&key) != sys::EVP_PKEY_KEM {
        return None;
    }
    let mut private_len = 0usize;
    let mut public_len = 0usize;
    // SAFETY: NULL outputs ask only for the lengths.
    let sized = unsafe {
        sys::EVP_PKEY_get_raw_private_key(key.0, std::ptr::null_mut(), &mut private_len) == 1
            && sys::EVP_PKEY_get_raw_public_key(key.0, std::ptr::null_mut(), &mut public_len) == 1
    };
    if !sized {
        clear_errors();
        return None;
    }
    let mut private_key = SecretBytes::zeroed(private_len);
    let mut public_key = vec![0u8; public_len];
    // SAFETY: each buffer has exactly the length passed with it.
    let copied = unsafe {
        sys::EVP_PKEY_get_raw_private_key(
            key.0,
            private_key.as_mut_slice().as_mut_ptr(),
            &mut private_len,
        ) == 1
            && sys::EVP_PKEY_get_raw_public_key(key.0, public_key.as_mut_ptr(), &mut public_len)
                == 1
    };
    if !copied || private_len != private_key.len() || public_len != public_key.len() {
        clear_errors();
        return None;
    }
    Some((private_key, public_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032, section 7.3, test 1 (Ed25519ph, message "abc").
    #[test]
    fn ed25519ph_matches_rfc8032_test_vector() {
        let seed: [u8; 32] =
            hex::decode("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42")
                .unwrap()
                .try_into()
                .unwrap();
        let public_key: [u8; 32] =
            hex::decode("ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf")
                .unwrap()
                .try_into()
                .unwrap();
        let expected = "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41\
                        31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406";
        let signature = ed25519ph_sign(&seed, &public_key, b"abc").unwrap();
        assert_eq!(hex::encode(signature), expected);
        assert!(ed25519ph_verify(&public_key, b"abc", &signature));
        assert!(!ed25519ph_verify(&public_key, b"abd", &signature));
        assert!(!ed25519ph_verify(&public_key, b"abc", &signature[..63]));
    }

    #[test]
    fn garbage_is_refused_without_leaving_errors_behind() {
        assert!(parse_pkcs8(b"not der").is_none());
        assert!(ml_kem_keys(b"").is_none());
        assert!(ml_dsa_sign_mu(&[0x30, 0x00], ml_dsa_nid(0), &[0; 64]).is_none());
        assert!(!ml_dsa_verify_mu(
            ml_dsa_nid(1),
            &[0; 10],
            &[0; 64],
            &[0; 3309]
        ));
        // SAFETY: reads this thread's error queue.
        assert_eq!(unsafe { sys::ERR_peek_error() }, 0);
    }
}
