//! The default duplicate rule's normalisation and the `Record_Key__c` derived from it.

use sha2::{Digest, Sha256};

/// Hex digits of SHA-256 kept in a record key: 128 bits, far beyond any bureau's record count.
const KEY_HEX_LEN: usize = 32;

/// Normalises an account number, national id or registry number: every non-alphanumeric character removed,
/// upper-cased, leading zeros stripped (`000-12.345 a` → `12345A`). A value of only zeros normalises to `0`, and
/// one with no alphanumerics to the empty string.
pub fn normalise_identifier(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect();
    let trimmed = cleaned.trim_start_matches('0');
    if trimmed.is_empty() && !cleaned.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The `Record_Key__c` of a tradeline: `rk_` and 32 hex digits of SHA-256 over the furnisher's account id, the
/// product type (as mapped, e.g. `Installment`) and the normalised account number. Deterministic, so the same
/// tradeline always gets the same key, whatever formatting the bank used.
pub fn record_key(furnisher: &str, product_type: &str, account_number: &str) -> String {
    let mut hash = Sha256::new();
    for part in [
        furnisher.trim(),
        product_type.trim(),
        &normalise_identifier(account_number),
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hex::encode(hash.finalize());
    format!("rk_{}", &digest[..KEY_HEX_LEN])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_normalise_as_the_default_rule_says() {
        assert_eq!(normalise_identifier("000-12.345 a"), "12345A");
        assert_eq!(normalise_identifier("cw-1980013101"), "CW1980013101");
        assert_eq!(normalise_identifier("0000"), "0");
        assert_eq!(normalise_identifier(" - "), "");
    }

    #[test]
    fn formatting_does_not_change_the_key_but_each_part_does() {
        let key = record_key("001A", "Installment", "000-12.345 a");
        assert_eq!(key, record_key("001A", "Installment", "12345A"));
        assert_eq!(key.len(), 3 + KEY_HEX_LEN);
        assert!(key.starts_with("rk_"));
        assert_ne!(key, record_key("001B", "Installment", "12345A"));
        assert_ne!(key, record_key("001A", "Revolving", "12345A"));
        assert_ne!(key, record_key("001A", "Installment", "12346A"));
    }

    #[test]
    fn parts_cannot_run_into_each_other() {
        assert_ne!(record_key("001A", "I", "1"), record_key("001", "AI", "1"));
    }
}
