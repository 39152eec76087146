-- name: source-ips
-- title: Where principals and roles called from
-- description: For each principal (IAM user, root, federated identity, AWS service) and each
--   role (calls made with its sessions), the source IPs its calls came from: calls, failures,
--   first and last time, and user agents.
-- parameters: from, to, account
WITH callers AS (
    SELECT
        CASE WHEN user_type = 'AssumedRole' THEN 'role' ELSE 'principal' END AS kind,
        CASE
            WHEN user_type = 'AssumedRole' THEN coalesce(session_issuer_arn, principal_arn)
            WHEN user_type = 'AWSService' THEN coalesce(invoked_by, principal_id)
            ELSE coalesce(principal_arn, user_name, principal_id, invoked_by)
        END AS identity,
        user_type,
        source_ip_address,
        user_agent,
        event_time,
        error_code
    FROM events
    WHERE source_ip_address IS NOT NULL
)
SELECT
    kind,
    identity,
    source_ip_address,
    count(*) AS calls,
    count(error_code) AS failed_calls,
    min(event_time) AS first_seen,
    max(event_time) AS last_seen,
    array_sort(array_agg(DISTINCT user_agent) FILTER (WHERE user_agent IS NOT NULL)) AS user_agents
FROM callers
WHERE identity IS NOT NULL
GROUP BY kind, identity, source_ip_address
ORDER BY kind, identity, calls DESC, source_ip_address
