//! CloudTrail's public keys: from files, as `aws cloudtrail list-public-keys` prints them
//! (`Value` is the base64 of a DER PKCS#1 `RSAPublicKey`, `Fingerprint` is CloudTrail's name for
//! it), or from CloudTrail's `ListPublicKeys` API. Keys are picked by the fingerprint a digest
//! names; the fingerprint is never recomputed (CloudTrail does not document how it is made, and
//! the AWS CLI looks it up the same way).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use aws_sdk_cloudtrail::error::DisplayErrorContext;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rsa::RsaPublicKey;
use rsa::pkcs1::DecodeRsaPublicKey;
use serde::Deserialize;

use crate::aws::Aws;
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
    decode_der(&der)
}

fn decode_der(der: &[u8]) -> Result<RsaPublicKey, String> {
    RsaPublicKey::from_pkcs1_der(der).map_err(|e| format!("not a DER PKCS#1 RSA key: {e}"))
}

/// The keys CloudTrail lists in each of `regions` as valid from `since` to now (every page).
/// The API answers with the key's bytes (the SDK has already decoded the base64).
pub async fn fetch(
    aws: &Aws,
    regions: &BTreeSet<String>,
    since: DateTime<Utc>,
) -> Result<PublicKeys, VerifyError> {
    let mut keys = PublicKeys::default();
    for region in regions {
        let failed = |reason: String| VerifyError::ListPublicKeys {
            region: region.clone(),
            reason,
        };
        let client = aws.cloudtrail_client(region);
        let mut next_token = None;
        loop {
            let page = client
                .list_public_keys()
                .start_time(aws_sdk_cloudtrail::primitives::DateTime::from_secs(
                    since.timestamp(),
                ))
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| failed(DisplayErrorContext(e).to_string()))?;
            for listed in page.public_key_list() {
                let (Some(value), Some(fingerprint)) = (listed.value(), listed.fingerprint())
                else {
                    return Err(failed("a key without a value or fingerprint".to_owned()));
                };
                let key = decode_der(value.as_ref())
                    .map_err(|reason| failed(format!("key {fingerprint}: {reason}")))?;
                keys.keys.insert(fingerprint.to_ascii_lowercase(), key);
            }
            next_token = page.next_token().map(str::to_owned);
            if next_token.is_none() {
                break;
            }
        }
    }
    Ok(keys)
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
