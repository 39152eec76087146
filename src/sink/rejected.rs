//! Records that could not become rows (no eventTime, no eventID, over a cap, damaged JSON) are
//! not dropped: each is kept, with its source and the reason, in `_rejected/run-<run>.ndjson`.
//!
//! A line holds the record's length and SHA-256, and the record itself when it is JSON of at
//! most [`KEPT_BYTES`]; otherwise (a huge record, damaged bytes) the first [`KEPT_BYTES`] of its
//! text as a JSON string. Secrets are redacted before the text reaches this log (by the caller,
//! which knows the record's shape: see `decode::secrets`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};

use super::lake::{sync_dir, temporary_name};
use crate::error::SinkError;

/// At most this much of a rejected record's text is kept.
pub const KEPT_BYTES: usize = 64 << 10;

/// A rejected record's text, fed in pieces: hashed whole, kept up to [`KEPT_BYTES`].
pub struct RecordText {
    kept: String,
    hasher: Sha256,
    bytes: u64,
    /// The text is a JSON value (a record); else it is damaged bytes, kept as a string.
    json: bool,
}

impl RecordText {
    /// For a record's JSON text.
    pub fn json() -> Self {
        Self::new(true)
    }

    /// For the text of a record that is not valid JSON.
    pub fn damaged() -> Self {
        Self::new(false)
    }

    fn new(json: bool) -> Self {
        RecordText {
            kept: String::new(),
            hasher: Sha256::new(),
            bytes: 0,
            json,
        }
    }

    pub fn push(&mut self, piece: &str) {
        self.hasher.update(piece.as_bytes());
        self.bytes += piece.len() as u64;
        let room = KEPT_BYTES.saturating_sub(self.kept.len());
        if room > 0 {
            let cut = (0..=room.min(piece.len()))
                .rev()
                .find(|&at| piece.is_char_boundary(at))
                .unwrap_or(0);
            self.kept.push_str(&piece[..cut]);
        }
    }

    /// The log line's fields after `reason`.
    fn fields(self) -> String {
        let digest = self.hasher.finalize();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let whole = self.bytes == self.kept.len() as u64;
        let record = if self.json && whole {
            format!("\"record\":{}", self.kept)
        } else {
            format!(
                "\"record_text\":{},\"truncated\":{}",
                serde_json::Value::from(self.kept),
                !whole
            )
        };
        format!(
            "\"record_bytes\":{},\"record_sha256\":\"{hex}\",{record}",
            self.bytes
        )
    }
}

pub struct RejectedLog {
    dir: PathBuf,
    name: String,
    out: Mutex<Option<BufWriter<File>>>,
}

impl RejectedLog {
    pub fn new(dir: PathBuf, run_id: &str) -> Self {
        RejectedLog {
            dir,
            name: format!("run-{run_id}.ndjson"),
            out: Mutex::new(None),
        }
    }

    /// Appends one rejected record.
    pub fn add(&self, source: &str, reason: &str, record: RecordText) -> Result<(), SinkError> {
        let path = self.dir.join(temporary_name(&self.name));
        let line = format!(
            "{{\"source\":{},\"reason\":{},{}}}\n",
            serde_json::Value::from(source),
            serde_json::Value::from(reason),
            record.fields()
        );
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        if out.is_none() {
            let file = File::create(&path).map_err(SinkError::io("creating", &path))?;
            *out = Some(BufWriter::new(file));
        }
        if let Some(writer) = out.as_mut() {
            writer
                .write_all(line.as_bytes())
                .map_err(SinkError::io("writing", &path))?;
        }
        Ok(())
    }

    /// Publishes the log; returns its path when anything was rejected.
    pub fn finish(self) -> Result<Option<PathBuf>, SinkError> {
        let Some(writer) = self
            .out
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
        else {
            return Ok(None);
        };
        let temporary = self.dir.join(temporary_name(&self.name));
        let file = writer.into_inner().map_err(|e| SinkError::Io {
            op: "writing",
            path: temporary.clone(),
            source: e.into_error(),
        })?;
        file.sync_all()
            .map_err(SinkError::io("syncing", &temporary))?;
        let target = self.dir.join(&self.name);
        std::fs::rename(&temporary, &target).map_err(SinkError::io("publishing", &target))?;
        sync_dir(&self.dir)?;
        Ok(Some(target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(record: RecordText) -> serde_json::Value {
        serde_json::from_str(&format!("{{{}}}", record.fields())).unwrap()
    }

    #[test]
    fn small_records_are_kept_whole_and_large_ones_as_a_prefix() {
        let mut small = RecordText::json();
        small.push(r#"{"eventID":"#);
        small.push(r#""e"}"#);
        let small = line(small);
        assert_eq!(small["record"], serde_json::json!({"eventID": "e"}));
        assert_eq!(small["record_bytes"], 15);

        let mut large = RecordText::json();
        let piece = format!("[\"{}\",", "é".repeat(1000));
        for _ in 0..100 {
            large.push(&piece);
        }
        let expected: String = Sha256::digest(piece.repeat(100).as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let large = line(large);
        assert_eq!(large["record_bytes"], piece.len() as u64 * 100);
        assert_eq!(large["record_sha256"], expected.as_str());
        assert_eq!(large["truncated"], true);
        let kept = large["record_text"].as_str().unwrap();
        assert!(kept.len() <= KEPT_BYTES && kept.len() > KEPT_BYTES - 4);

        let mut damaged = RecordText::damaged();
        damaged.push("{\"a\":\"\0\"");
        let damaged = line(damaged);
        assert_eq!(damaged["record_text"], "{\"a\":\"\0\"");
        assert_eq!(damaged["truncated"], false);
    }
}
