-- id: denied-burst
-- title: One principal failing STS calls against several roles or accounts in a short time
-- family: 5 (denied bursts / enumeration)
-- severity: high   = the failures span several accounts, or hit an account outside the organization
--                    or administrative roles
--           medium = several roles in one account
-- attack: T1580 (Cloud Infrastructure Discovery), T1087.004 (Account Discovery: Cloud Account),
--         T1078.004 (Valid Accounts: Cloud Accounts)
-- rationale: an intruder with one identity probes which roles it can assume (pacu
--   iam__enum_roles, role-guessing across accounts); each miss is an AccessDenied STS call. Failed
--   calls are exactly what Tailpipe-style `error_code IS NULL` filters throw away. Calls logged
--   without requestParameters still count: the assumptions view takes the role from errorMessage,
--   and when even that is missing the target is the API name (GetFederationToken/GetSessionToken/
--   AssumeRoot have no role). Buckets of $burst_window_seconds at two phases (as in fan-out); the
--   principal's busiest baseline bucket raises the bar for automation that always fails a bit.
--   One finding per principal per window; every failed call of the busiest bucket is evidence.
-- params:
--   burst_window_seconds: 900 — length of the buckets failed calls are counted in
--   min_denied_targets: 3 — distinct failed targets (roles, or APIs without a role) in one bucket that make a burst
--   admin_role_pattern: '(?i)(^|/)(OrganizationAccountAccessRole|AWSControlTowerExecution|AWSReservedSSO_AdministratorAccess[^/]*|[^/]*admin[^/]*)$' — regular expression (Rust syntax) a role ARN matches when it is administrative
-- config: cfg_org_accounts(account_id, name)
-- false_positives: a deploy tool retrying while IAM propagates a new trust policy (Stratus and
--   Terraform show this: AccessDenied then success on the same role within seconds; failures on
--   roles that then succeed count as "retried" and lower the severity to low when all are retried);
--   a misconfigured pipeline after a role rename (its baseline then learns it).
-- baseline: the principal's busiest bucket of distinct failed targets before the window; the rule
--   needs max(min_denied_targets, baseline + 1) targets.
WITH internal AS (
    SELECT DISTINCT account_id FROM events WHERE account_id <> 'unknown'
    UNION
    SELECT account_id FROM cfg_org_accounts
),
fails AS (
    SELECT
        coalesce(a.caller, a.caller_access_key_id, a.source_ip_address) AS principal,
        a.event_time, a.api, a.role_arn, a.role_account_id, a.event_ids, a.error_code,
        a.caller_account_id, a.source_ip_address, a.caller_access_key_id,
        coalesce(a.role_arn, concat('api:', a.api)) AS target,
        a.event_time >= $window_start AS in_window,
        CAST(floor(extract(EPOCH FROM a.event_time) / $burst_window_seconds) AS BIGINT) AS b0,
        CAST(floor((extract(EPOCH FROM a.event_time) + $burst_window_seconds / 2) / $burst_window_seconds) AS BIGINT) AS b1
    FROM assumptions AS a
    WHERE NOT a.succeeded
      AND a.event_time >= $baseline_start AND a.event_time < $window_end
),
buckets AS (
    SELECT principal, in_window, 0 AS phase, b0 AS bucket, count(DISTINCT target) AS targets
    FROM fails GROUP BY principal, in_window, b0
    UNION ALL
    SELECT principal, in_window, 1 AS phase, b1 AS bucket, count(DISTINCT target) AS targets
    FROM fails GROUP BY principal, in_window, b1
),
base AS (
    SELECT principal, max(targets) AS baseline_max_targets FROM buckets WHERE NOT in_window GROUP BY principal
),
win_best AS (
    SELECT principal, phase, bucket, targets
    FROM (
        SELECT principal, phase, bucket, targets,
               row_number() OVER (PARTITION BY principal ORDER BY targets DESC, bucket, phase) AS rn
        FROM buckets WHERE in_window
    ) WHERE rn = 1
),
fired AS (
    SELECT w.*, coalesce(b.baseline_max_targets, 0) AS baseline_max_targets
    FROM win_best AS w LEFT JOIN base AS b ON b.principal = w.principal
    WHERE w.targets >= greatest($min_denied_targets, coalesce(b.baseline_max_targets, 0) + 1)
),
-- successes of the same principal on the same role within the window: a retry, not a probe
retried AS (
    SELECT DISTINCT coalesce(caller, caller_access_key_id, source_ip_address) AS principal, role_arn
    FROM assumptions
    WHERE succeeded AND event_time >= $window_start AND event_time < $window_end
),
evidence AS (
    SELECT
        f.principal,
        min(c.event_time) AS event_time, max(c.event_time) AS last_event_time,
        max(c.caller_account_id) AS account_id,
        min(c.source_ip_address) AS source_ip_address,
        max(c.caller_access_key_id) AS caller_key,
        count(*) AS failed_calls,
        count(DISTINCT c.target) AS targets,
        count(DISTINCT c.role_account_id) AS accounts,
        count(DISTINCT CASE WHEN c.role_arn IS NULL THEN c.target END) AS targets_without_role,
        count(DISTINCT CASE WHEN r.role_arn IS NULL THEN c.target END) AS never_succeeded_targets,
        count(DISTINCT CASE WHEN regexp_like(c.role_arn, $admin_role_pattern) THEN c.role_arn END) AS admin_roles,
        count(DISTINCT CASE WHEN c.role_account_id IS NOT NULL AND i.account_id IS NULL THEN c.role_account_id END) AS outside_accounts,
        array_sort(array_distinct(array_agg(c.target))) AS target_list,
        array_sort(array_distinct(array_agg(c.error_code))) AS error_codes,
        array_sort(array_distinct(flatten(array_agg(c.event_ids)))) AS event_ids
    FROM fired AS f
    JOIN fails AS c ON c.principal = f.principal AND c.in_window
        AND (CASE WHEN f.phase = 0 THEN c.b0 ELSE c.b1 END) = f.bucket
    LEFT JOIN internal AS i ON i.account_id = c.role_account_id
    LEFT JOIN retried AS r ON r.principal = c.principal AND r.role_arn = c.role_arn
    GROUP BY f.principal
)
SELECT
    concat_ws('|', 'denied-burst', f.principal, CAST(CAST($window_start AS DATE) AS VARCHAR)) AS finding_key,
    'denied-burst' AS rule,
    CASE
        WHEN e.never_succeeded_targets = 0 THEN 'low'
        WHEN e.accounts > 1 OR e.outside_accounts > 0 OR e.admin_roles > 0 THEN 'high'
        ELSE 'medium'
    END AS severity,
    'Burst of denied STS calls against several roles (enumeration)' AS title,
    concat(f.principal, ' failed STS calls against ', CAST(f.targets AS VARCHAR), ' targets within ',
           CAST($burst_window_seconds AS VARCHAR), ' s (', CAST(e.failed_calls AS VARCHAR), ' failed calls in ',
           CAST(e.accounts AS VARCHAR), ' account(s); ', CAST(e.never_succeeded_targets AS VARCHAR),
           ' never succeeded in the window; baseline busiest: ', CAST(f.baseline_max_targets AS VARCHAR), ')') AS summary,
    e.event_time,
    e.last_event_time,
    e.account_id,
    f.principal AS principal_arn,
    CASE WHEN cardinality(e.target_list) = 1 THEN e.target_list[1] END AS role_arn,
    e.source_ip_address,
    CASE WHEN e.caller_key LIKE 'ASIA%' THEN e.caller_key END AS access_key_id,
    e.event_ids,
    make_array('T1580', 'T1087.004', 'T1078.004') AS attack,
    -- details
    f.targets AS observed_targets,
    f.baseline_max_targets,
    greatest($min_denied_targets, f.baseline_max_targets + 1) AS threshold_targets,
    e.target_list,
    e.accounts,
    e.failed_calls,
    e.targets_without_role,
    e.never_succeeded_targets,
    e.admin_roles,
    e.outside_accounts,
    e.error_codes
FROM fired AS f
JOIN evidence AS e ON e.principal = f.principal
ORDER BY e.event_time
