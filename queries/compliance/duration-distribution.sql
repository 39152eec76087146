-- name: duration-distribution
-- title: Duration distribution per role
-- description: Sessions issued in the period per role and lifetime granted: up to 15 minutes,
--   1 hour, 4 hours, 12 hours, and longer.
SELECT
    role_arn,
    count(CASE WHEN effective_duration_seconds <= 900 THEN 1 END) AS up_to_15m,
    count(CASE WHEN effective_duration_seconds > 900
        AND effective_duration_seconds <= 3600 THEN 1 END) AS up_to_1h,
    count(CASE WHEN effective_duration_seconds > 3600
        AND effective_duration_seconds <= 14400 THEN 1 END) AS up_to_4h,
    count(CASE WHEN effective_duration_seconds > 14400
        AND effective_duration_seconds <= 43200 THEN 1 END) AS up_to_12h,
    count(CASE WHEN effective_duration_seconds > 43200 THEN 1 END) AS longer,
    count(CASE WHEN effective_duration_seconds IS NULL THEN 1 END) AS unknown
FROM sessions
WHERE role_arn IS NOT NULL
  AND issued_at >= $period_start AND issued_at < $period_end
GROUP BY role_arn
ORDER BY count(*) DESC, role_arn
