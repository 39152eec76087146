//! The CloudTrail key layout: `AWSLogs/[<o-id>/]<account>/<CloudTrail|CloudTrail-Digest|
//! CloudTrail-Insight>/<region>/YYYY/MM/DD/<file>`, read from a path or any prefix of one, so a
//! folder can be pruned before it is walked. The account in a path only prunes; records carry
//! their own `recipientAccountId`, which is what the lake trusts.

use chrono::{Days, NaiveDate};

use crate::lake::scope::Scope;

/// Which CloudTrail folder a key is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrailFolder {
    Events,
    Digest,
    Insight,
    Other,
}

/// What a (possibly partial) path says about the logs below it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogKey {
    pub org_id: Option<String>,
    pub account: Option<String>,
    pub folder: Option<TrailFolder>,
    pub region: Option<String>,
    pub year: Option<i32>,
    pub month: Option<u32>,
    pub day: Option<u32>,
}

/// Reads the layout from path components (`/` or `\` separated); None when there is no `AWSLogs`.
pub fn parse(path: &str) -> Option<LogKey> {
    let parts: Vec<&str> = path.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
    let start = parts.iter().rposition(|part| *part == "AWSLogs")? + 1;
    let mut rest = parts[start..].iter().copied();
    let mut key = LogKey::default();
    let mut next = rest.next();
    if let Some(org) = next.filter(|part| part.starts_with("o-")) {
        key.org_id = Some(org.to_owned());
        next = rest.next();
    }
    key.account = next.map(str::to_owned);
    key.folder = rest.next().map(|folder| match folder {
        "CloudTrail" => TrailFolder::Events,
        "CloudTrail-Digest" => TrailFolder::Digest,
        "CloudTrail-Insight" => TrailFolder::Insight,
        _ => TrailFolder::Other,
    });
    key.region = rest.next().map(str::to_owned);
    key.year = rest.next().and_then(|p| p.parse().ok());
    key.month = rest.next().and_then(|p| p.parse().ok());
    key.day = rest.next().and_then(|p| p.parse().ok());
    Some(key)
}

impl LogKey {
    /// The delivery dates a (partial) date folder can hold, inclusive; None without a year.
    pub fn delivery_dates(&self) -> Option<(NaiveDate, NaiveDate)> {
        let year = self.year?;
        let Some(month) = self.month else {
            return Some((
                NaiveDate::from_ymd_opt(year, 1, 1)?,
                NaiveDate::from_ymd_opt(year, 12, 31)?,
            ));
        };
        let first = NaiveDate::from_ymd_opt(year, month, 1)?;
        match self.day {
            Some(day) => {
                let date = NaiveDate::from_ymd_opt(year, month, day)?;
                Some((date, date))
            }
            None => {
                let last = first
                    .checked_add_months(chrono::Months::new(1))?
                    .pred_opt()?;
                Some((first, last))
            }
        }
    }
}

impl Scope {
    /// False when nothing under `key` can be in scope. Delivery folders are dated when the file
    /// was written, which can be after the event: one day of slack on both sides.
    pub fn may_contain(&self, key: &LogKey) -> bool {
        let listed = |list: &[String], value: &Option<String>| {
            list.is_empty() || value.as_ref().is_none_or(|v| list.contains(v))
        };
        if !listed(&self.accounts, &key.account) || !listed(&self.regions, &key.region) {
            return false;
        }
        let Some((first, last)) = key.delivery_dates() else {
            return true;
        };
        let day =
            |micros: i64| chrono::DateTime::from_timestamp_micros(micros).map(|t| t.date_naive());
        let after_range = self
            .to
            .and_then(|to| day(to - 1))
            .and_then(|d| d.checked_add_days(Days::new(1)))
            .is_some_and(|latest| first > latest);
        let before_range = self
            .from
            .and_then(day)
            .and_then(|d| d.checked_sub_days(Days::new(1)))
            .is_some_and(|earliest| last < earliest);
        !(after_range || before_range)
    }
}

/// The delivery time in a CloudTrail file name, `<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<id>`
/// (as text: it sorts in time order).
pub fn delivery_stamp(file_name: &str) -> Option<&str> {
    file_name.split('_').find(|part| {
        let bytes = part.as_bytes();
        bytes.len() == 14
            && bytes[8] == b'T'
            && bytes[13] == b'Z'
            && bytes[..8]
                .iter()
                .chain(&bytes[9..13])
                .all(u8::is_ascii_digit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let key =
            parse("x/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/f.json.gz").unwrap();
        assert_eq!(key.account.as_deref(), Some("111122223333"));
        assert_eq!(key.folder, Some(TrailFolder::Events));
        assert_eq!(key.region.as_deref(), Some("us-east-1"));
        assert_eq!(
            (key.year, key.month, key.day),
            (Some(2024), Some(3), Some(1))
        );

        let org = parse("AWSLogs/o-abc123/222233334444/CloudTrail-Digest/eu-west-1/2024").unwrap();
        assert_eq!(org.org_id.as_deref(), Some("o-abc123"));
        assert_eq!(org.account.as_deref(), Some("222233334444"));
        assert_eq!(org.folder, Some(TrailFolder::Digest));
        assert_eq!(org.month, None);

        assert_eq!(parse("logs/2024/03/01/f.json"), None);
        assert_eq!(parse("AWSLogs").unwrap(), LogKey::default());
    }

    #[test]
    fn delivery_stamps_come_from_cloudtrail_file_names() {
        let name = "111122223333_CloudTrail_eu-west-1_20240301T0005Z_aBcD1234eFgH5678.json.gz";
        assert_eq!(delivery_stamp(name), Some("20240301T0005Z"));
        assert_eq!(delivery_stamp("export_2024-03-01.jsonl"), None);
        assert_eq!(delivery_stamp("a_20240301X0005Z_b.json"), None);
    }

    #[test]
    fn pruning() {
        let at = |d: &str| {
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp_micros()
        };
        let scope = Scope {
            from: Some(at("2024-03-10")),
            to: Some(at("2024-03-12")),
            accounts: vec!["111122223333".into()],
            regions: vec![],
        };
        let cases = [
            ("AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/09", true),
            (
                "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/08",
                false,
            ),
            ("AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/12", true),
            (
                "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/13",
                false,
            ),
            ("AWSLogs/111122223333/CloudTrail/us-east-1/2024/02", false),
            ("AWSLogs/111122223333/CloudTrail/us-east-1/2024", true),
            ("AWSLogs/111122223333/CloudTrail/us-east-1/2023", false),
            ("AWSLogs/999999999999/CloudTrail", false),
            (
                "AWSLogs/o-x/111122223333/CloudTrail/us-east-1/2024/03/10",
                true,
            ),
            ("AWSLogs", true),
        ];
        for (path, expected) in cases {
            assert_eq!(scope.may_contain(&parse(path).unwrap()), expected, "{path}");
        }
    }
}
