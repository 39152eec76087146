//! Window and baseline planning: which span of time the rules look at (the window) and which
//! span before it they learn normal from (the baseline), clipped to what the lake holds. The
//! times come in as microseconds UTC (the command line parses them); binding them into the
//! rules is `params`.

use arrow::array::{Array, AsArray};
use arrow::datatypes::TimestampMicrosecondType;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use datafusion::execution::context::SessionContext;
use datafusion::prelude::{col, lit};

use super::DetectError;

/// The baseline when neither `--baseline-days` nor the config gives one.
pub const DEFAULT_BASELINE_DAYS: u32 = 30;

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The first and last event time of the lake, and how full its last day is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LakeSpan {
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    /// Events on the last day, and on the day before it (0 when it has none).
    pub last_day_events: u64,
    pub day_before_events: u64,
}

/// What a run looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub start: DateTime<Utc>,
    /// Exclusive.
    pub end: DateTime<Utc>,
    /// `start` minus the baseline days asked for (the rules' lower bound).
    pub baseline_start: DateTime<Utc>,
    pub baseline_days_asked: u32,
    /// Days of the baseline the lake actually holds (fewer when the lake is younger).
    pub baseline_days: f64,
    /// True when the lake starts on a later day than `baseline_start`.
    pub baseline_clipped: bool,
    /// How the window was chosen, for the note on stderr.
    pub chosen: Chosen,
}

/// How the window was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    /// Neither `--from` nor `--to`: the lake's last full day.
    LastFullDay,
    /// `--from` and/or `--to`.
    Given,
}

/// The lake's first and last event time; `None` when it holds no event.
pub async fn lake_span(ctx: &SessionContext) -> Result<Option<LakeSpan>, DetectError> {
    let sql = "SELECT min(event_time), max(event_time) FROM events";
    let batches = ctx.sql(sql).await?.collect().await?;
    let Some(batch) = batches.first().filter(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    let time = |column: usize| {
        let array = batch
            .column(column)
            .as_primitive_opt::<TimestampMicrosecondType>()?;
        (!array.is_null(0)).then(|| DateTime::from_timestamp_micros(array.value(0)))?
    };
    let Some((first, last)) = time(0).zip(time(1)) else {
        return Ok(None);
    };
    let (last_day_events, day_before_events) = last_days_events(ctx, last).await?;
    Ok(Some(LakeSpan {
        first,
        last,
        last_day_events,
        day_before_events,
    }))
}

/// The events of `last`'s day and of the day before, counted by `date` partition.
async fn last_days_events(
    ctx: &SessionContext,
    last: DateTime<Utc>,
) -> Result<(u64, u64), DetectError> {
    let day = last.date_naive();
    let before = day.pred_opt().unwrap_or(day);
    Ok((events_on(ctx, day).await?, events_on(ctx, before).await?))
}

async fn events_on(ctx: &SessionContext, day: NaiveDate) -> Result<u64, DetectError> {
    let date = day.format("%Y-%m-%d").to_string();
    let frame = ctx.table("events").await?;
    let rows = frame.filter(col("date").eq(lit(date)))?.count().await?;
    Ok(rows as u64)
}

/// The window from `from`/`to` (microseconds UTC, `to` exclusive) and the lake's span:
/// both given, as given; only `from`, up to the end of the lake; only `to`, the day before
/// it; neither, the last full day of the lake: the last day that holds events, or the one
/// before it when that day is today (still being written) or holds less than half the events
/// of the day before (the tail of sessions that ran past midnight, or a partial delivery).
pub fn plan(
    span: LakeSpan,
    from: Option<i64>,
    to: Option<i64>,
    baseline_days: u32,
    now: DateTime<Utc>,
) -> Result<Window, DetectError> {
    let (start, end, chosen) = match (from, to) {
        (None, None) => {
            let (start, end) = last_full_day(&span, now);
            (start, end, Chosen::LastFullDay)
        }
        (from, to) => {
            let end = match to {
                Some(to) => micros(to)?,
                None => span.last + Duration::microseconds(1),
            };
            let start = match from {
                Some(from) => micros(from)?,
                None => shifted(end, -1)?,
            };
            (start, end, Chosen::Given)
        }
    };
    if start >= end {
        return Err(DetectError::Window(format!(
            "the window {} .. {} is empty (--from must be before --to and the end of the lake)",
            start.to_rfc3339(),
            end.to_rfc3339()
        )));
    }
    let baseline_start = shifted(start, -i64::from(baseline_days))?;
    let held_from = baseline_start.max(span.first).min(start);
    let held = (start - held_from).num_microseconds().unwrap_or(0);
    // By day: a lake starting seconds after midnight holds that day.
    let baseline_clipped = span.first.date_naive() > baseline_start.date_naive();
    Ok(Window {
        start,
        end,
        baseline_start,
        baseline_days_asked: baseline_days,
        baseline_days: held as f64 / MICROS_PER_DAY as f64,
        baseline_clipped,
        chosen,
    })
}

/// `time` moved by `days` (back when negative), or an error when that leaves chrono's range
/// (a `--baseline-days` of millions).
fn shifted(time: DateTime<Utc>, days: i64) -> Result<DateTime<Utc>, DetectError> {
    Duration::try_days(days)
        .and_then(|delta| time.checked_add_signed(delta))
        .ok_or_else(|| {
            DetectError::Window(format!(
                "{days} days from {} is out of range",
                time.to_rfc3339()
            ))
        })
}

fn micros(value: i64) -> Result<DateTime<Utc>, DetectError> {
    DateTime::from_timestamp_micros(value)
        .ok_or_else(|| DetectError::Window(format!("{value} µs is out of range")))
}

/// The last full day of the lake (see [`plan`]).
fn last_full_day(span: &LakeSpan, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let mut day = span.last.date_naive();
    let partial = span.last_day_events.saturating_mul(2) < span.day_before_events;
    if day >= now.date_naive() || partial {
        day = day.pred_opt().unwrap_or(day);
    }
    let midnight = |day: NaiveDate| day.and_time(NaiveTime::MIN).and_utc();
    let start = midnight(day);
    // The last representable day has no next one: an empty window, refused by the caller.
    (start, day.succ_opt().map_or(start, midnight))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn span() -> LakeSpan {
        LakeSpan {
            first: at("2025-06-01T00:10:00Z"),
            last: at("2025-06-08T17:00:00Z"),
            last_day_events: 900,
            day_before_events: 1000,
        }
    }

    #[test]
    fn default_is_the_last_full_day_with_the_baseline_held() {
        let window = plan(span(), None, None, 30, at("2025-07-01T00:00:00Z")).unwrap();
        assert_eq!(window.start, at("2025-06-08T00:00:00Z"));
        assert_eq!(window.end, at("2025-06-09T00:00:00Z"));
        assert_eq!(window.baseline_start, at("2025-05-09T00:00:00Z"));
        assert!((window.baseline_days - (7.0 - 10.0 / 1440.0)).abs() < 1e-9);
        assert_eq!(window.chosen, Chosen::LastFullDay);
    }

    #[test]
    fn today_is_not_a_full_day() {
        let window = plan(span(), None, None, 30, at("2025-06-08T18:00:00Z")).unwrap();
        assert_eq!(window.start, at("2025-06-07T00:00:00Z"));
    }

    #[test]
    fn a_thin_last_day_is_not_a_full_day() {
        let thin = LakeSpan {
            last_day_events: 400,
            ..span()
        };
        let window = plan(thin, None, None, 30, at("2025-07-01T00:00:00Z")).unwrap();
        assert_eq!(window.start, at("2025-06-07T00:00:00Z"));
        assert!(window.baseline_clipped);
    }

    #[test]
    fn from_alone_runs_to_the_end_of_the_lake() {
        let from = at("2025-06-05T00:00:00Z").timestamp_micros();
        let window = plan(span(), Some(from), None, 2, at("2025-07-01T00:00:00Z")).unwrap();
        assert_eq!(window.end, span().last + Duration::microseconds(1));
        assert_eq!(window.baseline_days, 2.0);
        let late = at("2025-06-09T00:00:00Z").timestamp_micros();
        assert!(plan(span(), Some(late), None, 2, Utc::now()).is_err());
    }
}
