//! Decode: bytes of one log file into records.
//!
//! A file is recognised by its content, not its name: gzip (multi-member too) or plain; a
//! `{"Records":[...]}` document (several concatenated ones too), a bare array of records, or
//! NDJSON with one record per line. Records are handed to the caller one by one as the parser
//! reaches them. A damaged record is handed over as damaged and the records after it are read
//! on; when the structure around the records breaks (a file cut short), the records before the
//! break are kept.

pub mod identity;
pub mod inflate;
pub mod lenient;
pub mod record;
pub mod secrets;
pub mod sts;
pub mod time;

use std::fmt;
use std::io::{BufRead, BufReader, Read};

use flate2::bufread::MultiGzDecoder;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::FileError;
use inflate::Inflater;
use lenient::CowStr;
use record::RecordFields;
pub use secrets::quoted;

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
    /// Damaged records handed to the callback: the records around them were read on.
    pub damaged: usize,
    /// Set when the JSON broke off beyond repair; records before the break were handed over.
    pub error: Option<FileError>,
}

/// What the walk hands over: a record, or the text of one that could not be read.
pub enum Item<'r, 'a> {
    Record(&'r RecordFields<'a>),
    Damaged(&'r Damaged<'a>),
}

/// A record whose JSON is damaged: its bytes as they are, and why it could not be read.
pub struct Damaged<'a> {
    pub bytes: &'a [u8],
    pub reason: String,
}

impl Damaged<'_> {
    /// The damaged bytes as text (invalid UTF-8 replaced), secrets redacted.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match String::from_utf8_lossy(self.bytes) {
            std::borrow::Cow::Borrowed(text) => secrets::redacted(text),
            std::borrow::Cow::Owned(text) => {
                std::borrow::Cow::Owned(secrets::redacted(&text).into_owned())
            }
        }
    }
}

/// At most this many damaged lines are held while a file is not yet known to be CloudTrail.
const PENDING_DAMAGE: usize = 100;

/// Calls `on_item` for each record (or damaged record) in `bytes`; it returns false to stop.
///
/// A damaged record (a NUL, invalid UTF-8, a trailing comma, a lone surrogate in a key, a line
/// cut short) is handed over as [`Item::Damaged`] and the walk goes on after it: inside a list
/// of records its end is found by its brackets, at the top level (NDJSON) by its line. Only
/// damage to the structure around the records (a file cut short) ends the walk, as `error`.
pub fn for_each_record<'a, F>(bytes: &'a [u8], on_item: F) -> Parsed
where
    F: FnMut(Item<'_, 'a>) -> bool,
{
    let mut walk = Walk {
        bytes,
        // One pass of the (vectorised) validator over the whole file; a file with a bad byte is
        // parsed from bytes instead, so that the records around the bad byte are kept.
        text: std::str::from_utf8(bytes).ok(),
        emit: Emit::new(bytes, on_item),
    };
    let mut pos = skip_space(bytes, 0);
    if bytes[pos..].starts_with("\u{feff}".as_bytes()) {
        pos += 3;
    }
    let mut error = None;
    while !walk.emit.stopped {
        pos = skip_space(bytes, pos);
        if pos >= bytes.len() {
            break;
        }
        match walk.document(pos) {
            Ok(end) => pos = end,
            Err(Broken::Record { message, garbage }) => {
                let end = damaged_extent(bytes, pos);
                walk.emit.damaged(pos, end, message, garbage);
                pos = end;
            }
            Err(Broken::File(message)) => {
                error = Some(FileError::Json(message));
                break;
            }
        }
    }
    let content = walk.emit.finish(error.as_ref());
    // A file that never looked like CloudTrail is skipped, not failed.
    let error = error.filter(|_| !matches!(content, Content::NotCloudTrail(_)));
    Parsed {
        content,
        records: walk.emit.records,
        damaged: walk.emit.damaged,
        error,
    }
}

/// How a document failed.
enum Broken {
    /// One record (an NDJSON line) is damaged, or a line is not JSON: read on after it.
    Record { message: String, garbage: bool },
    /// The structure around the records is damaged: stop.
    File(String),
}

/// How walking an object as a `{"Records":...}` container went.
enum Container {
    Done(usize),
    /// No `Records` key was reached: the object is something else.
    NotOne,
    /// `Records` was found, then the structure broke.
    Broken(String),
}

/// The bytes of a file, as text too when they are valid UTF-8, and what was found in them.
struct Walk<'a, F> {
    bytes: &'a [u8],
    text: Option<&'a str>,
    emit: Emit<'a, F>,
}

impl<'a, F: FnMut(Item<'_, 'a>) -> bool> Walk<'a, F> {
    /// Walks the top-level value at `pos`; returns where it ends.
    fn document(&mut self, pos: usize) -> Result<usize, Broken> {
        match self.bytes[pos] {
            b'[' => self.array(pos).map_err(Broken::File),
            b'{' => self.object(pos),
            other => Err(Broken::Record {
                message: format!(
                    "starts with {:?}, not a JSON object or array",
                    other as char
                ),
                garbage: true,
            }),
        }
    }

    /// A top-level object: a `{"Records":...}` container, or a record (NDJSON), or anything
    /// else (a digest, a configuration file), told apart by its keys.
    fn object(&mut self, pos: usize) -> Result<usize, Broken> {
        if first_key_is_records(&self.bytes[pos..]) {
            return match self.container(pos) {
                Container::Done(end) => Ok(end),
                Container::NotOne => Err(Broken::File("a Records key without records".into())),
                Container::Broken(message) => Err(Broken::File(message)),
            };
        }
        self.emit.top_level = true;
        let parsed = self.record_at(pos);
        self.emit.top_level = false;
        let message = match parsed {
            Ok(end) if !self.emit.container_shaped => return Ok(end),
            Ok(_) => String::new(),
            Err(message) => message,
        };
        // `Records` after other keys, or a damaged object that may be a container.
        self.emit.container_shaped = false;
        match self.container(pos) {
            Container::Done(end) => Ok(end),
            Container::NotOne => Err(Broken::Record {
                message,
                garbage: false,
            }),
            Container::Broken(message) => Err(Broken::File(message)),
        }
    }

    /// Walks `{..., "Records": ..., ...}` leniently: the other keys' values are skipped by
    /// their brackets, unread.
    fn container(&mut self, open: usize) -> Container {
        let bytes = self.bytes;
        let mut found = false;
        let broken = |found: bool, message: String| match found {
            true => Container::Broken(message),
            false => Container::NotOne,
        };
        let mut pos = skip_space(bytes, open + 1);
        loop {
            let key_end = match bytes.get(pos) {
                Some(b'"') => secrets::string_close(bytes, pos),
                _ => None,
            };
            let Some(key_end) = key_end else {
                return broken(found, format!("expected a key at byte {pos}"));
            };
            let is_records = std::str::from_utf8(&bytes[pos..key_end])
                .is_ok_and(|key| secrets::decode_string(key) == "Records");
            pos = skip_space(bytes, key_end);
            if bytes.get(pos) != Some(&b':') {
                return broken(found, format!("expected `:` at byte {pos}"));
            }
            pos = skip_space(bytes, pos + 1);
            let value = if is_records {
                found = true;
                self.records_value(pos)
            } else {
                secrets::value_end(bytes, pos).ok_or_else(|| "the file ends inside a value".into())
            };
            pos = match value {
                Ok(end) => skip_space(bytes, end),
                Err(message) => return broken(found, message),
            };
            match bytes.get(pos) {
                _ if self.emit.stopped => return Container::Done(bytes.len()),
                Some(b',') => pos = skip_space(bytes, pos + 1),
                Some(b'}') if found => return Container::Done(pos + 1),
                Some(b'}') => return Container::NotOne,
                _ => return broken(found, format!("expected `,` or `}}` at byte {pos}")),
            }
        }
    }

    /// The value of `Records`: a list of records, one record, or null.
    fn records_value(&mut self, pos: usize) -> Result<usize, String> {
        self.emit.saw_container = true;
        self.emit.in_container = true;
        let result = match self.bytes.get(pos) {
            Some(b'[') => self.array(pos),
            Some(b'{') => self.element(pos),
            _ if self.bytes[pos..].starts_with(b"null") => Ok(pos + 4),
            _ => Err(format!(
                "Records at byte {pos} is neither a list nor an object"
            )),
        };
        self.emit.in_container = false;
        result
    }

    /// `[record, ...]` from the bracket at `open`; returns where it ends.
    fn array(&mut self, open: usize) -> Result<usize, String> {
        let bytes = self.bytes;
        let cut = || "the file ends inside the list of records".to_owned();
        let mut pos = skip_space(bytes, open + 1);
        while bytes.get(pos) != Some(&b']') {
            pos = skip_space(bytes, self.element(pos)?);
            if self.emit.stopped {
                return Ok(bytes.len());
            }
            match bytes.get(pos) {
                // A comma before the closing bracket loses nothing: read on.
                Some(b',') => pos = skip_space(bytes, pos + 1),
                Some(b']') => {}
                Some(&other) => {
                    let found = other as char;
                    return Err(format!(
                        "expected `,` or `]` at byte {pos}, found {found:?}"
                    ));
                }
                None => return Err(cut()),
            }
            if pos >= bytes.len() {
                return Err(cut());
            }
        }
        Ok(pos + 1)
    }

    /// One element of a list of records. A damaged one is handed over as such, and the walk
    /// goes on after its closing bracket; one cut off by the end of the file ends the walk.
    fn element(&mut self, pos: usize) -> Result<usize, String> {
        match self.record_at(pos) {
            Ok(end) => Ok(end),
            Err(message) => {
                let message = format!("record at byte {pos}: {message}");
                match secrets::value_end(self.bytes, pos) {
                    Some(end) => {
                        self.emit.damaged(pos, end, message, false);
                        Ok(end)
                    }
                    None => Err(message),
                }
            }
        }
    }

    /// Parses the record object at `pos` and hands it over; returns where it ends.
    fn record_at(&mut self, pos: usize) -> Result<usize, String> {
        self.emit.record_start = pos;
        let used = match self.text.and_then(|text| text.get(pos..)) {
            Some(rest) => one_record(serde_json::Deserializer::from_str(rest), &mut self.emit),
            None => one_record(
                serde_json::Deserializer::from_slice(&self.bytes[pos..]),
                &mut self.emit,
            ),
        };
        used.map(|used| pos + used)
    }
}

/// Parses one record object at the start of the deserializer's input; returns the bytes used.
fn one_record<'a, R, F>(
    mut de: serde_json::Deserializer<R>,
    emit: &mut Emit<'a, F>,
) -> Result<usize, String>
where
    R: serde_json::de::Read<'a>,
    F: FnMut(Item<'_, 'a>) -> bool,
{
    RecordSeed(emit)
        .deserialize(&mut de)
        .map_err(|error| quoted(&error.to_string()))?;
    Ok(de.into_iter::<IgnoredAny>().byte_offset())
}

/// Where a damaged top-level record ends: at its closing bracket when the line ends there
/// (a pretty-printed record), else at the end of its line (NDJSON).
fn damaged_extent(bytes: &[u8], pos: usize) -> usize {
    let line_end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |at| pos + at);
    match secrets::value_end(bytes, pos) {
        Some(end)
            if end > line_end
                && bytes[end..]
                    .iter()
                    .take_while(|b| **b != b'\n')
                    .all(u8::is_ascii_whitespace) =>
        {
            end
        }
        _ => line_end,
    }
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

/// A damaged line held until the file is known to be CloudTrail.
struct Pending {
    start: usize,
    end: usize,
    message: String,
    /// Not JSON at all (rather than damaged JSON).
    garbage: bool,
}

/// State shared by the walk and the seed below: the callback and what has been seen so far.
struct Emit<'a, F> {
    on_item: F,
    input: &'a [u8],
    fields: RecordFields<'a>,
    /// Where the record being parsed starts in `input`.
    record_start: usize,
    records: usize,
    damaged: usize,
    content: Option<Content>,
    stopped: bool,
    /// Inside the `Records` of a container.
    in_container: bool,
    saw_container: bool,
    /// The record being parsed is a top-level object...
    top_level: bool,
    /// ... and turned out to be a container whose `Records` is not its first key.
    container_shaped: bool,
    pending: Vec<Pending>,
}

impl<'a, F: FnMut(Item<'_, 'a>) -> bool> Emit<'a, F> {
    fn new(input: &'a [u8], on_item: F) -> Self {
        Emit {
            on_item,
            input,
            fields: RecordFields::default(),
            record_start: 0,
            records: 0,
            damaged: 0,
            content: None,
            stopped: false,
            in_container: false,
            saw_container: false,
            top_level: false,
            container_shaped: false,
            pending: Vec::new(),
        }
    }

    /// Classifies the file on its first record, then hands records over.
    fn record(&mut self) {
        if self.stopped {
            return;
        }
        if self.top_level && is_container(&self.fields) {
            self.container_shaped = true;
            return;
        }
        if self.content.is_none() {
            let mut content = classify(&self.fields, self.in_container);
            if matches!(content, Content::NotCloudTrail(_)) && self.pending_is_cloudtrail() {
                content = Content::Records;
            }
            self.stopped = content != Content::Records;
            self.content = Some(content);
            self.flush_pending();
            if self.stopped {
                return;
            }
        }
        self.records += 1;
        self.fields.raw = self.record_bytes();
        self.stopped = !(self.on_item)(Item::Record(&self.fields));
    }

    /// The bytes of the record just parsed, up to the end of its last value.
    fn record_bytes(&self) -> &'a [u8] {
        let input = self.input;
        let end = self.fields.fields.last().and_then(|(_, value)| {
            let text = value.get();
            let offset = (text.as_ptr() as usize).checked_sub(input.as_ptr() as usize)?;
            Some(offset + text.len())
        });
        end.and_then(|end| input.get(self.record_start..end))
            .unwrap_or_default()
    }

    /// A damaged record: handed over at once in a CloudTrail file, held while the file is not
    /// known to be one yet, dropped in a file that is not.
    fn damaged(&mut self, start: usize, end: usize, message: String, garbage: bool) {
        let pending = Pending {
            start,
            end,
            message,
            garbage,
        };
        match &self.content {
            _ if self.stopped => {}
            Some(Content::Records) => self.hand_over(pending),
            None if self.saw_container => self.hand_over(pending),
            None => {
                self.pending.push(pending);
                if self.pending.len() >= PENDING_DAMAGE {
                    self.decide_on_pending();
                }
            }
            Some(_) => {}
        }
    }

    /// Too much damage and no record yet: CloudTrail if the damage looks like it, else not.
    fn decide_on_pending(&mut self) {
        if self.pending_is_cloudtrail() {
            self.content = Some(Content::Records);
            self.flush_pending();
        } else {
            self.stopped = true;
        }
    }

    fn hand_over(&mut self, pending: Pending) {
        self.damaged += 1;
        let reason = match pending.garbage {
            true => pending.message,
            false => format!("invalid JSON: {}", pending.message),
        };
        let damaged = Damaged {
            bytes: &self.input[pending.start..pending.end],
            reason,
        };
        self.stopped = !(self.on_item)(Item::Damaged(&damaged));
    }

    fn flush_pending(&mut self) {
        let keep = self.content == Some(Content::Records);
        for pending in std::mem::take(&mut self.pending) {
            if self.stopped || !keep {
                break;
            }
            self.hand_over(pending);
        }
    }

    /// Damaged lines name CloudTrail's fields: the file is CloudTrail, damaged.
    fn pending_is_cloudtrail(&self) -> bool {
        self.pending.iter().any(|pending| {
            let bytes = &self.input[pending.start..pending.end];
            RECORD_KEYS
                .iter()
                .any(|key| memchr::memmem::find(bytes, format!("\"{key}\"").as_bytes()).is_some())
        })
    }

    /// What the file held, once it is walked.
    fn finish(&mut self, error: Option<&FileError>) -> Content {
        if self.content.is_none() && (self.saw_container || self.pending_is_cloudtrail()) {
            self.content = Some(Content::Records);
            self.stopped = false;
            self.flush_pending();
        }
        match (self.content.take(), self.pending.first(), error) {
            (Some(content), _, _) => content,
            (None, Some(pending), _) if pending.garbage => {
                Content::NotCloudTrail(pending.message.clone())
            }
            (None, Some(pending), _) => {
                Content::NotCloudTrail(format!("not JSON: {}", pending.message))
            }
            (None, None, Some(FileError::Json(message))) => {
                Content::NotCloudTrail(format!("not JSON: {message}"))
            }
            (None, None, _) => Content::NotCloudTrail("empty file".into()),
        }
    }
}

/// A top-level object holding records under `Records` (after other keys, or as one object),
/// rather than a record.
fn is_container(fields: &RecordFields) -> bool {
    let records = fields.get("Records").map(RawValue::get);
    records.is_some_and(|raw| raw.starts_with(['[', '{']) || raw == "null")
        && !RECORD_KEYS.iter().any(|key| fields.get(key).is_some())
}

/// Keys every CloudTrail record has (one is enough to recognise one).
const RECORD_KEYS: [&str; 5] = [
    "eventVersion",
    "eventID",
    "eventTime",
    "eventName",
    "eventSource",
];

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

/// One record object: its top-level keys with their raw values.
struct RecordSeed<'e, 'a, F>(&'e mut Emit<'a, F>);

impl<'de, F: FnMut(Item<'_, 'de>) -> bool> DeserializeSeed<'de> for RecordSeed<'_, 'de, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, F: FnMut(Item<'_, 'de>) -> bool> Visitor<'de> for RecordSeed<'_, 'de, F> {
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
        let parsed = for_each_record(bytes, |item| {
            ids.push(match item {
                Item::Record(record) => record
                    .get("eventID")
                    .map_or("-".into(), |v| v.get().to_owned()),
                Item::Damaged(damaged) => format!("damaged: {}", damaged.reason),
            });
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
    fn damage_in_any_record_is_handed_over_and_the_rest_read_on() {
        let damaged = R1.replace("\"a\"", "\"a\\ud800\"");
        let cases: [Vec<u8>; 6] = [
            format!(r#"{{"Records":[{},{R2}]}}"#, R1.replace("1.08", "1\0.08")).into_bytes(),
            format!(r#"{{"Records":[{},{R2}]}}"#, R1.replacen('}', ",}", 1)).into_bytes(),
            format!(
                r#"{{"Records":[{},{R2}]}}"#,
                R1.replace("eventID", "event\\udc00ID")
            )
            .into_bytes(),
            [
                b"{\"Records\":[".as_slice(),
                &R1.as_bytes()[..20],
                b"\xff",
                &R1.as_bytes()[20..],
                b",",
                R2.as_bytes(),
                b"]}",
            ]
            .concat(),
            format!("{}\n{R2}\n", &R1[5..]).into_bytes(),
            format!("[{},{R2}]", R1.replace("1.08", "1\0.08")).into_bytes(),
        ];
        for case in cases {
            let (ids, parsed) = event_ids(&case);
            let text = String::from_utf8_lossy(&case);
            assert_eq!(parsed.content, Content::Records, "{text}");
            assert!(parsed.error.is_none(), "{text}");
            assert_eq!((parsed.records, parsed.damaged), (1, 1), "{text}: {ids:?}");
            assert!(ids[0].starts_with("damaged: "), "{text}: {ids:?}");
            assert_eq!(ids[1], "\"b\"", "{text}");
        }
        // A lone surrogate in a value is captured as written; the record is read.
        let (ids, _) = event_ids(format!(r#"{{"Records":[{damaged},{R2}]}}"#).as_bytes());
        assert_eq!(ids.len(), 2);
    }

    #[test]
    fn records_after_other_keys_or_as_one_object() {
        let cases = [
            format!(r#"{{"version":"1.0","x":{{"Records":1}},"Records":[{R1},{R2}]}}"#),
            format!(r#"{{"version":"1\u0000","Records":[{R1},{R2}],"after":[1]}}"#),
            format!(r#"{{"Records":{R1}}}{{"Records":{R2}}}"#),
        ];
        for case in cases {
            let (ids, parsed) = event_ids(case.as_bytes());
            assert_eq!(parsed.content, Content::Records, "{case}");
            assert!(parsed.error.is_none(), "{case}: {:?}", parsed.error);
            assert_eq!(ids, ["\"a\"", "\"b\""], "{case}");
        }
        // Damaged before its records: still a container, its damage reported.
        let text = format!(
            r#"{{"version":"1","Records":[{},{R2}]}}"#,
            R1.replace("1.08", "1\0.08")
        );
        let (ids, parsed) = event_ids(text.as_bytes());
        assert_eq!((parsed.content, ids.len()), (Content::Records, 2));
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
            ("hello\n{\"a\":1}\n", "not"),
            ("{\"name\":\"app\",\"port\":8080}\n{\"x\":1,}", "not"),
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
