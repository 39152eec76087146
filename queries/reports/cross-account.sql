-- name: cross-account
-- title: Cross-account role assumptions
-- description: Source account -> target account -> role for every assumption across accounts.
--   A source account is internal when the lake holds its logs, external otherwise (a vendor,
--   a partner, or an account outside the organization).
WITH lake_accounts AS (
    SELECT DISTINCT account_id FROM events
)
SELECT
    a.caller_account_id AS source_account_id,
    CASE WHEN l.account_id IS NULL THEN 'external' ELSE 'internal' END AS source,
    a.role_account_id AS target_account_id,
    a.role_arn,
    count(*) AS assumptions,
    count(a.error_code) AS failed,
    count(DISTINCT a.caller) AS principal_count,
    array_sort(array_agg(DISTINCT a.caller)) AS principals,
    min(a.event_time) AS first_seen,
    max(a.event_time) AS last_seen
FROM assumptions AS a
LEFT JOIN lake_accounts AS l ON l.account_id = a.caller_account_id
WHERE a.is_cross_account
GROUP BY a.caller_account_id, l.account_id, a.role_account_id, a.role_arn
ORDER BY source DESC, assumptions DESC, source_account_id, role_arn, target_account_id
