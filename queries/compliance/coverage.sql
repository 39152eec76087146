-- name: coverage
-- title: Coverage of the logs
-- description: Per account that logged in the period: the regions it logged in, the days it
--   has logs for, the log files the records came from, the records, and the first and last
--   event. The period's totals are the last row (account `(all)`).
WITH e AS (
    SELECT account_id, aws_region, date, source_file, event_time
    FROM events
    WHERE date >= $period_start_date AND date <= $period_end_date
      AND event_time >= $period_start AND event_time < $period_end
)
SELECT * FROM (
    SELECT
        account_id,
        count(DISTINCT aws_region) AS regions,
        count(DISTINCT date) AS days,
        count(DISTINCT source_file) AS files,
        count(*) AS records,
        min(event_time) AS first_event,
        max(event_time) AS last_event
    FROM e
    GROUP BY account_id
    UNION ALL
    SELECT
        '(all)' AS account_id,
        count(DISTINCT aws_region),
        count(DISTINCT date),
        count(DISTINCT source_file),
        count(*),
        min(event_time),
        max(event_time)
    FROM e
) AS coverage
ORDER BY account_id = '(all)', account_id
