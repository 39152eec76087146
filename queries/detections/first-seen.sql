-- id: first-seen
-- title: First-seen (principal, role) pair, or first-seen source network for a principal
-- family: 9 (first-seen context)
-- severity: low (always: context that other findings cite; never alerts alone)
-- attack: T1078.004 (Valid Accounts: Cloud Accounts)
-- rationale: most intrusions start with something new: an identity assuming a role it never used,
--   or calling from a network it never called from. Alone these are routine (new projects, travel),
--   so they are low and meant to be joined with the other rules' findings (same principal, same
--   window) when triaging. Principals that are entirely new (no activity before the window) are not
--   reported here: with no history every pair and network would be "new".
--   One finding per (principal, role) and per (principal, network).
-- params:
--   ipv4_prefix_octets: 3 — IPv4 addresses are compared as networks of their first N octets (3 = /24)
--   ipv6_prefix_hextets: 4 — IPv6 addresses are compared as networks of their first N hextets (4 = /64)
-- config: cfg_known_networks(scope, network): networks in the form the rule gives an address's
--   network (`198.51.100`, `2001:db8:1200:0`), expanded by detect from the config's CIDRs
-- false_positives: by design, routine novelty; AWS services (excluded); SAML/OIDC subjects
--   are covered by new-federated-subject.
-- baseline: pairs between baseline_start and window_start; networks: caller_sources rows first seen
--   before the window (any time in the lake, which is at least the baseline).
WITH pairs AS (
    SELECT caller, role_arn, event_time, event_ids, caller_account_id, role_account_id,
           source_ip_address, issued_access_key_id, succeeded
    FROM assumptions
    WHERE succeeded AND role_arn IS NOT NULL AND caller IS NOT NULL
      AND coalesce(caller_type, '') NOT IN ('AWSService', 'SAMLUser', 'WebIdentityUser')
      AND event_time >= $baseline_start AND event_time < $window_end
),
base_pairs AS (
    SELECT DISTINCT caller, role_arn FROM pairs WHERE event_time < $window_start
),
known_callers AS (
    SELECT DISTINCT caller FROM pairs WHERE event_time < $window_start
),
new_pairs AS (
    SELECT
        p.caller, p.role_arn,
        min(p.event_time) AS event_time, max(p.event_time) AS last_event_time,
        max(p.role_account_id) AS account_id,
        min(p.source_ip_address) AS source_ip_address,
        min(p.issued_access_key_id) AS access_key_id,
        count(*) AS calls,
        array_sort(array_distinct(flatten(array_agg(p.event_ids)))) AS event_ids
    FROM pairs AS p
    JOIN known_callers AS k ON k.caller = p.caller
    LEFT JOIN base_pairs AS b ON b.caller = p.caller AND b.role_arn = p.role_arn
    WHERE p.event_time >= $window_start AND b.caller IS NULL
    GROUP BY p.caller, p.role_arn
),
cs AS (
    SELECT
        kind, identity, first_seen, last_seen, calls,
        CASE
            WHEN source_ip_address ~ '^[0-9]{1,3}(\.[0-9]{1,3}){3}$'
                THEN array_to_string(array_slice(string_to_array(source_ip_address, '.'), 1, $ipv4_prefix_octets), '.')
            WHEN source_ip_address ~ '^[0-9A-Fa-f:]+$' AND source_ip_address LIKE '%:%'
                THEN array_to_string(array_slice(array_concat(
                    CASE WHEN split_part(lower(source_ip_address), '::', 1) = '' THEN make_array('0')[1:0]
                         ELSE string_to_array(split_part(lower(source_ip_address), '::', 1), ':') END,
                    make_array('0', '0', '0', '0', '0', '0', '0', '0')), 1, $ipv6_prefix_hextets), ':')
        END AS net
    FROM caller_sources
    WHERE coalesce(user_agent, '') NOT LIKE '%aws-internal/%'
),
id_nets AS (
    SELECT kind, identity, net, min(first_seen) AS first_seen, max(last_seen) AS last_seen, sum(calls) AS calls
    FROM cs WHERE net IS NOT NULL AND identity NOT LIKE '%.amazonaws.com'
    GROUP BY kind, identity, net
),
id_history AS (
    SELECT kind, identity FROM id_nets WHERE first_seen < $window_start AND last_seen >= $baseline_start
    GROUP BY kind, identity
),
new_nets AS (
    SELECT n.*
    FROM id_nets AS n
    JOIN id_history AS h ON h.kind = n.kind AND h.identity = n.identity
    LEFT JOIN cfg_known_networks AS kn ON kn.network = n.net
        AND (kn.scope = '*' OR kn.scope = n.identity)
    WHERE n.first_seen >= $window_start AND n.first_seen < $window_end AND kn.scope IS NULL
),
-- evidence for new networks: the window's calls of that identity from that network
ev AS (
    SELECT
        CASE WHEN e.user_type = 'AssumedRole' THEN 'role' ELSE 'principal' END AS kind,
        coalesce(
            CASE
                WHEN e.user_type = 'AssumedRole' THEN coalesce(e.session_issuer_arn, e.principal_arn)
                WHEN e.user_type = 'AWSService' THEN coalesce(e.invoked_by, e.principal_id)
                ELSE coalesce(e.principal_arn, e.user_name, e.principal_id, e.invoked_by)
            END, e.principal_account_id, '(unknown)') AS identity,
        CASE
            WHEN e.source_ip_address ~ '^[0-9]{1,3}(\.[0-9]{1,3}){3}$'
                THEN array_to_string(array_slice(string_to_array(e.source_ip_address, '.'), 1, $ipv4_prefix_octets), '.')
            WHEN e.source_ip_address ~ '^[0-9A-Fa-f:]+$' AND e.source_ip_address LIKE '%:%'
                THEN array_to_string(array_slice(array_concat(
                    CASE WHEN split_part(lower(e.source_ip_address), '::', 1) = '' THEN make_array('0')[1:0]
                         ELSE string_to_array(split_part(lower(e.source_ip_address), '::', 1), ':') END,
                    make_array('0', '0', '0', '0', '0', '0', '0', '0')), 1, $ipv6_prefix_hextets), ':')
        END AS net,
        e.event_id, e.source_ip_address, e.access_key_id, e.recipient_account_id, e.event_time
    FROM events AS e
    WHERE e.date >= $window_start_date AND e.date <= $window_end_date
      AND e.event_time >= $window_start AND e.event_time < $window_end
      AND e.source_ip_address IS NOT NULL
),
net_findings AS (
    SELECT n.kind, n.identity, n.net, min(ev.event_time) AS event_time, max(ev.event_time) AS last_event_time,
           min(ev.source_ip_address) AS source_ip_address, max(ev.recipient_account_id) AS account_id,
           max(CASE WHEN ev.access_key_id LIKE 'ASIA%' THEN ev.access_key_id END) AS access_key_id,
           count(*) AS calls, array_sort(array_agg(ev.event_id)) AS event_ids
    FROM new_nets AS n
    JOIN ev ON ev.kind = n.kind AND ev.identity = n.identity AND ev.net = n.net
    GROUP BY n.kind, n.identity, n.net
)
SELECT
    concat_ws('|', 'first-seen', 'pair', caller, role_arn) AS finding_key,
    'first-seen' AS rule,
    'low' AS severity,
    'First-seen (principal, role) pair' AS title,
    concat(caller, ' assumed ', role_arn, ' for the first time: not in the baseline (', CAST(calls AS VARCHAR), ' call(s) in the window)') AS summary,
    event_time, last_event_time, account_id,
    caller AS principal_arn, role_arn, source_ip_address, access_key_id, event_ids,
    make_array('T1078.004') AS attack,
    'pair' AS kind, CAST(NULL AS VARCHAR) AS network, calls
FROM new_pairs
UNION ALL
SELECT
    concat_ws('|', 'first-seen', 'network', identity, net),
    'first-seen',
    'low',
    'First-seen source network for a principal',
    concat(identity, ' called AWS from network ', net, ' (', source_ip_address, ') for the first time (',
           CAST(calls AS VARCHAR), ' call(s) in the window)'),
    event_time, last_event_time, account_id,
    identity, CASE WHEN kind = 'role' THEN identity END, source_ip_address, access_key_id, event_ids,
    make_array('T1078.004'),
    'network', net, calls
FROM net_findings
ORDER BY event_time
