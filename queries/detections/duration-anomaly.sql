-- id: duration-anomaly
-- title: Credentials granted or used far longer than normal, or used after they expired
-- family: 1 (anomalous duration)
-- severity: high   = a key used after its expiration; or a medium reason on an administrative role
--           medium = GetFederationToken/GetSessionToken granted beyond $max_federation_seconds;
--                    a grant beyond what STS can issue at all (AssumeRole* 12 h, GetSessionToken/
--                    GetFederationToken 36 h, AssumeRoot 15 min: forged/hand-edited records);
--                    a chained session granted beyond the chaining limit; a grant beyond
--                    $duration_factor x the peer group's baseline maximum; low reason on an admin role
--           low    = only an active span (first to last call) beyond $duration_factor x the peer
--                    group's baseline maximum: a weak signal alone (long jobs), context for others
-- attack: T1078.004 (Valid Accounts: Cloud Accounts), T1550.001 (Application Access Token);
--         used-after-expiration also T1606 (Forge Web Credentials)
-- rationale: attackers who get a foothold ask for the longest credentials they can (12-36 h federation
--   tokens, 12 h role sessions) so the foothold survives a key rotation; a key logged after its
--   expiration means the lake's view of the session is wrong (clock skew aside) or the credentials
--   were re-minted/forged. Relative checks compare with the same role's own baseline, so a role whose
--   sessions are always 12 h (batch jobs, EC2 instance profiles: ~6 h) stays quiet.
--   One finding per session (access key), all reasons listed.
-- params:
--   max_federation_seconds: 43200 — longest GetFederationToken/GetSessionToken grant that is normal
--   max_chained_seconds: 3600 — longest grant a chained session can get (AWS caps role chaining at 1 h)
--   duration_factor: 2.0 — a grant or active span beyond this times the peer group's baseline maximum is anomalous
--   min_duration_seconds: 3600 — grants up to this are never anomalous relative to the baseline
--   min_active_seconds: 14400 — active spans up to this are never anomalous relative to the baseline
--   min_baseline_sessions: 5 — baseline sessions a peer group needs before the relative checks apply
--   expiry_grace_seconds: 300 — clock skew allowed after a key's expiration
--   admin_role_pattern: '(?i)(^|/)(OrganizationAccountAccessRole|AWSControlTowerExecution|AWSReservedSSO_AdministratorAccess[^/]*|[^/]*admin[^/]*)$' — regular expression (Rust syntax) a role ARN matches when it is administrative
-- false_positives: a role whose duration was raised on purpose during the window (the next
--   baseline learns it); long-running SDK processes that keep a session active for the whole grant
--   (only when longer than the role's baseline); clock skew within expiry_grace_seconds.
-- baseline: sessions issued (for grants) or first used (for activity) between baseline_start and
--   window_start, per peer group = the role's name across accounts (for GetSessionToken/
--   GetFederationToken: the IAM user's name). With fewer
--   than min_baseline_sessions sessions the relative checks are skipped (absolute caps and
--   used-after-expiration still apply), and baseline_sessions says so.
WITH s AS (
    SELECT
        access_key_id, issued_in_lake, issued_at, api, call_id, caller, caller_type, caller_account_id,
        role_arn, role_account_id, principal_arn, issuing_source_ip, requested_duration_seconds,
        effective_duration_seconds, credentials_expiration, first_used, last_used, active_seconds,
        used_after_expiration, parent_access_key_id, distinct_source_ips
    FROM sessions
    WHERE coalesce(last_used, issued_at) >= $baseline_start
      AND coalesce(issued_at, first_used) < $window_end
),
-- Peer group: the role's name (last part of its ARN), across accounts. Roles deployed by
-- StackSets/IaC into every account share a name and a behaviour, and the per-ARN history of one
-- account is often thin; the peer group's maximum is the more tolerant (quieter) reference.
grant_base AS (
    SELECT regexp_replace(role_arn, '^.*/', '') AS peer, count(*) AS n, max(effective_duration_seconds) AS max_granted
    FROM s
    WHERE issued_in_lake AND issued_at >= $baseline_start AND issued_at < $window_start
    GROUP BY 1
),
active_base AS (
    SELECT regexp_replace(role_arn, '^.*/', '') AS peer, count(*) AS n, max(active_seconds) AS max_active
    FROM s
    WHERE first_used >= $baseline_start AND first_used < $window_start
    GROUP BY 1
),
in_window AS (
    SELECT * FROM s
    WHERE (issued_at >= $window_start AND issued_at < $window_end)
       OR (last_used >= $window_start AND last_used < $window_end)
),
reasons AS (
    SELECT access_key_id, 'federation-token-beyond-cap' AS reason, 'medium' AS sev,
           effective_duration_seconds AS observed, CAST(NULL AS BIGINT) AS baseline,
           CAST($max_federation_seconds AS DOUBLE) AS threshold
    FROM in_window
    WHERE api IN ('GetFederationToken', 'GetSessionToken') AND issued_at >= $window_start
      AND effective_duration_seconds > $max_federation_seconds
    UNION ALL
    -- beyond what STS can grant at all (AssumeRole*: 12 h; GetSessionToken/GetFederationToken: 36 h;
    -- AssumeRoot: 15 min): a forged or hand-edited record, or a parser problem; never normal
    SELECT access_key_id, 'granted-beyond-aws-maximum', 'medium',
           effective_duration_seconds, CAST(NULL AS BIGINT),
           CAST(CASE WHEN api IN ('GetFederationToken', 'GetSessionToken') THEN 129600
                     WHEN api = 'AssumeRoot' THEN 900 ELSE 43200 END AS DOUBLE)
    FROM in_window
    WHERE issued_at >= $window_start
      AND effective_duration_seconds > CASE WHEN api IN ('GetFederationToken', 'GetSessionToken') THEN 129600
                                            WHEN api = 'AssumeRoot' THEN 900 ELSE 43200 END
    UNION ALL
    SELECT access_key_id, 'chained-session-beyond-limit', 'medium',
           effective_duration_seconds, CAST(NULL AS BIGINT), CAST($max_chained_seconds AS DOUBLE)
    FROM in_window
    WHERE api = 'AssumeRole' AND parent_access_key_id IS NOT NULL AND issued_at >= $window_start
      AND effective_duration_seconds > $max_chained_seconds
    UNION ALL
    SELECT w.access_key_id, 'granted-beyond-role-baseline', 'medium',
           w.effective_duration_seconds, b.max_granted,
           greatest(CAST($min_duration_seconds AS DOUBLE), $duration_factor * b.max_granted)
    FROM in_window AS w
    JOIN grant_base AS b ON b.peer = regexp_replace(w.role_arn, '^.*/', '')
    WHERE w.issued_in_lake AND w.issued_at >= $window_start AND b.n >= $min_baseline_sessions
      AND w.effective_duration_seconds > greatest(CAST($min_duration_seconds AS DOUBLE), $duration_factor * b.max_granted)
    UNION ALL
    SELECT w.access_key_id, 'active-beyond-role-baseline', 'low',
           w.active_seconds, b.max_active,
           greatest(CAST($min_active_seconds AS DOUBLE), $duration_factor * b.max_active)
    FROM in_window AS w
    JOIN active_base AS b ON b.peer = regexp_replace(w.role_arn, '^.*/', '')
    WHERE w.last_used >= $window_start AND b.n >= $min_baseline_sessions
      AND w.active_seconds > greatest(CAST($min_active_seconds AS DOUBLE), $duration_factor * b.max_active)
    UNION ALL
    SELECT access_key_id, 'used-after-expiration', 'high',
           CAST(extract(EPOCH FROM last_used) - extract(EPOCH FROM credentials_expiration) AS BIGINT),
           CAST(NULL AS BIGINT), CAST($expiry_grace_seconds AS DOUBLE)
    FROM in_window
    WHERE last_used >= $window_start
      AND extract(EPOCH FROM last_used) - extract(EPOCH FROM credentials_expiration) > $expiry_grace_seconds
),
per_key AS (
    SELECT
        access_key_id,
        array_sort(array_agg(reason)) AS reasons,
        max(CASE sev WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 END) AS sev_rank,
        max(CASE WHEN reason IN ('granted-beyond-role-baseline', 'federation-token-beyond-cap',
                                 'chained-session-beyond-limit', 'granted-beyond-aws-maximum') THEN observed END) AS granted_seconds,
        max(CASE WHEN reason = 'granted-beyond-role-baseline' THEN baseline END) AS baseline_max_granted_seconds,
        max(CASE WHEN reason = 'active-beyond-role-baseline' THEN observed END) AS active_seconds,
        max(CASE WHEN reason = 'active-beyond-role-baseline' THEN baseline END) AS baseline_max_active_seconds,
        max(CASE WHEN reason = 'used-after-expiration' THEN observed END) AS seconds_after_expiration,
        max(threshold) AS threshold_seconds
    FROM reasons
    GROUP BY access_key_id
),
-- evidence: the issuing call, and the calls the key signed in the window after it expired
-- (for used-after-expiration) or all window calls (for activity findings), at most 1000
evidence AS (
    SELECT e.access_key_id, array_agg(e.event_id ORDER BY e.event_time) AS use_ids, count(*) AS uses
    FROM events AS e
    JOIN per_key AS k ON k.access_key_id = e.access_key_id
    JOIN in_window AS w ON w.access_key_id = e.access_key_id
    WHERE e.date >= $window_start_date AND e.date <= $window_end_date
      AND e.event_time >= $window_start AND e.event_time < $window_end
      AND (NOT array_has(k.reasons, 'used-after-expiration') OR e.event_time > w.credentials_expiration)
    GROUP BY e.access_key_id
),
issuing AS (
    SELECT a.issued_access_key_id, a.event_ids
    FROM assumptions AS a
    JOIN per_key AS k ON k.access_key_id = a.issued_access_key_id
)
SELECT
    concat_ws('|', 'duration-anomaly', k.access_key_id) AS finding_key,
    'duration-anomaly' AS rule,
    CASE WHEN k.sev_rank = 3 OR (k.sev_rank = 2 AND regexp_like(w.role_arn, $admin_role_pattern)) THEN 'high'
         WHEN k.sev_rank = 2 OR regexp_like(w.role_arn, $admin_role_pattern) THEN 'medium'
         ELSE 'low' END AS severity,
    CASE WHEN array_has(k.reasons, 'used-after-expiration') THEN 'Temporary key used after its expiration'
         ELSE 'Session credentials far longer than normal' END AS title,
    concat('Session ', k.access_key_id, ' of ', coalesce(w.role_arn, w.principal_arn, '?'),
           ' (', coalesce(w.api, 'issuing call not in lake'), ' by ', coalesce(w.caller, '?'), '): ',
           array_to_string(k.reasons, ', '),
           CASE WHEN k.granted_seconds IS NOT NULL THEN concat('; granted ', CAST(k.granted_seconds AS VARCHAR), ' s') ELSE '' END,
           CASE WHEN k.baseline_max_granted_seconds IS NOT NULL THEN concat(' (baseline max ', CAST(k.baseline_max_granted_seconds AS VARCHAR), ' s)') ELSE '' END,
           CASE WHEN k.active_seconds IS NOT NULL THEN concat('; active ', CAST(k.active_seconds AS VARCHAR), ' s (baseline max ', CAST(k.baseline_max_active_seconds AS VARCHAR), ' s)') ELSE '' END,
           CASE WHEN k.seconds_after_expiration IS NOT NULL THEN concat('; last used ', CAST(k.seconds_after_expiration AS VARCHAR), ' s after expiration') ELSE '' END
    ) AS summary,
    coalesce(CASE WHEN w.issued_at >= $window_start THEN w.issued_at END, w.first_used) AS event_time,
    greatest(w.last_used, w.issued_at) AS last_event_time,
    w.role_account_id AS account_id,
    w.principal_arn,
    w.role_arn,
    w.issuing_source_ip AS source_ip_address,
    k.access_key_id,
    array_sort(array_distinct(array_concat(coalesce(i.event_ids, make_array('')[1:0]), coalesce(ev.use_ids, make_array('')[1:0])))) AS event_ids,
    CASE WHEN array_has(k.reasons, 'used-after-expiration') THEN make_array('T1078.004', 'T1550.001', 'T1606')
         ELSE make_array('T1078.004', 'T1550.001') END AS attack,
    -- details
    k.reasons,
    w.api,
    w.caller,
    w.requested_duration_seconds,
    k.granted_seconds,
    k.baseline_max_granted_seconds,
    k.active_seconds,
    k.baseline_max_active_seconds,
    k.seconds_after_expiration,
    k.threshold_seconds,
    w.credentials_expiration,
    gb.n AS baseline_sessions
FROM per_key AS k
JOIN in_window AS w ON w.access_key_id = k.access_key_id
LEFT JOIN issuing AS i ON i.issued_access_key_id = k.access_key_id
LEFT JOIN evidence AS ev ON ev.access_key_id = k.access_key_id
LEFT JOIN grant_base AS gb ON gb.peer = regexp_replace(w.role_arn, '^.*/', '')
ORDER BY event_time
