-- name: source-ips
-- title: Where principals and roles called from
-- description: For each principal (IAM user, root, federated identity, AWS service) and each
--   role (calls made with its sessions), the source IPs its calls came from: calls, failures,
--   first and last time, and user agents. Calls whose identity names nobody are listed under
--   their account, or `(unknown)`, rather than left out.
SELECT
    kind,
    identity,
    source_ip_address,
    sum(calls) AS calls,
    sum(failed_calls) AS failed_calls,
    min(first_seen) AS first_seen,
    max(last_seen) AS last_seen,
    -- caller_sources has one row per user agent already: no DISTINCT aggregate is needed.
    array_sort(array_agg(user_agent) FILTER (WHERE user_agent IS NOT NULL)) AS user_agents
FROM caller_sources
GROUP BY kind, identity, source_ip_address
ORDER BY kind, identity, calls DESC, source_ip_address
