-- name: role-assumptions
-- title: Who assumed which roles
-- description: Each principal and the roles it assumed or tried to assume, per STS API: how
--   many calls, how many failed, first and last time, and the source IPs it called from.
SELECT
    caller AS principal,
    caller_type,
    role_arn,
    role_account_id,
    api,
    count(*) AS assumptions,
    count(error_code) AS failed,
    min(event_time) AS first_seen,
    max(event_time) AS last_seen,
    count(DISTINCT source_ip_address) AS distinct_ips,
    array_sort(array_agg(DISTINCT source_ip_address) FILTER (WHERE source_ip_address IS NOT NULL)) AS source_ips
FROM assumptions
GROUP BY caller, caller_type, role_arn, role_account_id, api
ORDER BY assumptions DESC, principal, role_arn, api, caller_type, role_account_id
