//! What a run is asked to do, validated: the ingest plan and the rules for the scope flags
//! (`--from`/`--to`/`--account`), time bounds and memory defaults that every command shares.
//! It takes plain text and values; the binary's commands turn parsed flags into these plans,
//! so nothing here sees clap types.

use std::path::PathBuf;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::aws::{AwsOptions, S3Url};
use crate::decode::record::RecordLimits;
use crate::decode::time::parse_event_time;
use crate::error::PlanError;
use crate::lake::LakeLocation;
use crate::lake::partition::is_account_id;
use crate::lake::scope::Scope;

/// Where logs are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceLocation {
    Local(PathBuf),
    S3(S3Url),
}

/// Everything an ingest run needs to know.
#[derive(Debug, Clone)]
pub struct IngestPlan {
    pub sources: Vec<SourceLocation>,
    pub lake: LakeLocation,
    pub aws: AwsOptions,
    /// S3 objects fetched at once.
    pub concurrency: usize,
    pub scope: Scope,
    pub jobs: usize,
    pub strict: bool,
    /// Follow symbolic links out of a local source folder.
    pub follow_symlinks: bool,
    pub max_file_bytes: u64,
    pub limits: RecordLimits,
    pub buffer_bytes: usize,
    /// Memory for the dedup keys before partitions are spilled to disk.
    pub dedup_bytes: usize,
    pub progress: bool,
}

/// The time bounds of the scope flags, in microseconds UTC; `to` is exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeBounds {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// The scope flags checked, the same for ingest and queries: `from` and `to` parsed as
/// [`parse_bound`] says (a `to` date includes that day), a range that is not empty, and
/// accounts of 12 digits.
pub fn validate_scope(
    from: Option<&str>,
    to: Option<&str>,
    accounts: &[String],
    now: DateTime<Utc>,
) -> Result<TimeBounds, PlanError> {
    let from_bound = from
        .map(|t| parse_bound("--from", t, now, false))
        .transpose()?;
    let to_bound = to.map(|t| parse_bound("--to", t, now, true)).transpose()?;
    if let (Some(start), Some(end)) = (from_bound, to_bound)
        && start >= end
    {
        return Err(PlanError::EmptyRange {
            from: from.unwrap_or_default().to_owned(),
            to: to.unwrap_or_default().to_owned(),
        });
    }
    if let Some(bad) = accounts.iter().find(|a| !is_account_id(a)) {
        return Err(PlanError::Account(bad.clone()));
    }
    Ok(TimeBounds {
        from: from_bound,
        to: to_bound,
    })
}

/// An S3 URL, or a file or folder that must exist.
pub fn source_location(text: &str) -> Result<SourceLocation, PlanError> {
    if let Some(url) = S3Url::parse(text) {
        return url.map(SourceLocation::S3).map_err(PlanError::Url);
    }
    let path = PathBuf::from(text);
    std::fs::metadata(&path).map_err(|source| PlanError::Source {
        path: path.clone(),
        source,
    })?;
    Ok(SourceLocation::Local(path))
}

/// A byte count from a flag as a `usize`, saturating on targets where it does not fit.
pub fn bytes(count: u64) -> usize {
    usize::try_from(count).unwrap_or(usize::MAX)
}

/// A time bound in microseconds UTC. A bare date is the start of that day, or for an end bound
/// (`end_of_day`) the start of the next, so `--to 2024-03-01` includes March 1st.
pub fn parse_bound(
    flag: &'static str,
    text: &str,
    now: DateTime<Utc>,
    end_of_day: bool,
) -> Result<i64, PlanError> {
    let error = |reason: &str| PlanError::Time {
        flag,
        value: text.to_owned(),
        reason: reason.to_owned(),
    };
    let text = text.trim();
    if text == "now" {
        return Ok(now.timestamp_micros());
    }
    if let Some(ago) = parse_relative(text) {
        // Checked: chrono's `-` panics past about 262,000 years.
        return ago
            .and_then(|ago| now.checked_sub_signed(ago))
            .map(|t| t.timestamp_micros())
            .ok_or_else(|| error("relative time out of range"));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let date = if end_of_day {
            date.succ_opt().ok_or_else(|| error("date out of range"))?
        } else {
            date
        };
        return date
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_micros())
            .ok_or_else(|| error("date out of range"));
    }
    parse_event_time(text)
        .ok_or_else(|| error("expected YYYY-MM-DD, an RFC 3339 time, now, or -7d/-12h/-30m/-2w"))
}

/// `-7d`, `12h`, `-30m`, `-2w`: Some(None) when the number overflows, None when not relative.
fn parse_relative(text: &str) -> Option<Option<Duration>> {
    let body = text.strip_prefix('-').unwrap_or(text);
    let unit = body.chars().last()?;
    let number: i64 = body[..body.len() - unit.len_utf8()].parse().ok()?;
    Some(match unit {
        'w' => Duration::try_weeks(number),
        'd' => Duration::try_days(number),
        'h' => Duration::try_hours(number),
        'm' => Duration::try_minutes(number),
        's' => Duration::try_seconds(number),
        _ => return None,
    })
}

/// `--memory-limit` when none is given: half of the memory available to this process, so
/// that what DataFusion does not count (Arrow buffers in flight, the allocator's slack) fits
/// in the other half. Available is the smaller of the kernel's `MemAvailable` and the memory
/// limit of the process's cgroup (v2 `memory.max` or v1 `memory.limit_in_bytes`, the tightest
/// of its own and its ancestors'), so a container's limit is respected. 1 GiB when neither
/// can be read (not Linux); never below 64 MiB.
pub fn default_memory_limit() -> usize {
    const UNKNOWN: u64 = 2 << 30;
    const FLOOR: u64 = 64 << 20;
    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_available(&text));
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let available = [meminfo, cgroup_limit(&cgroups)]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(UNKNOWN);
    usize::try_from((available / 2).max(FLOOR)).unwrap_or(usize::MAX)
}

/// `MemAvailable:  23181144 kB` in `/proc/meminfo`, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemAvailable:"))?;
    let kib: u64 = line.trim().trim_end_matches("kB").trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// The tightest memory limit on the cgroups named in `/proc/self/cgroup` (`cgroups`) and
/// their ancestors, in v2 (`0::/path`, mounted at `/sys/fs/cgroup` or, on hybrid hosts,
/// `/sys/fs/cgroup/unified`) and v1 (`N:memory:/path`). None when there is none.
fn cgroup_limit(cgroups: &str) -> Option<u64> {
    let mut limits = Vec::new();
    for line in cgroups.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next(), fields.next()?, fields.next()?);
        let (mounts, file): (&[&str], &str) = match controllers {
            "" => (&["/sys/fs/cgroup", "/sys/fs/cgroup/unified"], "memory.max"),
            c if c.split(',').any(|c| c == "memory") => {
                (&["/sys/fs/cgroup/memory"], "memory.limit_in_bytes")
            }
            _ => continue,
        };
        for mount in mounts {
            let mut dir = std::path::Path::new(mount).join(path.trim_start_matches('/'));
            loop {
                let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
                limits.extend(parse_cgroup_limit(&text));
                if !dir.pop() || !dir.starts_with(mount) {
                    break;
                }
            }
        }
    }
    limits.into_iter().min()
}

/// A limit file's value; None for `max` (v2) or a value of 2^62 and up (v1's "no limit").
fn parse_cgroup_limit(text: &str) -> Option<u64> {
    text.trim().parse().ok().filter(|bytes| *bytes < 1 << 62)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_available() {
        let meminfo =
            "MemTotal:       32000000 kB\nMemFree:  100 kB\nMemAvailable:   23181144 kB\n";
        assert_eq!(mem_available(meminfo), Some(23_181_144 * 1024));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
        assert_eq!(parse_cgroup_limit("max\n"), None);
        assert_eq!(parse_cgroup_limit("9223372036854771712\n"), None);
        assert_eq!(parse_cgroup_limit("536870912\n"), Some(512 << 20));
        assert_eq!(parse_cgroup_limit(""), None);
        assert!(default_memory_limit() >= 64 << 20);
    }

    #[test]
    fn bounds() {
        let now = DateTime::parse_from_rfc3339("2024-03-10T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().timestamp_micros();
        let cases = [
            ("2024-03-01", false, at("2024-03-01T00:00:00Z")),
            ("2024-03-01", true, at("2024-03-02T00:00:00Z")),
            ("2024-03-01T05:06:07Z", true, at("2024-03-01T05:06:07Z")),
            ("-7d", false, at("2024-03-03T12:00:00Z")),
            ("-12h", false, at("2024-03-10T00:00:00Z")),
            ("30m", false, at("2024-03-10T11:30:00Z")),
            ("-2w", false, at("2024-02-25T12:00:00Z")),
            ("now", true, at("2024-03-10T12:00:00Z")),
        ];
        for (text, end, expected) in cases {
            assert_eq!(
                parse_bound("--from", text, now, end).unwrap(),
                expected,
                "{text}"
            );
        }
        for bad in [
            "yesterday",
            "-7x",
            "2024-13-01",
            "",
            "-99999999d",
            "99999999w",
            "-9223372036854775807s",
        ] {
            assert!(parse_bound("--from", bad, now, false).is_err(), "{bad}");
        }
    }
}
