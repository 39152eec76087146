-- name: session-durations
-- title: How long role sessions last
-- description: Per role: sessions, the lifetime requested, the lifetime granted (effective) and
--   the time the sessions were actually used (first to last call), as median, 95th percentile
--   and maximum in seconds, and sessions used after their credentials expired.
SELECT
    role_arn,
    count(*) AS sessions,
    count(first_used) AS used_sessions,
    CAST(round(percentile_cont(0.5) WITHIN GROUP (ORDER BY requested_duration_seconds)) AS BIGINT)
        AS requested_p50,
    max(requested_duration_seconds) AS requested_max,
    CAST(round(percentile_cont(0.5) WITHIN GROUP (ORDER BY effective_duration_seconds)) AS BIGINT)
        AS effective_p50,
    CAST(round(percentile_cont(0.95) WITHIN GROUP (ORDER BY effective_duration_seconds)) AS BIGINT)
        AS effective_p95,
    max(effective_duration_seconds) AS effective_max,
    CAST(round(percentile_cont(0.5) WITHIN GROUP (ORDER BY active_seconds)) AS BIGINT)
        AS active_p50,
    CAST(round(percentile_cont(0.95) WITHIN GROUP (ORDER BY active_seconds)) AS BIGINT)
        AS active_p95,
    max(active_seconds) AS active_max,
    count(CASE WHEN used_after_expiration THEN 1 END) AS used_after_expiration
FROM sessions
WHERE role_arn IS NOT NULL
GROUP BY role_arn
ORDER BY sessions DESC, role_arn
