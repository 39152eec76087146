-- id: credential-elsewhere
-- title: Temporary credentials used from a network other than the one(s) they belong to
-- family: 4 (credentials used from elsewhere)
-- severity: high   = key-used-from-new-network: a session's key used from a network that is neither
--                    where it was issued nor where it was first used, nor a network the role's
--                    sessions used before the window, nor a known network;
--                    service-session-from-user-network: a service-issued session (EC2 instance
--                    profile, Lambda, ECS...) used from a network that IAM users' long-term keys or
--                    console logins also use (an attacker's workstation), whatever the baseline
--           medium = service-session-outside-usual-networks: a service-issued session used only
--                    from networks its role's sessions never used before the window (needs a baseline)
-- attack: T1552.005 (Unsecured Credentials: Cloud Instance Metadata API), T1550.001 (Use Alternate
--         Authentication Material: Application Access Token), T1078.004 (Valid Accounts: Cloud Accounts)
-- rationale: temporary keys are bearer tokens; a copy used from another host is the classic sign of
--   theft (IMDS/SSRF theft of instance credentials, stolen CI/CD or laptop session). Source
--   addresses are compared at network level (IPv4 /24, IPv6 /64 by default) so NAT pools and DHCP
--   churn do not fire; AWS service names (ec2.amazonaws.com...) and "AWS Internal" are not
--   addresses and are ignored, and so are calls AWS makes for the session (user agent aws-internal/...
--   from private 10.x addresses behind console sessions; calls with invokedBy). A role's usual networks come from caller_sources (every call its
--   sessions made before the window, cheap on derived tables), so an EC2 role used from its usual
--   addresses stays silent. Service sessions are recognised by their issuing caller (AWSService) or,
--   when the issuing call is not in the lake, by an EC2 instance-ID session name (i-...).
--   One finding per access key.
-- params:
--   ipv4_prefix_octets: 3 — IPv4 addresses are compared as networks of their first N octets (3 = /24)
--   ipv6_prefix_hextets: 4 — IPv6 addresses are compared as networks of their first N hextets (4 = /64)
--   key_lookback_days: 2 — days before the window read to find a key's issuing and first-use networks
-- config: cfg_known_networks(scope, network): scope '*' or a role/principal ARN; network in the
--   form this rule gives an address's network (`198.51.100`, `2001:db8:1200:0`): detect expands
--   the config's CIDRs into it
-- false_positives: a laptop session carried from office to home or a VPN that changes exit
--   network mid-session (key-used-from-new-network; suppress the VPN range as a known network);
--   auto-scaling groups in a new subnet or with new public IPs (service-session-outside-usual-networks,
--   medium); an EC2 instance that itself runs a script with an IAM user's long-term key (then the
--   instance's network is also a "user network").
-- baseline: networks each role's sessions were used from before the window (caller_sources rows with
--   first_seen < window_start, at least baseline_start..window_start); user networks from IAM user
--   and root callers between baseline_start and window_end. With no baseline only
--   key-used-from-new-network and service-session-from-user-network can fire.
WITH uses AS (
    SELECT
        e.access_key_id, e.event_id, e.event_time, e.source_ip_address, e.event_name,
        e.session_issuer_arn, e.principal_arn, e.recipient_account_id,
        e.event_time >= $window_start AS in_window,
        CASE
            WHEN e.source_ip_address ~ '^[0-9]{1,3}(\.[0-9]{1,3}){3}$'
                THEN array_to_string(array_slice(string_to_array(e.source_ip_address, '.'), 1, $ipv4_prefix_octets), '.')
            WHEN lower(e.source_ip_address) ~ '^::ffff:[0-9]{1,3}(\.[0-9]{1,3}){3}$'
                THEN array_to_string(array_slice(string_to_array(substr(e.source_ip_address, 8), '.'), 1, $ipv4_prefix_octets), '.')
            WHEN e.source_ip_address ~ '^[0-9A-Fa-f:]+$' AND e.source_ip_address LIKE '%:%'
                THEN array_to_string(array_slice(array_concat(
                    CASE WHEN split_part(lower(e.source_ip_address), '::', 1) = '' THEN make_array('0')[1:0]
                         ELSE string_to_array(split_part(lower(e.source_ip_address), '::', 1), ':') END,
                    make_array('0', '0', '0', '0', '0', '0', '0', '0')), 1, $ipv6_prefix_hextets), ':')
        END AS net
    FROM events AS e
    WHERE e.access_key_id LIKE 'ASIA%'
      -- calls AWS makes on the session's behalf (console back-ends: user agent aws-internal/...,
      -- private 10.x addresses; invokedBy services) are not the holder's network
      AND coalesce(e.user_agent, '') NOT LIKE '%aws-internal/%'
      AND e.invoked_by IS NULL
      -- sessions live at most 36 h: a key used in the window was first used at most that long before
      AND e.date >= CAST(CAST(to_timestamp_seconds(CAST(extract(EPOCH FROM $window_start) AS BIGINT) - $key_lookback_days * 86400) AS DATE) AS VARCHAR)
      AND e.date <= $window_end_date
      AND e.event_time >= to_timestamp_seconds(CAST(extract(EPOCH FROM $window_start) AS BIGINT) - $key_lookback_days * 86400)
      AND e.event_time < $window_end
),
win_keys AS (
    SELECT DISTINCT access_key_id FROM uses WHERE in_window AND net IS NOT NULL
),
key_info AS (
    SELECT
        s.access_key_id, s.role_arn, s.role_account_id, s.principal_arn, s.caller_type, s.caller, s.api,
        s.issuing_source_ip, s.issued_in_lake,
        (s.caller_type = 'AWSService'
         OR regexp_like(s.principal_arn, '(?i)/i-[0-9a-f]{8,17}$')) AS service_session
    FROM sessions AS s
    JOIN win_keys AS k ON k.access_key_id = s.access_key_id
),
first_use AS (
    SELECT access_key_id, net AS first_net
    FROM (
        SELECT access_key_id, net,
               row_number() OVER (PARTITION BY access_key_id ORDER BY event_time, event_id) AS rn
        FROM uses WHERE net IS NOT NULL
    ) WHERE rn = 1
),
-- where IP-shaped text is normalised, the same expression serves caller_sources
cs AS (
    SELECT
        kind, identity, first_seen, last_seen, calls,
        CASE
            WHEN source_ip_address ~ '^[0-9]{1,3}(\.[0-9]{1,3}){3}$'
                THEN array_to_string(array_slice(string_to_array(source_ip_address, '.'), 1, $ipv4_prefix_octets), '.')
            WHEN lower(source_ip_address) ~ '^::ffff:[0-9]{1,3}(\.[0-9]{1,3}){3}$'
                THEN array_to_string(array_slice(string_to_array(substr(source_ip_address, 8), '.'), 1, $ipv4_prefix_octets), '.')
            WHEN source_ip_address ~ '^[0-9A-Fa-f:]+$' AND source_ip_address LIKE '%:%'
                THEN array_to_string(array_slice(array_concat(
                    CASE WHEN split_part(lower(source_ip_address), '::', 1) = '' THEN make_array('0')[1:0]
                         ELSE string_to_array(split_part(lower(source_ip_address), '::', 1), ':') END,
                    make_array('0', '0', '0', '0', '0', '0', '0', '0')), 1, $ipv6_prefix_hextets), ':')
        END AS net
    FROM caller_sources
),
role_nets AS (
    SELECT DISTINCT identity AS role_arn, net
    FROM cs
    WHERE kind = 'role' AND net IS NOT NULL AND first_seen < $window_start
),
role_has_baseline AS (
    SELECT DISTINCT role_arn FROM role_nets
),
user_nets_by_account AS (
    SELECT net, split_part(identity, ':', 5) AS account_id, min(identity) AS example_user
    FROM cs
    WHERE kind = 'principal' AND net IS NOT NULL
      AND (identity LIKE 'arn:aws:iam::%:user/%' OR identity LIKE 'arn:aws:iam::%:root')
      AND last_seen >= $baseline_start AND first_seen < $window_end
    GROUP BY 1, 2
),
user_nets AS (
    SELECT net, min(example_user) AS example_user FROM user_nets_by_account GROUP BY net
),
known AS (
    SELECT scope, network AS net FROM cfg_known_networks
),
win_nets AS (
    SELECT access_key_id, net, count(*) AS calls, min(event_time) AS first_time, max(event_time) AS last_time,
           min(source_ip_address) AS ip, array_agg(event_id) AS ids,
           max(session_issuer_arn) AS session_issuer_arn
    FROM uses
    WHERE in_window AND net IS NOT NULL
    GROUP BY access_key_id, net
),
judged AS (
    SELECT
        w.*,
        k.role_arn, k.role_account_id, k.principal_arn, k.caller_type, k.caller, k.api,
        k.issuing_source_ip, coalesce(k.service_session, false) AS service_session,
        f.first_net,
        rn.net IS NOT NULL AS role_usual,
        rb.role_arn IS NOT NULL AS role_has_baseline,
        un.net IS NOT NULL AS user_network,
        coalesce(us.example_user, un.example_user) AS example_user,
        kn.net IS NOT NULL AS known_network,
        (w.net = f.first_net) AS is_first_net,
        (w.net = CASE
            WHEN k.issuing_source_ip ~ '^[0-9]{1,3}(\.[0-9]{1,3}){3}$'
                THEN array_to_string(array_slice(string_to_array(k.issuing_source_ip, '.'), 1, $ipv4_prefix_octets), '.')
            WHEN k.issuing_source_ip ~ '^[0-9A-Fa-f:]+$' AND k.issuing_source_ip LIKE '%:%'
                THEN array_to_string(array_slice(array_concat(
                    CASE WHEN split_part(lower(k.issuing_source_ip), '::', 1) = '' THEN make_array('0')[1:0]
                         ELSE string_to_array(split_part(lower(k.issuing_source_ip), '::', 1), ':') END,
                    make_array('0', '0', '0', '0', '0', '0', '0', '0')), 1, $ipv6_prefix_hextets), ':')
         END) AS is_issuing_net
    FROM win_nets AS w
    LEFT JOIN key_info AS k ON k.access_key_id = w.access_key_id
    LEFT JOIN first_use AS f ON f.access_key_id = w.access_key_id
    LEFT JOIN role_nets AS rn ON rn.role_arn = coalesce(k.role_arn, w.session_issuer_arn) AND rn.net = w.net
    LEFT JOIN role_has_baseline AS rb ON rb.role_arn = coalesce(k.role_arn, w.session_issuer_arn)
    LEFT JOIN user_nets AS un ON un.net = w.net
    LEFT JOIN user_nets_by_account AS us ON us.net = w.net AND us.account_id = k.role_account_id
    LEFT JOIN known AS kn ON kn.net = w.net
        AND (kn.scope = '*' OR kn.scope = coalesce(k.role_arn, w.session_issuer_arn) OR kn.scope = k.principal_arn)
),
reasons AS (
    SELECT j.*,
        -- every reason that applies to this (key, network), comma-separated (concat_ws skips NULLs)
        nullif(concat_ws(',',
            CASE WHEN NOT j.known_network AND j.service_session AND j.user_network
                 THEN 'service-session-from-user-network' END,
            CASE WHEN NOT j.known_network AND NOT coalesce(j.is_first_net, false)
                      AND NOT coalesce(j.is_issuing_net, false) AND NOT j.role_usual
                 THEN 'key-used-from-new-network' END,
            CASE WHEN NOT j.known_network AND j.service_session AND j.role_has_baseline AND NOT j.role_usual
                 THEN 'service-session-outside-usual-networks' END
        ), '') AS reason
    FROM judged AS j
),
per_key AS (
    SELECT
        access_key_id,
        array_sort(array_distinct(flatten(array_agg(string_to_array(reason, ',')) FILTER (WHERE reason IS NOT NULL)))) AS reasons,
        array_sort(array_agg(net) FILTER (WHERE reason IS NOT NULL)) AS suspicious_networks,
        array_sort(array_agg(net)) AS window_networks,
        min(CASE WHEN reason IS NOT NULL THEN ip END) AS source_ip_address,
        min(CASE WHEN reason IS NOT NULL THEN first_time END) AS event_time,
        max(CASE WHEN reason IS NOT NULL THEN last_time END) AS last_event_time,
        sum(CASE WHEN reason IS NOT NULL THEN calls ELSE 0 END) AS suspicious_calls,
        sum(calls) AS window_calls,
        flatten(array_agg(CASE WHEN reason IS NOT NULL THEN ids END) FILTER (WHERE reason IS NOT NULL)) AS ids,
        max(coalesce(role_arn, session_issuer_arn)) AS role_arn,
        max(role_account_id) AS role_account_id,
        max(principal_arn) AS principal_arn,
        max(caller) AS issued_to,
        max(api) AS api,
        max(issuing_source_ip) AS issuing_source_ip,
        max(first_net) AS first_net,
        bool_or(service_session) AS service_session,
        bool_or(role_has_baseline) AS role_has_baseline,
        max(example_user) AS user_on_same_network
    FROM reasons
    GROUP BY access_key_id
    HAVING count(reason) > 0
),
issuing AS (
    SELECT a.issued_access_key_id, a.event_ids
    FROM assumptions AS a JOIN per_key AS p ON p.access_key_id = a.issued_access_key_id
)
SELECT
    concat_ws('|', 'credential-elsewhere', p.access_key_id) AS finding_key,
    'credential-elsewhere' AS rule,
    CASE WHEN array_has(p.reasons, 'key-used-from-new-network')
              OR array_has(p.reasons, 'service-session-from-user-network') THEN 'high' ELSE 'medium' END AS severity,
    CASE WHEN p.service_session THEN 'Service-issued credentials used from an unusual network'
         ELSE 'Session credentials used from a second network' END AS title,
    concat('Key ', p.access_key_id, ' of ', coalesce(p.role_arn, p.principal_arn, '?'),
           CASE WHEN p.issued_to IS NOT NULL THEN concat(' (issued to ', p.issued_to, ' at ', coalesce(p.issuing_source_ip, '?'), ')') ELSE ' (issuing call not in lake)' END,
           ' signed ', CAST(p.suspicious_calls AS VARCHAR), ' of its ', CAST(p.window_calls AS VARCHAR),
           ' window call(s) from ', array_to_string(p.suspicious_networks, ', '),
           ' (first used from ', coalesce(p.first_net, '?'), '): ', array_to_string(p.reasons, ', '),
           CASE WHEN p.user_on_same_network IS NOT NULL AND array_has(p.reasons, 'service-session-from-user-network')
                THEN concat('; the same network is used by ', p.user_on_same_network) ELSE '' END,
           CASE WHEN NOT coalesce(p.role_has_baseline, false) THEN '; the role has no network baseline' ELSE '' END) AS summary,
    p.event_time,
    p.last_event_time,
    p.role_account_id AS account_id,
    p.principal_arn,
    p.role_arn,
    p.source_ip_address,
    p.access_key_id,
    array_sort(array_distinct(array_concat(coalesce(i.event_ids, make_array('')[1:0]), p.ids))) AS event_ids,
    make_array('T1552.005', 'T1550.001', 'T1078.004') AS attack,
    -- details
    p.reasons,
    p.suspicious_networks,
    p.window_networks,
    p.first_net AS first_use_network,
    p.issuing_source_ip,
    p.suspicious_calls,
    p.window_calls,
    p.service_session,
    coalesce(p.role_has_baseline, false) AS role_has_network_baseline,
    p.user_on_same_network
FROM per_key AS p
LEFT JOIN issuing AS i ON i.issued_access_key_id = p.access_key_id
ORDER BY p.event_time
