-- name: role-chains
-- title: Role chains
-- description: Sessions that were used to assume further roles: each chain from its origin
--   principal through the roles it went through, its depth, the account boundaries it
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
WHERE chain_depth > 1
GROUP BY origin_principal_arn, origin_type, role_chain, chain_depth, accounts_crossed
ORDER BY chain_depth DESC, sessions DESC, role_chain, origin_principal_arn, origin_type, accounts_crossed
