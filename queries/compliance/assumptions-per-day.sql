-- name: assumptions-per-day
-- title: Assumptions per day
-- description: Credential-issuing STS calls per UTC day of the period: succeeded and failed.
SELECT
    to_char(event_time, '%Y-%m-%d') AS day,
    count(CASE WHEN succeeded THEN 1 END) AS succeeded,
    count(CASE WHEN NOT succeeded THEN 1 END) AS failed
FROM assumptions
WHERE event_time >= $period_start AND event_time < $period_end
GROUP BY 1
ORDER BY day
