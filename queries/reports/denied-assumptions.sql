-- name: denied-assumptions
-- title: Denied and failed assumptions
-- description: Failed credential-issuing STS calls by principal and target role (taken from
--   the error message when AWS logged no request), with the error, attempts, first and last
--   time and source IPs.
SELECT
    caller AS principal,
    caller_type,
    api,
    role_arn AS target_role_arn,
    error_code,
    count(*) AS attempts,
    min(event_time) AS first_seen,
    max(event_time) AS last_seen,
    array_sort(array_agg(DISTINCT source_ip_address) FILTER (WHERE source_ip_address IS NOT NULL)) AS source_ips,
    min(error_message) AS example_message
FROM assumptions
WHERE error_code IS NOT NULL
GROUP BY caller, caller_type, api, role_arn, error_code
ORDER BY attempts DESC, principal, target_role_arn, api, error_code, caller_type
