-- id: cross-account-chain
-- title: Role chain crossing an account boundary into a role not reached that way in the baseline
-- family: 6 (role chains)
-- severity: high   = the hop lands in an administrative role, or crosses into/out of an account
--                    outside the organization
--           medium = the hop (parent role -> target role) and its pattern (parent role name ->
--                    target role name, in any accounts) are both new
--           low    = the exact hop is new but the pattern is known (the same parent role already
--                    reaches the same-named role in other accounts: StackSets-style uniform roles)
-- attack: T1078.004 (Valid Accounts: Cloud Accounts), T1550.001 (Application Access Token),
--         T1021.007 (Remote Services: Cloud Services)
-- rationale: a session of role A calling AssumeRole into another account is how an intruder turns
--   one foothold into the organization (and how role chaining hides the origin: each hop shows only
--   the previous role). Chains used every day by pipelines are the norm, so the rule keys on the
--   hop (the role the calling session belonged to -> the role assumed) and stays silent when that
--   hop was taken in the baseline. The full chain (sessions.role_chain) is reported as context.
--   One finding per hop in the window.
-- params:
--   admin_role_pattern: '(?i)(^|/)(OrganizationAccountAccessRole|AWSControlTowerExecution|AWSReservedSSO_AdministratorAccess[^/]*|[^/]*admin[^/]*)$' — regular expression (Rust syntax) a role ARN matches when it is administrative
-- config: cfg_org_accounts(account_id, name)
-- false_positives: a new pipeline stage or a newly onboarded account (low when the pattern is
--   known); an engineer's first hop into a new account (medium).
-- baseline: hops that succeeded between baseline_start and window_start. With no baseline every hop is
--   new: admin and outside hops are high, the others medium; say so (baseline_hops = 0).
WITH internal AS (
    SELECT DISTINCT account_id FROM events WHERE account_id <> 'unknown'
    UNION
    SELECT account_id FROM cfg_org_accounts
),
hops AS (
    SELECT
        a.*,
        coalesce(a.caller_session_issuer_arn, regexp_replace(a.caller_arn, '^arn:aws:sts::([0-9]+):assumed-role/([^/]+)/.*$', 'arn:aws:iam::$1:role/$2')) AS parent_role_arn
    FROM assumptions AS a
    WHERE a.succeeded AND a.is_cross_account
      AND a.caller_access_key_id LIKE 'ASIA%'
      AND a.caller_type IN ('AssumedRole', 'FederatedUser')
      AND a.event_time >= $baseline_start AND a.event_time < $window_end
),
base_hops AS (
    SELECT parent_role_arn, role_arn, count(*) AS n FROM hops WHERE event_time < $window_start GROUP BY 1, 2
),
base_patterns AS (
    SELECT regexp_replace(parent_role_arn, '^.*/', '') AS parent_name, role_name, count(*) AS n
    FROM hops WHERE event_time < $window_start GROUP BY 1, 2
),
base_total AS (
    SELECT count(*) AS n FROM hops WHERE event_time < $window_start
),
win AS (
    SELECT
        h.parent_role_arn, h.role_arn,
        min(h.event_time) AS event_time, max(h.event_time) AS last_event_time,
        max(h.role_account_id) AS role_account_id,
        max(h.caller_account_id) AS caller_account_id,
        min(h.caller) AS principal_arn,
        count(DISTINCT h.caller) AS callers,
        min(h.source_ip_address) AS source_ip_address,
        min(h.issued_access_key_id) AS access_key_id,
        max(h.role_name) AS role_name,
        count(*) AS calls,
        array_sort(array_distinct(flatten(array_agg(h.event_ids)))) AS event_ids
    FROM hops AS h
    WHERE h.event_time >= $window_start
    GROUP BY h.parent_role_arn, h.role_arn
),
judged AS (
    SELECT
        w.*,
        bh.n AS baseline_hop_calls,
        bp.n AS baseline_pattern_calls,
        regexp_like(w.role_arn, $admin_role_pattern) AS admin_role,
        (ic.account_id IS NULL OR it.account_id IS NULL) AS touches_outside,
        bt.n AS baseline_hops
    FROM win AS w
    CROSS JOIN base_total AS bt
    LEFT JOIN base_hops AS bh ON bh.parent_role_arn = w.parent_role_arn AND bh.role_arn = w.role_arn
    LEFT JOIN base_patterns AS bp ON bp.parent_name = regexp_replace(w.parent_role_arn, '^.*/', '') AND bp.role_name = w.role_name
    LEFT JOIN internal AS ic ON ic.account_id = w.caller_account_id
    LEFT JOIN internal AS it ON it.account_id = w.role_account_id
    WHERE bh.n IS NULL
),
chain AS (
    SELECT s.access_key_id, s.role_chain, s.chain_depth, s.origin_principal_arn
    FROM sessions AS s JOIN judged AS j ON j.access_key_id = s.access_key_id
)
SELECT
    concat_ws('|', 'cross-account-chain', j.parent_role_arn, j.role_arn) AS finding_key,
    'cross-account-chain' AS rule,
    CASE
        WHEN j.admin_role OR j.touches_outside THEN 'high'
        WHEN j.baseline_pattern_calls IS NULL THEN 'medium'
        ELSE 'low'
    END AS severity,
    'Role chain crossed into another account by a new path' AS title,
    concat('Sessions of ', j.parent_role_arn, ' (account ', j.caller_account_id, ') assumed ', j.role_arn,
           ' ', CAST(j.calls AS VARCHAR), ' time(s); this hop was not taken in the baseline',
           CASE WHEN j.baseline_pattern_calls IS NOT NULL THEN ' (but the same role names are chained in other accounts)' ELSE '' END,
           CASE WHEN c.role_chain IS NOT NULL THEN concat('; chain: ', c.role_chain) ELSE '' END,
           CASE WHEN j.admin_role THEN '; administrative role' ELSE '' END,
           CASE WHEN j.touches_outside THEN '; an account outside the organization' ELSE '' END) AS summary,
    j.event_time,
    j.last_event_time,
    j.role_account_id AS account_id,
    j.principal_arn,
    j.role_arn,
    j.source_ip_address,
    j.access_key_id,
    j.event_ids,
    make_array('T1078.004', 'T1550.001', 'T1021.007') AS attack,
    -- details
    j.parent_role_arn,
    j.caller_account_id AS source_account_id,
    j.calls,
    j.callers,
    c.role_chain,
    c.chain_depth,
    c.origin_principal_arn,
    j.admin_role,
    j.touches_outside,
    coalesce(j.baseline_pattern_calls, 0) AS baseline_pattern_calls,
    j.baseline_hops
FROM judged AS j
LEFT JOIN chain AS c ON c.access_key_id = j.access_key_id
ORDER BY j.event_time
