-- name: top-principals
-- title: Top principals
-- description: The ten principals with the most credential-issuing STS calls in the period,
--   with how many distinct roles they reached.
SELECT
    caller AS principal,
    count(*) AS calls,
    count(error_code) AS failed,
    count(DISTINCT role_arn) AS roles
FROM assumptions
WHERE event_time >= $period_start AND event_time < $period_end
GROUP BY caller
ORDER BY calls DESC, principal
LIMIT 10
