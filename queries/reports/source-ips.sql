-- name: source-ips
-- title: Where principals and roles called from
-- description: For each principal (IAM user, root, federated identity, AWS service) and each
--   role (calls made with its sessions), the source IPs its calls came from: calls, failures,
--   first and last time, and user agents. Calls whose identity names nobody are listed under
--   their account, or `(unknown)`, rather than left out.
-- parameters: from, to, account
WITH per_agent AS (
    -- Two plain GROUP BYs: first per caller, IP and user agent, then per caller and IP, so the
    -- user agents are collected once per distinct agent instead of through a DISTINCT aggregate
    -- that keeps a hash set per group.
    SELECT
        CASE WHEN user_type = 'AssumedRole' THEN 'role' ELSE 'principal' END AS kind,
        coalesce(
            CASE
                WHEN user_type = 'AssumedRole' THEN coalesce(session_issuer_arn, principal_arn)
                WHEN user_type = 'AWSService' THEN coalesce(invoked_by, principal_id)
                ELSE coalesce(principal_arn, user_name, principal_id, invoked_by)
            END,
            principal_account_id,
            '(unknown)'
        ) AS identity,
        source_ip_address,
        user_agent,
        count(*) AS calls,
        count(error_code) AS failed_calls,
        min(event_time) AS first_seen,
        max(event_time) AS last_seen
    FROM events
    WHERE source_ip_address IS NOT NULL
    GROUP BY 1, 2, source_ip_address, user_agent
)
SELECT
    kind,
    identity,
    source_ip_address,
    sum(calls) AS calls,
    sum(failed_calls) AS failed_calls,
    min(first_seen) AS first_seen,
    max(last_seen) AS last_seen,
    array_sort(array_agg(user_agent) FILTER (WHERE user_agent IS NOT NULL)) AS user_agents
FROM per_agent
GROUP BY kind, identity, source_ip_address
ORDER BY kind, identity, calls DESC, source_ip_address
