//! One CloudTrail digest file: its fields, the string CloudTrail signs, and the signature check
//! (SHA256withRSA, PKCS#1 v1.5), as the AWS CLI's `validate-logs` and CloudTrail's
//! documentation define them. Where the signature and the public key come from is left to the
//! caller (`chain`, `keys`).

use chrono::{DateTime, Utc};
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// The only algorithm CloudTrail signs digests with, and the only one checked.
pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";

/// A digest file's fields (CloudTrail writes them in camelCase; unknown fields are ignored).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestFields {
    pub aws_account_id: String,
    pub digest_start_time: String,
    pub digest_end_time: String,
    pub digest_s3_bucket: String,
    pub digest_s3_object: String,
    pub digest_public_key_fingerprint: String,
    pub digest_signature_algorithm: String,
    #[serde(default)]
    pub previous_digest_s3_bucket: Option<String>,
    #[serde(default)]
    pub previous_digest_s3_object: Option<String>,
    #[serde(default)]
    pub previous_digest_hash_value: Option<String>,
    #[serde(default)]
    pub previous_digest_hash_algorithm: Option<String>,
    /// Required by the format (null in a starting digest): the AWS CLI refuses a digest without it.
    #[serde(deserialize_with = "present")]
    pub previous_digest_signature: Option<String>,
    #[serde(default)]
    pub log_files: Option<Vec<LogEntry>>,
}

/// A field that must be there, and may be null (serde takes a missing `Option` for None).
fn present<'de, D: serde::Deserializer<'de>>(field: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(field)
}

/// One log file a digest names.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    pub s3_bucket: String,
    pub s3_object: String,
    /// Hex SHA-256 of the log file's uncompressed content.
    pub hash_value: String,
    #[serde(default)]
    pub hash_algorithm: Option<String>,
}

/// A digest as read: its fields, when it was, and the SHA-256 of its uncompressed bytes (what
/// the signature covers, and what the next digest records as `previousDigestHashValue`).
#[derive(Debug, Clone)]
pub struct Digest {
    pub fields: DigestFields,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub sha256_hex: String,
}

impl Digest {
    /// Parses a digest's uncompressed bytes; Err says what is wrong with them.
    pub fn parse(uncompressed: &[u8]) -> Result<Digest, String> {
        let fields: DigestFields =
            serde_json::from_slice(uncompressed).map_err(|e| format!("not a digest: {e}"))?;
        let time = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| format!("invalid time {text:?}: {e}"))
        };
        Ok(Digest {
            start: time(&fields.digest_start_time)?,
            end: time(&fields.digest_end_time)?,
            sha256_hex: hex(&Sha256::digest(uncompressed)),
            fields,
        })
    }

    pub fn log_files(&self) -> &[LogEntry] {
        self.fields.log_files.as_deref().unwrap_or_default()
    }

    /// What CloudTrail signs: `digestEndTime \n bucket/key \n hex(sha256(digest)) \n
    /// previousDigestSignature`, the last `null` in a starting digest (as the AWS CLI and
    /// CloudTrail's Java code spell it). The bucket and key are the digest's own record of
    /// where it was delivered, so a copy on disk is checked as the object it was.
    pub fn string_to_sign(&self) -> String {
        let f = &self.fields;
        format!(
            "{}\n{}/{}\n{}\n{}",
            f.digest_end_time,
            f.digest_s3_bucket,
            f.digest_s3_object,
            self.sha256_hex,
            f.previous_digest_signature.as_deref().unwrap_or("null")
        )
    }

    /// Checks `signature_hex` over [`Digest::string_to_sign`] with `key`.
    pub fn check_signature(&self, key: &RsaPublicKey, signature_hex: &str) -> Result<(), String> {
        if self.fields.digest_signature_algorithm != SIGNATURE_ALGORITHM {
            return Err(format!(
                "unsupported signature algorithm {:?}",
                self.fields.digest_signature_algorithm
            ));
        }
        let signature =
            unhex(signature_hex).ok_or_else(|| "the signature is not hexadecimal".to_owned())?;
        let hashed = Sha256::digest(self.string_to_sign().as_bytes());
        key.verify(Pkcs1v15Sign::new::<Sha256>(), &hashed, &signature)
            .map_err(|_| "signature does not verify".to_owned())
    }
}

/// Lowercase hexadecimal, as CloudTrail writes hashes and signatures.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    text
}

/// Hexadecimal (either case) to bytes; None when it is not.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let bytes = text.trim().as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// The part of a path or S3 key from `AWSLogs/` on, `/`-separated: how a file is recognised
/// wherever its bucket was copied to (a digest names log files by bucket and key; on disk
/// the folders above `AWSLogs` are the copier's). The whole text when there is no `AWSLogs`.
pub fn layout_key(path: &str) -> String {
    let parts: Vec<&str> = path.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
    match parts.iter().rposition(|part| *part == "AWSLogs") {
        Some(start) => parts[start..].join("/"),
        None => parts.join("/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real digest (Java's `\/` escapes and all) delivered by CloudTrail, published in
    /// protectai/llm-guard's tests (`tests/input_scanners/test_secrets.py`, MIT), log files cut
    /// to two.
    const REAL: &str = r#"{"awsAccountId":"327878933619","digestStartTime":"2023-10-15T22:04:04Z","digestEndTime":"2023-10-15T23:04:04Z","digestS3Bucket":"llm-guard-trail","digestS3Object":"AWSLogs\/327878933619\/CloudTrail-Digest\/ap-northeast-1\/2023\/10\/15\/327878933619_CloudTrail-Digest_ap-northeast-1_llm-guard-trail_us-west-2_20231015T230404Z.json.gz","digestPublicKeyFingerprint":"be2f0b997552f44942837300ba1aba9d","digestSignatureAlgorithm":"SHA256withRSA","newestEventTime":"2023-10-15T22:58:17Z","oldestEventTime":"2023-10-15T22:04:51Z","previousDigestS3Bucket":"llm-guard-trail","previousDigestS3Object":"AWSLogs\/327878933619\/CloudTrail-Digest\/ap-northeast-1\/2023\/10\/15\/327878933619_CloudTrail-Digest_ap-northeast-1_llm-guard-trail_us-west-2_20231015T220404Z.json.gz","previousDigestHashValue":"8f953371d3e85eddb89b05ed6b9e680791055315c73e1025ab5dba7bb2aee189","previousDigestHashAlgorithm":"SHA-256","previousDigestSignature":"11c11e253f4929eaded49c9d826b257a5ab894ce002988bd07ed2bc6407f1b0ef74f48634c364c6884c6470c9416d73f0742f8758746fc8db4cf23b75c713304779bb6d181ccae4b6a78ae5106f1602ce49af3f9dea4e9ba92761fcaf3e02a5f3d64558d7f4b2eff85f0cc523a770a3b1092e0e37aa665f3c37b75ecc93c94a4640825e0ebe44b2b4fa48b7477040f08a83db2224b403c46476ca25a1b53b5b5db86be04e623fef2d9a2a8eba482239439d6d49cb5eb759a90184f72506a8788fb085f56830c46f51d6e216152bf9156b33cbbee3aeeb5b00540f333708f870d316291f37dd530491a7785ddafdb83543c327fa504e200efefbadd644fed9b9a","logFiles":[{"s3Bucket":"llm-guard-trail","s3Object":"AWSLogs\/327878933619\/CloudTrail\/ap-northeast-1\/2023\/10\/15\/327878933619_CloudTrail_ap-northeast-1_20231015T2205Z_iRIoDMA9l9Q4kmFy.json.gz","hashValue":"4309c6161e37538de72ec6f679e86b7e45aebed71fa7e76af70c3019fef44e19","hashAlgorithm":"SHA-256","newestEventTime":"2023-10-15T22:04:51Z","oldestEventTime":"2023-10-15T22:04:51Z"},{"s3Bucket":"llm-guard-trail","s3Object":"AWSLogs\/327878933619\/CloudTrail\/ap-northeast-1\/2023\/10\/15\/327878933619_CloudTrail_ap-northeast-1_20231015T2300Z_aDYIgZODwysx0Irn.json.gz","hashValue":"de90c3b55016bc5fad9c12378ccc6fc38180a15bd95879305415572a4472b1a9","hashAlgorithm":"SHA-256","newestEventTime":"2023-10-15T22:58:17Z","oldestEventTime":"2023-10-15T22:58:17Z"}]}"#;

    #[test]
    fn a_real_digest_parses_and_its_string_to_sign_has_the_documented_shape() {
        let digest = Digest::parse(REAL.as_bytes()).unwrap();
        assert_eq!(digest.fields.aws_account_id, "327878933619");
        assert_eq!(digest.end.to_rfc3339(), "2023-10-15T23:04:04+00:00");
        assert_eq!(digest.log_files().len(), 2);
        assert_eq!(
            digest
                .fields
                .previous_digest_signature
                .as_ref()
                .unwrap()
                .len(),
            512
        );
        let signed = digest.string_to_sign();
        let lines: Vec<&str> = signed.split('\n').collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], "2023-10-15T23:04:04Z");
        // The `\/` escapes are JSON's: the bucket/key signed is the plain key.
        assert_eq!(
            lines[1],
            "llm-guard-trail/AWSLogs/327878933619/CloudTrail-Digest/ap-northeast-1/2023/10/15/\
             327878933619_CloudTrail-Digest_ap-northeast-1_llm-guard-trail_us-west-2_20231015T230404Z.json.gz"
        );
        assert_eq!(lines[2], hex(&Sha256::digest(REAL.as_bytes())));
        assert!(lines[3].starts_with("11c11e25"));
    }

    #[test]
    fn a_starting_digest_signs_null() {
        let text = REAL.replace(
            r#""previousDigestSignature":"11c11e"#,
            r#""previousDigestSignature":null,"x":"11c11e"#,
        );
        let digest = Digest::parse(text.as_bytes()).unwrap();
        assert!(digest.string_to_sign().ends_with("\nnull"));
    }

    #[test]
    fn a_digest_without_its_required_fields_is_refused() {
        let text = REAL.replace("\"previousDigestSignature\"", "\"other\"");
        assert!(Digest::parse(text.as_bytes()).is_err());
        assert!(Digest::parse(b"{}").is_err());
        assert!(Digest::parse(b"\x1f\x8b").is_err());
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(unhex("00AB10"), Some(vec![0, 0xab, 0x10]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }

    #[test]
    fn layout_keys_start_at_awslogs() {
        assert_eq!(
            layout_key("/data/copy/AWSLogs/o-x/1/CloudTrail/r/f.json.gz"),
            "AWSLogs/o-x/1/CloudTrail/r/f.json.gz"
        );
        assert_eq!(
            layout_key("prefix/AWSLogs/1/CloudTrail/r/f.json.gz"),
            "AWSLogs/1/CloudTrail/r/f.json.gz"
        );
        assert_eq!(layout_key("loose/f.json.gz"), "loose/f.json.gz");
    }
}
