-- id: rare-sts-api
-- title: Rare and risky STS API used by a principal that did not use it in the baseline
-- family: 7 (rare and risky STS APIs)
-- severity: high  = GetFederationToken or AssumeRoot that succeeded;
--           medium = GetSessionToken without MFA that succeeded;
--           low    = only failed attempts (AccessDenied etc.): context, the denied-burst rule covers enumeration.
-- attack: T1550.001 (Use Alternate Authentication Material: Application Access Token),
--         T1078.004 (Valid Accounts: Cloud Accounts); AssumeRoot also T1548.005 (Abuse Elevation Control Mechanism: Temporary Elevated Cloud Access)
-- rationale: GetFederationToken is the Stratus "sts-federation-token" persistence trick: a long-term key
--   mints 12-36 h federated credentials that survive the key's deletion. GetSessionToken without MFA
--   only re-wraps a long-term key (evasion: the new ASIA key hides the AKIA one). AssumeRoot gives
--   root-level task sessions in member accounts. Normal for a few principals (CLI MFA wrappers, old
--   federation brokers): so the rule fires only for a (principal, API) pair that did not succeed in the baseline.
--   Failed calls are kept (unlike Tailpipe's error_code IS NULL filter): an attempt is evidence too.
-- false_positives: a new engineer's MFA-less GetSessionToken from a CLI helper; a federation broker
--   deployed during the window; the first use after the baseline horizon (> baseline days ago).
-- baseline: none needed; with a short baseline the rule still fires (a pair that is unseen is unseen)
--   and reports baseline_days so a reader can weigh it.
WITH lake AS (
    SELECT min(event_time) AS lake_start FROM assumptions
),
calls AS (
    SELECT
        a.*,
        CASE
            WHEN a.api = 'GetSessionToken' AND NOT a.mfa THEN 'GetSessionToken (no MFA)'
            ELSE a.api
        END AS api_kind,
        coalesce(a.caller_arn, a.caller) AS principal
    FROM assumptions AS a
    WHERE a.api IN ('GetFederationToken', 'GetSessionToken', 'AssumeRoot')
      AND NOT (a.api = 'GetSessionToken' AND a.mfa)
      AND a.event_time >= $baseline_start AND a.event_time < $window_end
),
baseline AS (
    SELECT principal, api_kind, count(*) AS baseline_calls
    FROM calls
    WHERE event_time < $window_start AND succeeded
    GROUP BY principal, api_kind
),
hits0 AS (
    SELECT
        c.principal,
        c.api_kind,
        min(c.event_time) AS event_time,
        max(c.event_time) AS last_event_time,
        max(c.caller_account_id) AS account_id,
        max(c.role_arn) AS role_arn,
        min(c.source_ip_address) AS source_ip_address,
        count(DISTINCT c.source_ip_address) AS source_ips,
        max(c.issued_access_key_id) AS access_key_id,
        count(*) AS calls,
        sum(CASE WHEN c.succeeded THEN 1 ELSE 0 END) AS succeeded_calls,
        max(c.effective_duration_seconds) AS max_duration_seconds,
        max(c.federated_user_arn) AS federated_user_arn,
        array_agg(c.issued_access_key_id) FILTER (WHERE c.issued_access_key_id IS NOT NULL) AS issued_keys,
        array_sort(array_distinct(flatten(array_agg(c.event_ids)))) AS event_ids
    FROM calls AS c
    WHERE c.event_time >= $window_start
    GROUP BY c.principal, c.api_kind
),
-- the calls the issued credentials signed in the window are evidence too
uses AS (
    SELECT c.principal, c.api_kind, count(*) AS key_uses, array_agg(e.event_id) AS use_ids
    FROM events AS e
    JOIN calls AS c ON e.access_key_id = c.issued_access_key_id
    WHERE e.date >= $window_start_date AND e.date <= $window_end_date
      AND e.event_time >= $window_start AND e.event_time < $window_end
      AND c.event_time >= $window_start
    GROUP BY c.principal, c.api_kind
),
hits AS (
    SELECT h0.*, coalesce(u.key_uses, 0) AS key_uses,
           CASE WHEN u.key_uses > 0 THEN 1 ELSE 0 END AS used_keys,
           array_sort(array_distinct(array_concat(h0.event_ids, coalesce(u.use_ids, make_array(h0.event_ids[1]))))) AS all_event_ids
    FROM hits0 AS h0
    LEFT JOIN uses AS u ON u.principal = h0.principal AND u.api_kind = h0.api_kind
)
SELECT
    concat_ws('|', 'rare-sts-api', h.principal, h.api_kind) AS finding_key,
    'rare-sts-api' AS rule,
    CASE
        WHEN h.succeeded_calls = 0 THEN 'low'
        WHEN h.api_kind IN ('GetFederationToken', 'AssumeRoot') THEN 'high'
        ELSE 'medium'
    END AS severity,
    concat(h.api_kind, ' by a principal that did not use it in the baseline') AS title,
    concat(h.principal, ' called ', h.api_kind, ' ', CAST(h.calls AS VARCHAR), ' time(s) (',
           CAST(h.succeeded_calls AS VARCHAR), ' succeeded) from ', coalesce(h.source_ip_address, '?'),
           '; no successful call in the ',
           CAST(CAST(greatest(0, round((extract(EPOCH FROM $window_start) - extract(EPOCH FROM greatest($baseline_start, l.lake_start))) / 86400)) AS BIGINT) AS VARCHAR),
           ' baseline day(s)', CASE WHEN h.used_keys > 0 THEN concat('; the issued key signed ', CAST(h.key_uses AS VARCHAR), ' call(s)') ELSE '' END) AS summary,
    h.event_time,
    h.last_event_time,
    h.account_id,
    h.principal AS principal_arn,
    h.role_arn,
    h.source_ip_address,
    h.access_key_id,
    h.all_event_ids AS event_ids,
    CASE WHEN h.api_kind = 'AssumeRoot' THEN make_array('T1078.004', 'T1548.005')
         ELSE make_array('T1550.001', 'T1078.004') END AS attack,
    -- details
    h.api_kind AS api,
    h.calls,
    h.succeeded_calls,
    h.source_ips,
    h.max_duration_seconds,
    h.federated_user_arn,
    h.key_uses,
    coalesce(b.baseline_calls, 0) AS baseline_calls,
    greatest(0.0, (extract(EPOCH FROM $window_start) - extract(EPOCH FROM greatest($baseline_start, l.lake_start))) / 86400.0) AS baseline_days
FROM hits AS h
CROSS JOIN lake AS l
LEFT JOIN baseline AS b ON b.principal = h.principal AND b.api_kind = h.api_kind
WHERE b.principal IS NULL
ORDER BY h.event_time
