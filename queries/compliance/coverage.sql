-- name: coverage
-- title: Coverage of the logs
-- description: Per account that logged in the period: the regions it logged in, the days it
--   has logs for, the log files the records came from, the records, how many of them come
--   from log files whose integrity `sts-audit verify --lake` proved (their digest verified and
--   their SHA-256 matched) and their share in percent, and the first and last event. The
--   period's totals are the last row (account `(all)`).
WITH e AS (
    SELECT account_id, aws_region, date, source_file, event_time
    FROM events
    WHERE date >= $period_start_date AND date <= $period_end_date
      AND event_time >= $period_start AND event_time < $period_end
),
newest AS (
    SELECT source_file, status,
        row_number() OVER (PARTITION BY source_file ORDER BY verified_at DESC) AS copy
    FROM verified
    WHERE kind = 'log'
),
proven AS (
    SELECT source_file FROM newest WHERE copy = 1 AND status = 'valid'
),
ev AS (
    SELECT e.*, CASE WHEN p.source_file IS NULL THEN 0 ELSE 1 END AS proven
    FROM e LEFT JOIN proven AS p ON e.source_file = p.source_file
)
SELECT * FROM (
    SELECT
        account_id,
        count(DISTINCT aws_region) AS regions,
        count(DISTINCT date) AS days,
        count(DISTINCT source_file) AS files,
        count(*) AS records,
        sum(proven) AS verified_records,
        round(100.0 * sum(proven) / count(*), 1) AS verified_percent,
        min(event_time) AS first_event,
        max(event_time) AS last_event
    FROM ev
    GROUP BY account_id
    UNION ALL
    SELECT
        '(all)' AS account_id,
        count(DISTINCT aws_region),
        count(DISTINCT date),
        count(DISTINCT source_file),
        count(*),
        sum(proven),
        round(100.0 * sum(proven) / count(*), 1),
        min(event_time),
        max(event_time)
    FROM ev
) AS coverage
ORDER BY account_id = '(all)', account_id
