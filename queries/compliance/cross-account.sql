-- name: cross-account
-- title: Cross-account access matrix
-- description: Source account x target account for every assumption across accounts. A source
--   account is trusted when the config lists it in [[accounts.trusted]], internal when the lake
--   holds its logs or the config lists it in the organization, external (untrusted) otherwise.
WITH internal AS (
    SELECT DISTINCT account_id FROM events
    UNION
    SELECT account_id FROM cfg_org_accounts
),
trusted AS (
    SELECT DISTINCT account_id FROM cfg_trusted_accounts
)
SELECT
    a.caller_account_id AS source_account_id,
    a.role_account_id AS target_account_id,
    CASE
        WHEN t.account_id IS NOT NULL THEN 'trusted'
        WHEN i.account_id IS NOT NULL THEN 'internal'
        ELSE 'external'
    END AS source_class,
    count(*) AS assumptions,
    count(a.error_code) AS failed,
    count(DISTINCT a.caller) AS principals,
    count(DISTINCT a.role_arn) AS roles,
    array_to_string(array_sort(array_agg(DISTINCT a.role_arn)), ' ') AS role_arns
FROM assumptions AS a
LEFT JOIN trusted AS t ON t.account_id = a.caller_account_id
LEFT JOIN internal AS i ON i.account_id = a.caller_account_id
WHERE a.is_cross_account
  AND a.event_time >= $period_start AND a.event_time < $period_end
GROUP BY a.caller_account_id, a.role_account_id, t.account_id, i.account_id
ORDER BY source_account_id, target_account_id, source_class
