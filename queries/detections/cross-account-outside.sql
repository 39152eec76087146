-- id: cross-account-outside
-- title: Role assumed from an account outside the organization, or by a new (source account, role) pair
-- family: 2 (cross-account from outside)
-- severity: critical = an outside, untrusted account into an administrative role
--           high     = an outside, untrusted account not seen doing this in the baseline
--           medium   = a trusted (configured) account without an external ID it used to give, or into a
--                      role it never assumed; an org account newly into an administrative role
--           low      = an outside account that did the same thing in the baseline with an external ID
--                      (a de-facto vendor missing from the config); a new pair between org accounts
-- attack: T1078.004 (Valid Accounts: Cloud Accounts), T1199 (Trusted Relationship)
-- rationale: cross-account trust is the path attackers use to come back (a backdoored trust
--   policy naming their own account) and the path third parties use legitimately. Accounts whose
--   logs are in the lake, plus cfg_org_accounts, are internal; cfg_trusted_accounts names vendors.
--   A trusted vendor with its external ID doing what it did in the baseline is silent.
--   One finding per (source account, role) in the window; failed calls are left to denied-burst.
-- params:
--   admin_role_pattern: '(?i)(^|/)(OrganizationAccountAccessRole|AWSControlTowerExecution|AWSReservedSSO_AdministratorAccess[^/]*|[^/]*admin[^/]*)$' — regular expression (Rust syntax) a role ARN matches when it is administrative
-- config: cfg_org_accounts(account_id, name), cfg_trusted_accounts(account_id, name)
-- false_positives: a new vendor onboarded in the window (add it to trusted_accounts); an org
--   account whose logs are not in the lake and that is not in org_accounts; a new cross-account
--   pipeline between org accounts (low).
-- baseline: (source account, role ARN) pairs that succeeded between baseline_start and window_start,
--   with whether an external ID was given. With no baseline every pair is new: outside accounts
--   still rank high, internal ones stay low.
WITH internal AS (
    SELECT DISTINCT account_id FROM events WHERE account_id <> 'unknown'
    UNION
    SELECT account_id FROM cfg_org_accounts
),
x AS (
    SELECT *
    FROM assumptions
    WHERE succeeded AND is_cross_account
      AND event_time >= $baseline_start AND event_time < $window_end
),
baseline AS (
    SELECT caller_account_id, role_arn, count(*) AS n,
           bool_or(external_id IS NOT NULL) AS with_external_id,
           bool_or(external_id IS NULL) AS without_external_id
    FROM x
    WHERE event_time < $window_start
    GROUP BY caller_account_id, role_arn
),
win AS (
    SELECT
        caller_account_id, role_arn,
        min(event_time) AS event_time, max(event_time) AS last_event_time,
        max(role_account_id) AS account_id,
        min(caller) AS principal_arn,
        count(DISTINCT caller) AS callers,
        min(source_ip_address) AS source_ip_address,
        count(DISTINCT source_ip_address) AS source_ips,
        min(issued_access_key_id) AS access_key_id,
        count(*) AS calls,
        sum(CASE WHEN external_id IS NULL THEN 1 ELSE 0 END) AS calls_without_external_id,
        array_sort(array_distinct(flatten(array_agg(event_ids)))) AS event_ids
    FROM x
    WHERE event_time >= $window_start
    GROUP BY caller_account_id, role_arn
),
classified AS (
    SELECT
        w.*,
        i.account_id IS NOT NULL AS is_internal,
        t.account_id IS NOT NULL AS is_trusted,
        t.name AS trusted_name,
        b.n AS baseline_calls,
        coalesce(b.with_external_id, false) AS baseline_with_external_id,
        coalesce(b.without_external_id, false) AS baseline_without_external_id,
        regexp_like(w.role_arn, $admin_role_pattern) AS admin_role
    FROM win AS w
    LEFT JOIN internal AS i ON i.account_id = w.caller_account_id
    LEFT JOIN cfg_trusted_accounts AS t ON t.account_id = w.caller_account_id
    LEFT JOIN baseline AS b ON b.caller_account_id = w.caller_account_id AND b.role_arn = w.role_arn
),
scored AS (
    SELECT
        c.*,
        CASE
            WHEN NOT c.is_internal AND NOT c.is_trusted THEN
                CASE
                    WHEN c.admin_role THEN 'critical'
                    WHEN c.baseline_calls IS NOT NULL AND c.calls_without_external_id = 0
                         AND c.baseline_with_external_id AND NOT c.baseline_without_external_id THEN 'low'
                    ELSE 'high'
                END
            WHEN c.is_trusted AND NOT c.is_internal THEN
                CASE
                    WHEN c.baseline_calls IS NULL THEN CASE WHEN c.calls_without_external_id = 0 THEN 'low' ELSE 'medium' END
                    WHEN c.calls_without_external_id > 0 AND NOT c.baseline_without_external_id THEN 'medium'
                    ELSE NULL
                END
            ELSE -- internal
                CASE
                    WHEN c.baseline_calls IS NOT NULL THEN NULL
                    WHEN c.admin_role THEN 'medium'
                    ELSE 'low'
                END
        END AS severity,
        CASE
            WHEN NOT c.is_internal AND NOT c.is_trusted THEN 'outside-untrusted'
            WHEN c.is_trusted AND NOT c.is_internal THEN 'trusted-external'
            ELSE 'internal'
        END AS source_kind
    FROM classified AS c
)
SELECT
    concat_ws('|', 'cross-account-outside', s.caller_account_id, s.role_arn) AS finding_key,
    'cross-account-outside' AS rule,
    s.severity,
    CASE s.source_kind
        WHEN 'outside-untrusted' THEN 'Role assumed from an account outside the organization'
        WHEN 'trusted-external' THEN 'Trusted external account assumed a role in a new way'
        ELSE 'New cross-account (source account, role) pair'
    END AS title,
    concat('Account ', s.caller_account_id,
           CASE WHEN s.trusted_name IS NOT NULL THEN concat(' (', s.trusted_name, ')') ELSE '' END,
           ' [', s.source_kind, '] assumed ', s.role_arn, ' ', CAST(s.calls AS VARCHAR), ' time(s)',
           CASE WHEN s.calls_without_external_id > 0 THEN concat(', ', CAST(s.calls_without_external_id AS VARCHAR), ' without external ID') ELSE ', with external ID' END,
           CASE WHEN s.baseline_calls IS NULL THEN '; pair not seen in the baseline' ELSE concat('; ', CAST(s.baseline_calls AS VARCHAR), ' call(s) in the baseline') END,
           CASE WHEN s.admin_role THEN '; administrative role' ELSE '' END) AS summary,
    s.event_time,
    s.last_event_time,
    s.account_id,
    s.principal_arn,
    s.role_arn,
    s.source_ip_address,
    s.access_key_id,
    s.event_ids,
    make_array('T1078.004', 'T1199') AS attack,
    -- details
    s.caller_account_id AS source_account_id,
    s.source_kind,
    s.trusted_name,
    s.admin_role,
    s.calls,
    s.callers,
    s.source_ips,
    s.calls_without_external_id,
    coalesce(s.baseline_calls, 0) AS baseline_calls,
    s.baseline_with_external_id
FROM scored AS s
WHERE s.severity IS NOT NULL
ORDER BY s.event_time
