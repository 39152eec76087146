-- name: role-chains
-- title: Role chains
-- description: Sessions used to assume further roles, issued in the period: each chain from its
--   origin principal through the roles it went through, its depth, the account boundaries it
--   crossed, and how often and when it was taken.
SELECT
    origin_principal_arn,
    origin_type,
    role_chain,
    chain_depth,
    accounts_crossed,
    count(*) AS sessions,
    min(issued_at) AS first_seen,
    max(issued_at) AS last_seen
FROM sessions
WHERE chain_depth >= 2
  AND issued_at >= $period_start AND issued_at < $period_end
GROUP BY origin_principal_arn, origin_type, role_chain, chain_depth, accounts_crossed
ORDER BY chain_depth DESC, sessions DESC, origin_principal_arn, role_chain, origin_type,
    accounts_crossed
