-- name: gaps
-- title: Gaps in the logs
-- description: Account-days without a single record while other accounts of the lake logged
--   that day (a trail stopped, a delivery lost, or an account idle): for each, how many accounts
--   logged that day and how many records they hold.
WITH e AS (
    SELECT account_id, date
    FROM events
    WHERE date >= $period_start_date AND date <= $period_end_date
      AND event_time >= $period_start AND event_time < $period_end
),
logged AS (
    SELECT account_id, date, count(*) AS records FROM e GROUP BY account_id, date
),
days AS (
    SELECT date, count(*) AS accounts_logging, sum(records) AS records_that_day
    FROM logged GROUP BY date
),
accounts AS (
    SELECT DISTINCT account_id FROM logged
)
SELECT a.account_id, d.date, d.accounts_logging, d.records_that_day
FROM accounts AS a
CROSS JOIN days AS d
LEFT JOIN logged AS l ON l.account_id = a.account_id AND l.date = d.date
WHERE l.account_id IS NULL
ORDER BY d.date, a.account_id
