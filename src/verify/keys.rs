//! CloudTrail's public keys, as `aws cloudtrail list-public-keys` prints them: `Value` is the
//! base64 of a DER PKCS#1 `RSAPublicKey`, `Fingerprint` is CloudTrail's name for it. Keys are
//! picked by the fingerprint a digest names; the fingerprint is never recomputed (CloudTrail
//! does not document how it is made, and the AWS CLI looks it up the same way).

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use rsa::RsaPublicKey;
use rsa::pkcs1::DecodeRsaPublicKey;
use serde::Deserialize;

use crate::error::VerifyError;

#[derive(Deserialize)]
struct Listing {
    #[serde(rename = "PublicKeyList")]
    public_key_list: Vec<ListedKey>,
}

#[derive(Deserialize)]
struct ListedKey {
    #[serde(rename = "Value")]
    value: String,
    #[serde(rename = "Fingerprint")]
    fingerprint: String,
}

/// Public keys by fingerprint.
#[derive(Debug, Default, Clone)]
pub struct PublicKeys {
    keys: HashMap<String, RsaPublicKey>,
}

impl PublicKeys {
    /// Reads one `list-public-keys` output and adds its keys.
    pub fn add_file(&mut self, path: &Path) -> Result<(), VerifyError> {
        let failed = |reason: String| VerifyError::PublicKeys {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
        self.add_listing(&text).map_err(failed)
    }

    /// Adds the keys of a `list-public-keys` JSON output.
    pub fn add_listing(&mut self, json: &[u8]) -> Result<(), String> {
        let listing: Listing = serde_json::from_slice(json)
            .map_err(|e| format!("not the output of list-public-keys: {e}"))?;
        for listed in listing.public_key_list {
            let key = decode_key(&listed.value)
                .map_err(|reason| format!("key {}: {reason}", listed.fingerprint))?;
            self.keys
                .insert(listed.fingerprint.to_ascii_lowercase(), key);
        }
        Ok(())
    }

    pub fn get(&self, fingerprint: &str) -> Option<&RsaPublicKey> {
        self.keys.get(&fingerprint.to_ascii_lowercase())
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// base64 of DER PKCS#1 `RSAPublicKey` (what the AWS CLI passes to `PublicKey.load_pkcs1`).
pub fn decode_key(value: &str) -> Result<RsaPublicKey, String> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    RsaPublicKey::from_pkcs1_der(&der).map_err(|e| format!("not a DER PKCS#1 RSA key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of the AWS CLI's `list-public-keys` example (its documentation), cut short there,
    /// so only its shape is checked: base64 of a DER SEQUENCE.
    #[test]
    fn a_listing_without_keys_or_with_bad_ones_is_refused() {
        let mut keys = PublicKeys::default();
        assert!(keys.add_listing(br#"{"PublicKeyList": []}"#).is_ok());
        assert!(keys.is_empty());
        let bad = br#"{"PublicKeyList": [{"Value": "bm90IGEga2V5", "Fingerprint": "ab",
            "ValidityStartTime": 1453076702.0, "ValidityEndTime": "2016-02-17T00:25:02Z"}]}"#;
        assert!(
            keys.add_listing(bad)
                .unwrap_err()
                .contains("not a DER PKCS#1")
        );
        assert!(keys.add_listing(b"[]").is_err());
    }
}
