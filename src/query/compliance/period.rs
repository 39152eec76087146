//! Which span of time a report covers: the one asked for, or by default the last
//! [`DEFAULT_DAYS`] whole UTC days of the lake (the report says which), so that a scheduled run
//! without `--from/--to` covers the same days however late it runs.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;

use crate::query::detect::DetectError;
use crate::query::detect::window::LakeSpan;

/// Days a report covers when neither `--from` nor `--to` is given.
pub const DEFAULT_DAYS: i64 = 30;

/// The period of a report. `end` is exclusive.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Period {
    /// RFC 3339 UTC.
    pub start: String,
    pub end: String,
    /// The start of the baseline the detections and the durations compare with.
    pub baseline_start: String,
    /// `given` (by --from/--to) or `default` (the last 30 days of the lake).
    pub chosen: &'static str,
    /// One sentence saying how the period was chosen.
    pub note: String,
    #[serde(skip)]
    start_time: DateTime<Utc>,
    #[serde(skip)]
    end_time: DateTime<Utc>,
    #[serde(skip)]
    baseline_time: DateTime<Utc>,
}

/// The period from `from`/`to` (microseconds UTC, `to` exclusive) and the lake's span: both
/// given, as given; a missing end is the end of the lake's last day, a missing start
/// [`DEFAULT_DAYS`] before the end.
pub fn plan(span: &LakeSpan, from: Option<i64>, to: Option<i64>) -> Result<Period, DetectError> {
    let lake_end = day_after(span.last)?;
    let end = match to {
        Some(to) => micros(to)?,
        None => lake_end,
    };
    let start = match from {
        Some(from) => micros(from)?,
        None => end - Duration::try_days(DEFAULT_DAYS).unwrap_or_default(),
    };
    if start >= end {
        return Err(DetectError::Window(format!(
            "the period {} .. {} is empty (--from must be before --to)",
            rfc3339(start),
            rfc3339(end)
        )));
    }
    let note = match (from, to) {
        (None, None) => format!(
            "No --from/--to: the last {DEFAULT_DAYS} days of the lake, up to the end of its last day with logs."
        ),
        _ => "The period given by --from/--to.".to_owned(),
    };
    let chosen = match (from, to) {
        (None, None) => "default",
        _ => "given",
    };
    Ok(Period {
        start: rfc3339(start),
        end: rfc3339(end),
        baseline_start: rfc3339(start),
        chosen,
        note,
        start_time: start,
        end_time: end,
        baseline_time: start,
    })
}

impl Period {
    /// The period with the baseline the detections used.
    pub fn with_baseline(mut self, baseline: DateTime<Utc>) -> Period {
        self.baseline_time = baseline;
        self.baseline_start = rfc3339(baseline);
        self
    }

    pub fn start_time(&self) -> DateTime<Utc> {
        self.start_time
    }

    pub fn end_time(&self) -> DateTime<Utc> {
        self.end_time
    }

    pub fn baseline_time(&self) -> DateTime<Utc> {
        self.baseline_time
    }

    pub fn start_micros(&self) -> i64 {
        self.start_time.timestamp_micros()
    }

    pub fn end_micros(&self) -> i64 {
        self.end_time.timestamp_micros()
    }

    /// The period for people: `2024-02-01 00:00 – 2024-03-02 00:00 UTC`.
    pub fn human(&self) -> String {
        let format = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M").to_string();
        format!(
            "{} \u{2013} {} UTC",
            format(self.start_time),
            format(self.end_time)
        )
    }
}

/// Midnight UTC after `time`'s day.
fn day_after(time: DateTime<Utc>) -> Result<DateTime<Utc>, DetectError> {
    time.date_naive()
        .succ_opt()
        .map(|day| day.and_time(chrono::NaiveTime::MIN).and_utc())
        .ok_or_else(|| DetectError::Window(format!("{} is the end of time", rfc3339(time))))
}

fn micros(value: i64) -> Result<DateTime<Utc>, DetectError> {
    DateTime::from_timestamp_micros(value)
        .ok_or_else(|| DetectError::Window(format!("{value} µs is not a time chrono can hold")))
}

pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(last: &str) -> LakeSpan {
        let last: DateTime<Utc> = last.parse().unwrap();
        LakeSpan {
            first: last - Duration::try_days(90).unwrap(),
            last,
            last_day_events: 1,
            day_before_events: 1,
        }
    }

    #[test]
    fn default_is_the_last_thirty_whole_days() {
        let period = plan(&span("2024-03-01T21:58:00Z"), None, None).unwrap();
        assert_eq!(period.start, "2024-02-01T00:00:00Z");
        assert_eq!(period.end, "2024-03-02T00:00:00Z");
        assert_eq!(period.chosen, "default");
    }

    #[test]
    fn given_bounds_are_kept_and_an_empty_period_refused() {
        let from = "2024-02-20T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let period = plan(
            &span("2024-03-01T10:00:00Z"),
            Some(from.timestamp_micros()),
            None,
        );
        let period = period.unwrap();
        assert_eq!(period.start, "2024-02-20T00:00:00Z");
        assert_eq!(period.end, "2024-03-02T00:00:00Z");
        let to = from.timestamp_micros();
        assert!(plan(&span("2024-03-01T10:00:00Z"), Some(to), Some(to)).is_err());
    }
}
