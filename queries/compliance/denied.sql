-- name: denied
-- title: Denied attempts
-- description: Failed credential-issuing STS calls by principal and target role, with the error,
--   attempts, first and last time, source IPs and one error message.
SELECT
    caller AS principal,
    caller_type,
    api,
    coalesce(role_arn, '') AS target_role_arn,
    error_code,
    count(*) AS attempts,
    min(event_time) AS first_seen,
    max(event_time) AS last_seen,
    array_to_string(array_sort(array_agg(DISTINCT source_ip_address)), ' ') AS source_ips,
    min(error_message) AS example_message
FROM assumptions
WHERE NOT succeeded
  AND event_time >= $period_start AND event_time < $period_end
GROUP BY caller, caller_type, api, role_arn, error_code
ORDER BY attempts DESC, principal, target_role_arn, api, error_code, caller_type
