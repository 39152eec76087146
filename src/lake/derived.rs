//! The derived tables as the lake holds them: one Parquet file per table, account and day,
//! named by the fingerprint of what it was computed from. Computing them is
//! `crate::query::derive`'s job, choosing between them and `events` the catalog's; the design is
//! in `docs/derived-tables.md`.
//!
//! ```text
//! <lake>/events/account_id=<account>/date=<YYYY-MM-DD>/*.parquet     the events
//! <lake>/derived/<table>/<account>/<YYYY-MM-DD>/<inputs>.parquet      one per table and partition
//! ```
//!
//! `<inputs>` hashes the table's SQL and the name and size of every event file of that account
//! and day ([`inputs_fingerprint`]): a file is current exactly when its name is the fingerprint
//! of the partition's files as they are now. There is no index to keep in step: an ingest that
//! publishes a file into a partition makes that partition's derived files stale by name, a
//! derive killed halfway leaves the partitions it finished current and the others stale, and a
//! file is published in one PUT (a rename on disk), so a file with a current name is whole.
//!
//! Derived folders are not named `key=value`, so an engine that reads the files directly does
//! not take `account_id` and `date`, which the files hold as columns, for Hive partitions too.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::context::SessionContext;
use datafusion::execution::object_store::ObjectStoreUrl;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

use super::partition::{ACCOUNT_FOLDER, DATE_FOLDER};
use super::{DERIVED_DIR, sibling_folder};
use crate::error::QueryError;

/// Bumped when the layout or the meaning of the derived files changes: every file's name
/// changes with it, so files of another format are never read, and `derive` replaces them.
const FORMAT: &str = "sts-audit derived v3";

/// How many account folders are listed at once (requests in flight on S3).
const LISTINGS_IN_FLIGHT: usize = 16;

/// One partition of the lake: an account folder (`unknown` included) and a day, `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Partition {
    pub account: String,
    pub date: String,
}

/// A file in the lake's store, with its size.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DataFile {
    pub path: ObjectPath,
    pub size: u64,
}

/// A derived file: the fingerprint of its inputs (its name) and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedFile {
    pub inputs: String,
    pub file: DataFile,
}

/// The data files of each partition, in path order.
pub type PartitionFiles = BTreeMap<Partition, Vec<DataFile>>;

/// Which partitions a listing is limited to: accounts (none: all) and a range of days, both
/// ends included, as `YYYY-MM-DD` (text order is date order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionFilter {
    pub accounts: Vec<String>,
    pub first_date: Option<String>,
    pub last_date: Option<String>,
}

impl PartitionFilter {
    fn keeps_account(&self, account: &str) -> bool {
        self.accounts.is_empty() || self.accounts.iter().any(|a| a == account)
    }

    fn keeps_date(&self, date: &str) -> bool {
        self.first_date.as_deref().is_none_or(|first| date >= first)
            && self.last_date.as_deref().is_none_or(|last| date <= last)
    }
}

/// How a tree's account and date folders are spelled: `account_id=`/`date=` under `events/`,
/// bare under `derived/<table>/`.
#[derive(Debug, Clone, Copy)]
struct Spelling {
    account: &'static str,
    date: &'static str,
}

const EVENTS_SPELLING: Spelling = Spelling {
    account: ACCOUNT_FOLDER,
    date: DATE_FOLDER,
};

const DERIVED_SPELLING: Spelling = Spelling {
    account: "",
    date: "",
};

/// The name of the derived file of a partition whose event files are `files` (sorted), for
/// the table computed by `table_sql`.
pub fn inputs_fingerprint(table_sql: &str, files: &[DataFile]) -> String {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(FORMAT.as_bytes());
    hasher.update(table_sql.as_bytes());
    for file in files {
        // The name alone: a lake copied or moved elsewhere keeps its derived tables.
        hasher.update(file.path.filename().unwrap_or_default().as_bytes());
        hasher.update(&file.size.to_le_bytes());
    }
    format!("{:032x}", hasher.digest128())
}

/// The lake's storage as the derived tables see it: its object store and the paths in it.
pub struct LakeStore {
    store: Arc<dyn ObjectStore>,
    store_url: ObjectStoreUrl,
    events: ObjectPath,
    derived: ObjectPath,
    /// `file:///abs/lake/derived/` or `s3://bucket/prefix/derived/`, for messages.
    derived_url: Url,
    /// The `derived` folder of a lake on disk, whose emptied folders are removed too.
    local_folder: Option<std::path::PathBuf>,
}

impl LakeStore {
    /// The store behind `events_url`, which the catalog registered in `ctx`.
    pub fn of(ctx: &SessionContext, events_url: &ListingTableUrl) -> Result<Self, QueryError> {
        let store = ctx
            .runtime_env()
            .object_store(events_url)
            .map_err(QueryError::setup("lake storage"))?;
        let (derived_url, derived) = sibling_folder(events_url, DERIVED_DIR)?;
        let local_folder = match derived_url.scheme() {
            "file" => derived_url.to_file_path().ok(),
            _ => None,
        };
        Ok(LakeStore {
            store,
            store_url: events_url.object_store(),
            events: events_url.prefix().clone(),
            derived,
            derived_url,
            local_folder,
        })
    }

    /// The store's URL (`file://`, `s3://bucket`), which a scan of its files names.
    pub fn store_url(&self) -> &ObjectStoreUrl {
        &self.store_url
    }

    /// The event files of every partition `filter` keeps.
    pub async fn event_partitions(
        &self,
        filter: &PartitionFilter,
    ) -> Result<PartitionFiles, QueryError> {
        let listed = self
            .list_tree(&self.events, EVENTS_SPELLING, filter)
            .await?;
        Ok(listed
            .into_iter()
            .map(|(partition, files)| {
                let data = files.into_iter().filter(is_data_file).collect();
                (partition, data)
            })
            .collect())
    }

    /// The files of derived table `table` in every partition `filter` keeps.
    pub async fn derived_partitions(
        &self,
        table: &str,
        filter: &PartitionFilter,
    ) -> Result<BTreeMap<Partition, Vec<DerivedFile>>, QueryError> {
        let root = self.derived.clone().join(table);
        let listed = self.list_tree(&root, DERIVED_SPELLING, filter).await?;
        Ok(listed
            .into_iter()
            .map(|(partition, files)| {
                let derived = files
                    .into_iter()
                    .filter_map(|file| {
                        let name = file.path.filename()?;
                        let inputs = name.strip_suffix(".parquet")?.to_owned();
                        Some(DerivedFile { inputs, file })
                    })
                    .collect();
                (partition, derived)
            })
            .collect())
    }

    /// Where the derived file of `table` for `partition`, computed from inputs `inputs`, lives.
    pub fn derived_path(&self, table: &str, partition: &Partition, inputs: &str) -> ObjectPath {
        self.derived
            .clone()
            .join(table)
            .join(partition.account.as_str())
            .join(partition.date.as_str())
            .join(format!("{inputs}.parquet"))
    }

    /// Publishes a derived file in one PUT (a rename on disk): it is whole or absent.
    pub async fn publish(&self, path: &ObjectPath, bytes: Vec<u8>) -> Result<(), QueryError> {
        self.store
            .put(path, PutPayload::from(bytes))
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Removes the files at `paths`, then, on disk, the folders that left empty.
    pub async fn remove(&self, paths: &[ObjectPath]) -> Result<(), QueryError> {
        futures::stream::iter(paths)
            .map(|path| async move {
                match self.store.delete(path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(self.error(e)),
                }
            })
            .buffer_unordered(LISTINGS_IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await?;
        if let Some(folder) = &self.local_folder {
            let folders = walkdir::WalkDir::new(folder)
                .min_depth(1)
                .contents_first(true);
            for entry in folders.into_iter().flatten() {
                if entry.file_type().is_dir() {
                    let _ = std::fs::remove_dir(entry.path()); // fails when not empty: kept
                }
            }
        }
        Ok(())
    }

    /// Every object under `derived/` outside the folders of `tables`: what older versions
    /// left (their builds and `CURRENT.json`), which `derive` removes.
    pub async fn foreign_derived_files(
        &self,
        tables: &[&str],
    ) -> Result<Vec<ObjectPath>, QueryError> {
        let depth = self.derived.parts().count();
        self.store
            .list(Some(&self.derived))
            .try_filter_map(|meta| async move {
                let top = meta.location.parts().nth(depth);
                let ours = top.is_some_and(|top| tables.contains(&top.as_ref()));
                Ok((!ours).then_some(meta.location))
            })
            .try_collect()
            .await
            .map_err(|e| self.error(e))
    }

    /// The files under `root`, by the account and date folders they are in, for the
    /// partitions `filter` keeps. Each account folder is listed on its own, from its first
    /// wanted day on, and the listing stops past the last one: a week of a year-long lake
    /// costs a request or two per account, not a walk of the year.
    async fn list_tree(
        &self,
        root: &ObjectPath,
        spelling: Spelling,
        filter: &PartitionFilter,
    ) -> Result<PartitionFiles, QueryError> {
        let top = self
            .store
            .list_with_delimiter(Some(root))
            .await
            .map_err(|e| self.error(e))?;
        let accounts: Vec<(String, ObjectPath)> = top
            .common_prefixes
            .into_iter()
            .filter_map(|folder| {
                let name = folder
                    .filename()?
                    .strip_prefix(spelling.account)?
                    .to_owned();
                filter.keeps_account(&name).then_some((name, folder))
            })
            .collect();
        let listings = futures::stream::iter(accounts)
            .map(|(account, folder)| self.list_account(account, folder, spelling, filter))
            .buffer_unordered(LISTINGS_IN_FLIGHT)
            .try_collect::<Vec<_>>()
            .await?;
        let mut partitions = PartitionFiles::new();
        for (partition, file) in listings.into_iter().flatten() {
            partitions.entry(partition).or_default().push(file);
        }
        for files in partitions.values_mut() {
            files.sort();
        }
        Ok(partitions)
    }

    async fn list_account(
        &self,
        account: String,
        folder: ObjectPath,
        spelling: Spelling,
        filter: &PartitionFilter,
    ) -> Result<Vec<(Partition, DataFile)>, QueryError> {
        let depth = folder.parts().count();
        let listing = match &filter.first_date {
            // Every key under `<folder>/<date prefix><first>/` sorts after this one.
            Some(first) => {
                let offset = folder.clone().join(format!("{}{first}", spelling.date));
                self.store.list_with_offset(Some(&folder), &offset)
            }
            None => self.store.list(Some(&folder)),
        };
        let mut found = Vec::new();
        let mut listing = std::pin::pin!(listing);
        while let Some(meta) = listing.try_next().await.map_err(|e| self.error(e))? {
            let Some((date, file)) = date_and_file(&meta, depth, spelling) else {
                continue;
            };
            let past_the_end = filter
                .last_date
                .as_deref()
                .is_some_and(|last| date.as_str() > last);
            // S3 lists keys in order, so nothing after is wanted; a folder on disk lists in
            // no particular order.
            if past_the_end && self.local_folder.is_none() {
                break;
            }
            if filter.keeps_date(&date) {
                let partition = Partition {
                    account: account.clone(),
                    date,
                };
                found.push((partition, file));
            }
        }
        Ok(found)
    }

    fn error(&self, error: object_store::Error) -> QueryError {
        QueryError::Remote {
            lake: self.derived_url.to_string(),
            reason: error.to_string(),
        }
    }
}

/// The date of a file two levels below an account folder (`<date folder>/<file>`), and the file.
fn date_and_file(
    meta: &ObjectMeta,
    depth: usize,
    spelling: Spelling,
) -> Option<(String, DataFile)> {
    let parts: Vec<_> = meta.location.parts().skip(depth).collect();
    let [date_folder, _file] = parts.as_slice() else {
        return None;
    };
    let date = date_folder.as_ref().strip_prefix(spelling.date)?.to_owned();
    let file = DataFile {
        path: meta.location.clone(),
        size: meta.size,
    };
    Some((date, file))
}

/// A Parquet file the lake's readers read: not a temporary (`.name`) or private (`_name`) one.
fn is_data_file(file: &DataFile) -> bool {
    let name = file.path.filename().unwrap_or_default();
    name.ends_with(".parquet") && !name.starts_with(['.', '_'])
}

/// A hash of every event file's name and size and of the views' SQL (`views_sql`): any ingest
/// that publishes a file changes it. The compliance report's manifest records it.
pub async fn lake_fingerprint(
    store: &LakeStore,
    views_sql: &[&str],
) -> Result<(String, u64), QueryError> {
    let partitions = store.event_partitions(&PartitionFilter::default()).await?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(FORMAT.as_bytes());
    hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
    for sql in views_sql {
        hasher.update(sql.as_bytes());
    }
    let mut count = 0u64;
    for file in partitions.values().flatten() {
        hasher.update(file.path.as_ref().as_bytes());
        hasher.update(&file.size.to_le_bytes());
        count += 1;
    }
    Ok((format!("{:016x}", hasher.digest()), count))
}
