-- id: fan-out
-- title: One principal or session assuming roles in many accounts in a short time
-- family: 3 (fan-out)
-- severity: high   = the burst reached an account outside the organization, or administrative roles
--                    in $min_fanout_accounts or more accounts
--           medium = otherwise
-- attack: T1078.004 (Valid Accounts: Cloud Accounts), T1021.007 (Remote Services: Cloud Services),
--         T1580 (Cloud Infrastructure Discovery)
-- rationale: an intruder holding one identity walks every account it can reach (lateral movement
--   and discovery across the organization). Automation does this too (inventory, deploy pipelines),
--   so the rule compares with the same principal's own busiest bucket in the baseline: it fires only
--   when a bucket reaches at least $min_fanout_accounts distinct target accounts and more than
--   $fanout_factor x the baseline's busiest bucket. Buckets are $fanout_window_seconds long and
--   computed at two phases (0 and half a bucket), so a burst straddling a boundary is still seen
--   whole; the same buckets are used for baseline and window, so the two are comparable.
--   Failed attempts count (an enumerating intruder fails a lot); successes and failures are reported.
--   One finding per principal per window: the busiest bucket gives the counts, every call of the
--   principal in the window's busiest bucket is evidence.
-- params:
--   fanout_window_seconds: 3600 — length of the buckets target accounts are counted in
--   min_fanout_accounts: 4 — distinct target accounts in one bucket that make a fan-out
--   fanout_factor: 1.5 — a bucket must exceed this times the principal's busiest baseline bucket
--   admin_role_pattern: '(?i)(^|/)(OrganizationAccountAccessRole|AWSControlTowerExecution|AWSReservedSSO_AdministratorAccess[^/]*|[^/]*admin[^/]*)$' — regular expression (Rust syntax) a role ARN matches when it is administrative
-- config: cfg_org_accounts(account_id, name)
-- false_positives: a new inventory/compliance tool or a new deploy pipeline (its first day
--   has no baseline); an engineer's first org-wide change; AWS services (excluded: caller_type AWSService).
-- baseline: the principal's busiest bucket (distinct target accounts) between baseline_start and
--   window_start; a principal with no baseline has 0, so only the absolute floor applies.
WITH internal AS (
    SELECT DISTINCT account_id FROM events WHERE account_id <> 'unknown'
    UNION
    SELECT account_id FROM cfg_org_accounts
),
calls AS (
    SELECT
        a.caller AS principal, a.event_time, a.role_account_id, a.role_arn, a.succeeded, a.event_ids,
        a.caller_account_id, a.source_ip_address, a.caller_access_key_id,
        a.event_time >= $window_start AS in_window,
        CAST(floor(extract(EPOCH FROM a.event_time) / $fanout_window_seconds) AS BIGINT) AS b0,
        CAST(floor((extract(EPOCH FROM a.event_time) + $fanout_window_seconds / 2) / $fanout_window_seconds) AS BIGINT) AS b1
    FROM assumptions AS a
    WHERE a.event_time >= $baseline_start AND a.event_time < $window_end
      AND a.caller IS NOT NULL AND a.role_account_id IS NOT NULL
      AND coalesce(a.caller_type, '') <> 'AWSService'
),
buckets AS (
    SELECT principal, in_window, 0 AS phase, b0 AS bucket, count(DISTINCT role_account_id) AS accounts
    FROM calls GROUP BY principal, in_window, b0
    UNION ALL
    SELECT principal, in_window, 1 AS phase, b1 AS bucket, count(DISTINCT role_account_id) AS accounts
    FROM calls GROUP BY principal, in_window, b1
),
known_targets AS (
    SELECT DISTINCT principal, role_account_id FROM calls WHERE NOT in_window
),
base AS (
    SELECT principal, max(accounts) AS baseline_max_accounts
    FROM buckets WHERE NOT in_window GROUP BY principal
),
win_best AS (
    -- the busiest window bucket per principal (ties: the earliest)
    SELECT principal, phase, bucket, accounts
    FROM (
        SELECT principal, phase, bucket, accounts,
               row_number() OVER (PARTITION BY principal ORDER BY accounts DESC, bucket, phase) AS rn
        FROM buckets WHERE in_window
    ) WHERE rn = 1
),
fired AS (
    SELECT w.principal, w.phase, w.bucket, w.accounts, coalesce(b.baseline_max_accounts, 0) AS baseline_max_accounts
    FROM win_best AS w
    LEFT JOIN base AS b ON b.principal = w.principal
    WHERE w.accounts >= $min_fanout_accounts
      AND w.accounts > $fanout_factor * coalesce(b.baseline_max_accounts, 0)
),
evidence AS (
    SELECT
        f.principal,
        min(c.event_time) AS event_time, max(c.event_time) AS last_event_time,
        max(c.caller_account_id) AS account_id,
        min(c.source_ip_address) AS source_ip_address,
        max(c.caller_access_key_id) AS caller_key,
        array_sort(array_distinct(array_agg(c.role_account_id))) AS target_accounts,
        count(DISTINCT c.role_arn) AS roles,
        count(DISTINCT CASE WHEN regexp_like(c.role_arn, $admin_role_pattern) THEN c.role_account_id END) AS admin_accounts,
        count(DISTINCT CASE WHEN i.account_id IS NULL THEN c.role_account_id END) AS outside_accounts,
        count(DISTINCT CASE WHEN k.role_account_id IS NULL THEN c.role_account_id END) AS new_accounts,
        count(*) AS calls,
        sum(CASE WHEN c.succeeded THEN 0 ELSE 1 END) AS failed_calls,
        array_sort(array_distinct(flatten(array_agg(c.event_ids)))) AS event_ids
    FROM fired AS f
    JOIN calls AS c ON c.principal = f.principal AND c.in_window
        AND (CASE WHEN f.phase = 0 THEN c.b0 ELSE c.b1 END) = f.bucket
    LEFT JOIN internal AS i ON i.account_id = c.role_account_id
    LEFT JOIN known_targets AS k ON k.principal = c.principal AND k.role_account_id = c.role_account_id
    GROUP BY f.principal
)
SELECT
    concat_ws('|', 'fan-out', f.principal, CAST(CAST($window_start AS DATE) AS VARCHAR)) AS finding_key,
    'fan-out' AS rule,
    CASE WHEN e.outside_accounts > 0 THEN 'high'
         WHEN e.new_accounts = 0 THEN 'low'
         WHEN e.admin_accounts >= $min_fanout_accounts THEN 'high'
         ELSE 'medium' END AS severity,
    'One principal assumed roles in many accounts in a short time' AS title,
    concat(f.principal, ' called STS for roles in ', CAST(f.accounts AS VARCHAR), ' accounts within ',
           CAST($fanout_window_seconds AS VARCHAR), ' s (', CAST(e.calls AS VARCHAR), ' calls, ',
           CAST(e.failed_calls AS VARCHAR), ' failed; baseline busiest: ',
           CAST(f.baseline_max_accounts AS VARCHAR), ' accounts)',
           '; ', CAST(e.new_accounts AS VARCHAR), ' account(s) it never reached in the baseline',
           CASE WHEN e.outside_accounts > 0 THEN concat('; ', CAST(e.outside_accounts AS VARCHAR), ' outside the organization') ELSE '' END,
           CASE WHEN e.admin_accounts > 0 THEN concat('; admin roles in ', CAST(e.admin_accounts AS VARCHAR), ' accounts') ELSE '' END) AS summary,
    e.event_time,
    e.last_event_time,
    e.account_id,
    f.principal AS principal_arn,
    CAST(NULL AS VARCHAR) AS role_arn,
    e.source_ip_address,
    CASE WHEN e.caller_key LIKE 'ASIA%' THEN e.caller_key END AS access_key_id,
    e.event_ids,
    make_array('T1078.004', 'T1021.007', 'T1580') AS attack,
    -- details
    f.accounts AS observed_accounts,
    f.baseline_max_accounts,
    greatest(CAST($min_fanout_accounts AS DOUBLE), $fanout_factor * f.baseline_max_accounts) AS threshold_accounts,
    e.target_accounts,
    e.roles,
    e.calls,
    e.failed_calls,
    e.admin_accounts,
    e.outside_accounts,
    e.new_accounts
FROM fired AS f
JOIN evidence AS e ON e.principal = f.principal
ORDER BY e.event_time
