//! The lake's Hive partitions: which `account_id=<account>/date=<YYYY-MM-DD>` folder of
//! `events/` a record belongs to ([`PartitionKey`]), how an account is validated before it may
//! name a folder, and how a date is spelled in a folder name. Reading and writing the files in
//! those folders is left to `sink` (ingest) and `catalog` (queries).

use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};

use super::EVENTS_DIR;

/// How an account folder's name starts; the account follows.
pub const ACCOUNT_FOLDER: &str = "account_id=";

/// How a date folder's name starts; the date follows, spelled by [`date_text`].
pub const DATE_FOLDER: &str = "date=";

/// A partition of the `events` table; both parts are validated, so they are safe as path names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    account: String,
    date: NaiveDate,
}

/// The partition account for records whose account is missing or malformed.
pub const UNKNOWN_ACCOUNT: &str = "unknown";

impl PartitionKey {
    /// The record's `recipientAccountId` when it is 12 digits, else `unknown`: a record can
    /// never name a folder outside the lake. The partition depends on the record alone, never
    /// on where its file was found, so that a record read once from a loose file and once
    /// under `AWSLogs/<account>/` lands in the same partition and is stored once (the file's
    /// path stays in `source_file`).
    pub fn new(recipient: Option<&str>, date: NaiveDate) -> PartitionKey {
        PartitionKey {
            account: partition_account(recipient).to_owned(),
            date,
        }
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn date(&self) -> NaiveDate {
        self.date
    }

    /// `<events>/account_id=<account>/date=<YYYY-MM-DD>`
    pub fn dir(&self, events_dir: &Path) -> PathBuf {
        events_dir
            .join(format!("{ACCOUNT_FOLDER}{}", self.account))
            .join(format!("{DATE_FOLDER}{}", date_text(self.date)))
    }

    /// `events/account_id=<account>/date=<YYYY-MM-DD>`, relative to the lake's root.
    pub fn relative_dir(&self) -> String {
        format!(
            "{EVENTS_DIR}/{ACCOUNT_FOLDER}{}/{DATE_FOLDER}{}",
            self.account,
            date_text(self.date)
        )
    }
}

/// The account folder for a record: see [`PartitionKey::new`].
pub fn partition_account(recipient: Option<&str>) -> &str {
    recipient
        .filter(|account| is_account_id(account))
        .unwrap_or(UNKNOWN_ACCOUNT)
}

/// Twelve ASCII digits.
pub fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// `YYYY-MM-DD` of a date, the spelling of the `date=` partition.
pub fn date_text(date: NaiveDate) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), date.month(), date.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_accounts_are_validated() {
        let date = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        let cases = [
            (Some("111122223333"), "111122223333"),
            (Some("../../etc"), "unknown"),
            (Some("12345"), "unknown"),
            (Some("1111222233334"), "unknown"),
            (None, "unknown"),
        ];
        for (recipient, expected) in cases {
            let key = PartitionKey::new(recipient, date);
            assert_eq!(key.account(), expected);
            let dir = key.dir(Path::new("/lake/events"));
            assert_eq!(
                dir,
                PathBuf::from(format!(
                    "/lake/events/account_id={expected}/date=2024-03-01"
                ))
            );
        }
    }
}
