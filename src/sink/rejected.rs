//! Records that could not become rows (no eventTime, no eventID, over a cap) are not dropped:
//! each is kept as written, with its source and the reason, in `_rejected/run-<run>.ndjson`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use super::lake::{sync_dir, temporary_name};
use crate::error::SinkError;

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

    /// Appends one rejected record (`record` is its JSON text).
    pub fn add(&self, source: &str, reason: &str, record: &str) -> Result<(), SinkError> {
        let path = self.dir.join(temporary_name(&self.name));
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        if out.is_none() {
            let file = File::create(&path).map_err(SinkError::io("creating", &path))?;
            *out = Some(BufWriter::new(file));
        }
        let line = format!(
            "{{\"source\":{},\"reason\":{},\"record\":{}}}\n",
            serde_json::Value::from(source),
            serde_json::Value::from(reason),
            record
        );
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
