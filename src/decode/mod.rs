//! Decode: bytes of one log file into records.
//!
//! A file is recognised by its content, not its name: gzip (multi-member too) or plain; a
//! `{"Records":[...]}` document (several concatenated ones too), a bare array of records, or
//! NDJSON with one record per line. Records are handed to the caller one by one as the parser
//! reaches them, so when a file is damaged the records before the damage are kept.

pub mod identity;
pub mod inflate;
pub mod lenient;
pub mod record;
pub mod sts;
pub mod time;

use std::fmt;
use std::io::{BufRead, BufReader, Read};

use flate2::bufread::MultiGzDecoder;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::FileError;
use inflate::Inflater;
use lenient::CowStr;
use record::RecordFields;

/// What a file turned out to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// CloudTrail records (possibly none).
    Records,
    /// A CloudTrail-Digest file: integrity hashes, no events.
    Digest,
    /// A CloudTrail-Insight file: anomaly summaries, not API events.
    Insight,
    /// Anything else, with the reason it was not taken for a CloudTrail log.
    NotCloudTrail(String),
}

/// The decompressed bytes of a file, and the damage met while reading it, if any.
pub struct FileBytes {
    pub compressed: bool,
    pub damage: Option<FileError>,
}

/// A reusable buffer for one file's decompressed bytes. Its memory stays initialised from one
/// file to the next: `read_to_end` would zero the spare room again for every file.
#[derive(Default)]
pub struct FileBuffer {
    bytes: Vec<u8>,
    len: usize,
    /// A gzip file's compressed bytes, read whole to inflate in one call.
    compressed: Vec<u8>,
    inflater: Option<Inflater>,
}

impl FileBuffer {
    /// The bytes of the last file read.
    pub fn data(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The memory the buffer holds, for the worker's budget.
    pub fn footprint(&self) -> usize {
        self.bytes.capacity() + self.compressed.capacity()
    }

    /// Gives the memory back when the buffer holds more than `keep` bytes: one large file must
    /// not keep its memory (counted against the worker's budget) for the rest of the run.
    pub fn release_over(&mut self, keep: usize) {
        if self.footprint() > keep {
            self.bytes = Vec::new();
            self.compressed = Vec::new();
            self.len = 0;
        }
    }
}

/// Gzip files up to this size are read whole and inflated in one call; larger ones stream.
const WHOLE_GZIP_BYTES: u64 = 64 << 20;

/// Reads a whole file into `buf`, gunzipping when it starts with the gzip magic. At most `cap`
/// bytes are kept; a file that decompresses to more is cut there and flagged.
pub fn read_decompressed(input: impl Read, cap: u64, buf: &mut FileBuffer) -> FileBytes {
    buf.len = 0;
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    let compressed = match reader.fill_buf() {
        Ok(head) => head.starts_with(&[0x1f, 0x8b]),
        Err(error) => {
            return FileBytes {
                compressed: false,
                damage: Some(FileError::Read(error.to_string())),
            };
        }
    };
    // One byte past the cap tells a file that is too large from one that fits exactly.
    let limit = usize::try_from(cap).unwrap_or(usize::MAX).saturating_add(1);
    let result = if compressed {
        gunzip(reader, limit, buf)
    } else {
        fill(reader, limit, &mut buf.bytes, &mut buf.len)
    };
    let damage = match result {
        Err(error) if compressed => Some(FileError::Gzip {
            decompressed: buf.len as u64,
            reason: error.to_string(),
        }),
        Err(error) => Some(FileError::Read(error.to_string())),
        Ok(()) if buf.len as u64 > cap => {
            buf.len = cap as usize;
            Some(FileError::TooLarge { cap })
        }
        Ok(()) => None,
    };
    FileBytes { compressed, damage }
}

/// Inflates a gzip file: whole with libdeflate when it is small enough and sound; otherwise (a
/// large file, damage, content over the cap) streaming, which keeps what precedes the damage
/// and reports it.
fn gunzip(mut reader: impl BufRead, limit: usize, buf: &mut FileBuffer) -> std::io::Result<()> {
    buf.compressed.clear();
    (&mut reader)
        .take(WHOLE_GZIP_BYTES + 1)
        .read_to_end(&mut buf.compressed)?;
    let whole = buf.compressed.len() as u64 <= WHOLE_GZIP_BYTES;
    if whole && buf.inflater.is_none() {
        buf.inflater = Inflater::new();
    }
    let inflated = match &mut buf.inflater {
        Some(inflater) if whole => inflater.gzip(&buf.compressed, &mut buf.bytes, limit),
        _ => None,
    };
    if let Some(written) = inflated {
        buf.len = written;
        return Ok(());
    }
    let stream = MultiGzDecoder::new(BufReader::new((&buf.compressed[..]).chain(reader)));
    fill(stream, limit, &mut buf.bytes, &mut buf.len)
}

/// Reads until the end or `limit` bytes, growing the buffer (by doubling) as needed.
fn fill(
    mut reader: impl Read,
    limit: usize,
    bytes: &mut Vec<u8>,
    len: &mut usize,
) -> std::io::Result<()> {
    *len = 0;
    while *len < limit {
        if *len == bytes.len() {
            let grown = (bytes.len() * 2).clamp(64 * 1024, limit);
            bytes.resize(grown, 0);
        }
        let end = bytes.len().min(limit);
        match reader.read(&mut bytes[*len..end]) {
            Ok(0) => return Ok(()),
            Ok(read) => *len += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// The result of walking a file's documents.
#[derive(Debug)]
pub struct Parsed {
    pub content: Content,
    /// Records handed to the callback.
    pub records: usize,
    /// Set when the JSON broke off; records before the break were handed over.
    pub error: Option<FileError>,
}

/// Calls `on_record` for each record in `bytes`; it returns false to stop early.
pub fn for_each_record<'a, F>(bytes: &'a [u8], on_record: F) -> Parsed
where
    F: FnMut(&RecordFields<'a>) -> bool,
{
    let mut emit = Emit {
        on_record,
        fields: RecordFields::default(),
        records: 0,
        content: None,
        stopped: false,
        in_container: false,
    };
    // One pass of the (vectorised) validator over the whole file; a file with a bad byte is
    // parsed from bytes instead, so that the records before the bad byte are kept.
    let text = std::str::from_utf8(bytes).ok();
    let mut pos = skip_space(bytes, 0);
    if bytes[pos..].starts_with("\u{feff}".as_bytes()) {
        pos += 3;
    }
    let mut error = None;
    while !emit.stopped {
        pos = skip_space(bytes, pos);
        if pos >= bytes.len() {
            break;
        }
        // serde_json checks UTF-8 string by string on bytes; on text checked once it does not.
        let parsed = match text.and_then(|text| text.get(pos..)) {
            Some(rest) => parse_document(
                serde_json::Deserializer::from_str(rest),
                rest.as_bytes(),
                &mut emit,
            ),
            None => parse_document(
                serde_json::Deserializer::from_slice(&bytes[pos..]),
                &bytes[pos..],
                &mut emit,
            ),
        };
        match parsed {
            Ok(consumed) => pos += consumed,
            Err(message) => {
                error = Some(FileError::Json(message));
                break;
            }
        }
    }
    let content = match (emit.content, &error) {
        (Some(content), _) => content,
        (None, Some(FileError::Json(message))) => {
            Content::NotCloudTrail(format!("not JSON: {message}"))
        }
        (None, _) => Content::NotCloudTrail("empty file".into()),
    };
    // A file that never looked like CloudTrail is skipped, not failed.
    let error = if matches!(content, Content::NotCloudTrail(_)) {
        None
    } else {
        error
    };
    Parsed {
        content,
        records: emit.records,
        error,
    }
}

/// Parses one top-level JSON value at the start of `bytes`; returns the bytes it used.
fn parse_document<'a, R, F>(
    mut de: serde_json::Deserializer<R>,
    bytes: &'a [u8],
    emit: &mut Emit<'a, F>,
) -> Result<usize, String>
where
    R: serde_json::de::Read<'a>,
    F: FnMut(&RecordFields<'a>) -> bool,
{
    let result = match bytes[0] {
        b'[' => RecordsSeed(emit).deserialize(&mut de),
        b'{' if first_key_is_records(bytes) => ContainerSeed(emit).deserialize(&mut de),
        b'{' => RecordSeed(emit).deserialize(&mut de),
        other if emit.content.is_none() => {
            let reason = format!(
                "starts with {:?}, not a JSON object or array",
                other as char
            );
            emit.content = Some(Content::NotCloudTrail(reason));
            emit.stopped = true;
            return Ok(bytes.len());
        }
        _ => de::Deserialize::deserialize(&mut de).map(|_: IgnoredAny| ()),
    };
    result.map_err(|error| error.to_string())?;
    Ok(de.into_iter::<IgnoredAny>().byte_offset())
}

fn skip_space(bytes: &[u8], mut pos: usize) -> usize {
    while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
        pos += 1;
    }
    pos
}

fn first_key_is_records(bytes: &[u8]) -> bool {
    let pos = skip_space(bytes, 1);
    bytes[pos..].starts_with(b"\"Records\"")
}

/// State shared by the seeds below: the callback and what has been seen so far.
struct Emit<'a, F> {
    on_record: F,
    fields: RecordFields<'a>,
    records: usize,
    content: Option<Content>,
    stopped: bool,
    in_container: bool,
}

impl<'a, F: FnMut(&RecordFields<'a>) -> bool> Emit<'a, F> {
    /// Classifies the file on its first record, then hands records over.
    fn record(&mut self) {
        if self.stopped {
            return;
        }
        if self.content.is_none() {
            let content = classify(&self.fields, self.in_container);
            self.stopped = content != Content::Records;
            self.content = Some(content);
            if self.stopped {
                return;
            }
        }
        self.records += 1;
        self.stopped = !(self.on_record)(&self.fields);
    }
}

/// Inside `{"Records":[...]}` the container already says CloudTrail: only Insight files are told
/// apart there. A bare array or NDJSON must look like CloudTrail on its first record.
fn classify(first: &RecordFields, in_container: bool) -> Content {
    let has = |key: &str| first.get(key).is_some();
    if in_container {
        return if is_insight(first) {
            Content::Insight
        } else {
            Content::Records
        };
    }
    if has("digestStartTime") || has("logFiles") || has("digestPublicKeyFingerprint") {
        return Content::Digest;
    }
    if is_insight(first) {
        return Content::Insight;
    }
    const RECORD_KEYS: [&str; 5] = [
        "eventVersion",
        "eventID",
        "eventTime",
        "eventName",
        "eventSource",
    ];
    if RECORD_KEYS.iter().any(|key| has(key)) {
        Content::Records
    } else {
        Content::NotCloudTrail(
            "JSON without CloudTrail fields (eventVersion, eventID, eventTime...)".into(),
        )
    }
}

fn is_insight(record: &RecordFields) -> bool {
    record.get("eventType").map(RawValue::get) == Some("\"AwsCloudTrailInsight\"")
}

/// `{"Records":[...], ...}`: other keys are skipped.
struct ContainerSeed<'e, 'a, F>(&'e mut Emit<'a, F>);

impl<'de, F: FnMut(&RecordFields<'de>) -> bool> DeserializeSeed<'de> for ContainerSeed<'_, 'de, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, F: FnMut(&RecordFields<'de>) -> bool> Visitor<'de> for ContainerSeed<'_, 'de, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"a {"Records":[...]} object"#)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(CowStr(key)) = map.next_key::<CowStr<'de>>()? {
            if key == "Records" {
                self.0.in_container = true;
                let result = map.next_value_seed(RecordsSeed(&mut *self.0));
                self.0.in_container = false;
                result?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if self.0.content.is_none() {
            self.0.content = Some(Content::Records);
        }
        Ok(())
    }
}

/// `[record, ...]` (null reads as no records).
struct RecordsSeed<'e, 'a, F>(&'e mut Emit<'a, F>);

impl<'de, F: FnMut(&RecordFields<'de>) -> bool> DeserializeSeed<'de> for RecordsSeed<'_, 'de, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, F: FnMut(&RecordFields<'de>) -> bool> Visitor<'de> for RecordsSeed<'_, 'de, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(RecordSeed(&mut *self.0))?.is_some() {}
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// One record object: its top-level keys with their raw values.
struct RecordSeed<'e, 'a, F>(&'e mut Emit<'a, F>);

impl<'de, F: FnMut(&RecordFields<'de>) -> bool> DeserializeSeed<'de> for RecordSeed<'_, 'de, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, F: FnMut(&RecordFields<'de>) -> bool> Visitor<'de> for RecordSeed<'_, 'de, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let emit = self.0;
        emit.fields.fields.clear();
        if emit.stopped {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        while let Some(CowStr(key)) = map.next_key::<CowStr<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            emit.fields.fields.push((key, value));
        }
        emit.record();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn event_ids(bytes: &[u8]) -> (Vec<String>, Parsed) {
        let mut ids = Vec::new();
        let parsed = for_each_record(bytes, |record| {
            ids.push(
                record
                    .get("eventID")
                    .map_or("-".into(), |v| v.get().to_owned()),
            );
            true
        });
        (ids, parsed)
    }

    const R1: &str = r#"{"eventVersion":"1.08","eventID":"a","eventTime":"2023-07-10T12:00:00Z"}"#;
    const R2: &str = r#"{"eventVersion":"1.08","eventID":"b","eventTime":"2023-07-10T12:00:01Z"}"#;

    #[test]
    fn layouts() {
        let container = format!(r#"{{"Records":[{R1},{R2}]}}"#);
        let cases = [
            container.clone(),
            format!("{container}\n{container}"),
            format!("[{R1},{R2}]"),
            format!("{R1}\n{R2}\n"),
            format!("\u{feff}  {R1}\r\n{R2}"),
            format!(r#"{{ "Records" : [{R1},{R2}], "extra": {{"a":1}} }}"#),
        ];
        for case in cases {
            let (ids, parsed) = event_ids(case.as_bytes());
            assert_eq!(parsed.content, Content::Records, "{case}");
            assert!(parsed.error.is_none(), "{case}");
            assert!(
                ids.len() % 2 == 0 && ids[..2] == ["\"a\"", "\"b\""],
                "{case}: {ids:?}"
            );
        }
    }

    #[test]
    fn a_container_is_cloudtrail_whatever_its_first_record() {
        let text = format!(r#"{{"Records":[{{"hello":"world"}},{R1}]}}"#);
        let (ids, parsed) = event_ids(text.as_bytes());
        assert_eq!(parsed.content, Content::Records);
        assert_eq!(
            ids.len(),
            2,
            "both records reach the caller, which rejects the first"
        );
    }

    #[test]
    fn damaged_json_keeps_what_came_before() {
        let text = format!(r#"{{"Records":[{R1},{R2},{{"eventID":"c","#);
        let (ids, parsed) = event_ids(text.as_bytes());
        assert_eq!(ids.len(), 2);
        assert!(matches!(parsed.error, Some(FileError::Json(_))));
        assert_eq!(parsed.content, Content::Records);
    }

    #[test]
    fn other_content_is_recognised() {
        let cases = [
            (
                r#"{"awsAccountId":"1","digestStartTime":"x","logFiles":[]}"#,
                "digest",
            ),
            (
                r#"{"Records":[{"eventType":"AwsCloudTrailInsight","eventID":"i"}]}"#,
                "insight",
            ),
            (r#"{"hello":"world"}"#, "not"),
            (r#"[{"hello":"world"}]"#, "not"),
            ("plain text", "not"),
            ("", "not"),
            ("{not json", "not"),
        ];
        for (text, expected) in cases {
            let (ids, parsed) = event_ids(text.as_bytes());
            let kind = match parsed.content {
                Content::Digest => "digest",
                Content::Insight => "insight",
                Content::NotCloudTrail(_) => "not",
                Content::Records => "records",
            };
            assert_eq!(kind, expected, "{text}");
            assert!(ids.is_empty(), "{text}");
            assert!(parsed.error.is_none(), "{text}");
        }
    }

    #[test]
    fn gzip_multi_member_and_truncation() {
        let gz = |text: &str| {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(text.as_bytes()).unwrap();
            encoder.finish().unwrap()
        };
        let mut two = gz(&format!(r#"{{"Records":[{R1}]}}"#));
        two.extend(gz(&format!(r#"{{"Records":[{R2}]}}"#)));
        let mut buf = FileBuffer::default();
        let bytes = read_decompressed(&two[..], 1 << 20, &mut buf);
        assert!(bytes.compressed && bytes.damage.is_none());
        assert_eq!(event_ids(buf.data()).0.len(), 2);

        let big: Vec<String> = (0..2000)
            .map(|i| R1.replace("\"a\"", &format!("\"{i}\"")))
            .collect();
        let whole = gz(&format!(r#"{{"Records":[{}]}}"#, big.join(",")));
        let cut = &whole[..whole.len() / 2];
        let bytes = read_decompressed(cut, 1 << 30, &mut buf);
        assert!(matches!(bytes.damage, Some(FileError::Gzip { .. })));
        let (ids, parsed) = event_ids(buf.data());
        assert!(!ids.is_empty() && ids.len() < 2000, "kept {}", ids.len());
        assert!(parsed.error.is_some());

        let bytes = read_decompressed(&whole[..], 1000, &mut buf);
        assert!(matches!(
            bytes.damage,
            Some(FileError::TooLarge { cap: 1000 })
        ));
        assert_eq!(buf.data().len(), 1000);

        // A smaller file after a larger one: only its own bytes.
        let bytes = read_decompressed(&two[..], 1 << 20, &mut buf);
        assert!(bytes.damage.is_none());
        assert_eq!(event_ids(buf.data()).0.len(), 2);
    }
}
