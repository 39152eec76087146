-- name: durations
-- title: Session durations per role
-- description: Per role: sessions issued in the period, the lifetime granted (median and
--   maximum), the longest STS allows for that API, the time the sessions were used (median
--   and maximum, first to last call), the baseline (the longest grant in the baseline days
--   before the period, and how many sessions it holds), and sessions used after expiry.
WITH s AS (
    SELECT role_arn, api, issued_at, effective_duration_seconds, active_seconds,
        used_after_expiration
    FROM sessions
    WHERE role_arn IS NOT NULL
),
period AS (
    SELECT * FROM s WHERE issued_at >= $period_start AND issued_at < $period_end
),
baseline AS (
    SELECT role_arn, count(*) AS baseline_sessions,
        max(effective_duration_seconds) AS baseline_granted_max
    FROM s WHERE issued_at >= $baseline_start AND issued_at < $period_start
    GROUP BY role_arn
)
SELECT
    p.role_arn,
    count(*) AS sessions,
    CAST(round(percentile_cont(0.5) WITHIN GROUP (ORDER BY p.effective_duration_seconds))
        AS BIGINT) AS granted_p50,
    max(p.effective_duration_seconds) AS granted_max,
    max(CASE p.api
        WHEN 'AssumeRoot' THEN 900
        WHEN 'GetSessionToken' THEN 129600
        WHEN 'GetFederationToken' THEN 129600
        ELSE 43200 END) AS allowed_max,
    CAST(round(percentile_cont(0.5) WITHIN GROUP (ORDER BY p.active_seconds)) AS BIGINT)
        AS active_p50,
    max(p.active_seconds) AS active_max,
    coalesce(max(b.baseline_granted_max), 0) AS baseline_granted_max,
    coalesce(max(b.baseline_sessions), 0) AS baseline_sessions,
    count(CASE WHEN p.used_after_expiration THEN 1 END) AS used_after_expiration
FROM period AS p
LEFT JOIN baseline AS b ON b.role_arn = p.role_arn
GROUP BY p.role_arn
ORDER BY sessions DESC, p.role_arn
