//! Keyed hashes and random identifiers: the two places we need
//! cryptography outside authentication.

/// The key of every keyed hash: held so that no `Debug` of the settings
/// that carry it (or of anything that holds those) can print it, and
/// prepared once for HMAC (the key's padded blocks hashed when the settings
/// are read, not on each of the hashes a hook makes).
#[derive(Clone)]
pub struct HashKey {
    bytes: Vec<u8>,
    hmac: aws_lc_rs::hmac::Key,
}

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKey(<redacted>)")
    }
}

impl PartialEq for HashKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for HashKey {}

impl Default for HashKey {
    fn default() -> Self {
        HashKey::from(Vec::new())
    }
}

impl std::ops::Deref for HashKey {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl From<Vec<u8>> for HashKey {
    fn from(bytes: Vec<u8>) -> Self {
        let hmac = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &bytes);
        HashKey { bytes, hmac }
    }
}

/// Keyed hash (HMAC-SHA256, 128 bits in hex): stable across instances,
/// useless to anyone without the key. Message group ids and rate-limit keys
/// are made with it.
pub fn keyed_hash(key: &HashKey, value: &str) -> String {
    let tag = aws_lc_rs::hmac::sign(&key.hmac, value.as_bytes());
    hex(&tag.as_ref()[..16])
}

/// [`keyed_hash`] with its key bound: how the domain is handed the hash
/// it may not compute itself (a user id's key, for instance).
pub fn keyed(key: &HashKey) -> impl Fn(&str) -> String + '_ {
    move |value| keyed_hash(key, value)
}

/// A token no other call makes, in this process or any other: eight bytes
/// drawn once per process from the system CSPRNG, then a counter; 32 hex
/// characters. Claim owners need tokens that differ, not tokens nobody can
/// guess (an owner token is never a credential: it only tells the holders
/// of a lease apart), and drawing fresh bytes from the system source on
/// every hook cost about as much as the rest of the claim.
pub fn unique_token() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<[u8; 8]> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let mut buf = [0u8; 8];
        if aws_lc_rs::rand::fill(&mut buf).is_err() {
            tracing::error!("the system random source failed; using a non-cryptographic one");
            buf = fastrand::u64(..).to_be_bytes();
        }
        buf
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(prefix);
    bytes[8..].copy_from_slice(&n.to_be_bytes());
    hex(&bytes)
}

/// Lower-case hex of `n` random bytes from the system CSPRNG.
///
/// These ids (local mode's request ids, queue receipts and timer handles)
/// must differ even if the system source fails. It practically never does;
/// if it does, the failure is logged and the bytes come from `fastrand`,
/// whose per-thread state is seeded from the process's own randomness: not
/// secret, but unique, which is all such an id needs.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    if aws_lc_rs::rand::fill(&mut buf).is_err() {
        tracing::error!("the system random source failed; using a non-cryptographic one");
        buf.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
    hex(&buf)
}

/// Lower-case hex, two characters a byte (a table lookup each: this runs
/// for every owner token and keyed hash, and `write!` per byte cost more
/// than the hash it printed).
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff, 0x5c]), "000fa0ff5c");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn hashes_and_ids() {
        let (k, j) = (HashKey::from(b"k".to_vec()), HashKey::from(b"j".to_vec()));
        assert_eq!(keyed_hash(&k, "a"), keyed_hash(&k.clone(), "a"));
        assert_ne!(keyed_hash(&k, "a"), keyed_hash(&j, "a"));
        assert_eq!(keyed_hash(&k, "a").len(), 32);
        // HMAC-SHA256 (RFC 4231, test case 2), first 128 bits.
        let jefe = HashKey::from(b"Jefe".to_vec());
        assert_eq!(
            keyed_hash(&jefe, "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c7"
        );
        let (a, b) = (random_hex(16), random_hex(16));
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn unique_tokens_share_the_process_prefix_and_never_repeat() {
        let tokens: Vec<String> = (0..1000).map(|_| unique_token()).collect();
        let distinct: std::collections::HashSet<&String> = tokens.iter().collect();
        assert_eq!(distinct.len(), tokens.len());
        for t in &tokens {
            assert_eq!(t.len(), 32);
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert_eq!(t[..16], tokens[0][..16], "one prefix per process");
        }
    }
}
