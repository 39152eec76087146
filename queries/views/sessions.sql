-- name: sessions
-- description: One row per issued temporary credential (access key): the assumption that issued it, joined
--   with the calls it signed (session_usage), and its place in a role chain. Sessions whose
--   issuing call is not in the lake (issued before the lake's first day, or in an account whose
--   logs are not ingested) still appear, built from their usage alone, with issued_in_lake false.
-- columns:
--   access_key_id: the session's temporary access key (ASIA...)
--   issued_in_lake: true when the issuing STS call is in the lake; false when the row is built from usage alone
--   issued_at: when the credentials were issued (the STS call, else the creation date its calls report), UTC
--   api: the STS API that issued the session
--   call_id: the assumptions.call_id of the issuing call
--   caller_type: userIdentity.type of whoever asked for the session
--   caller: who asked for the session, readably (ARN, SAML/OIDC subject or AWS service)
--   caller_account_id: the account of the caller
--   role_arn: the role the session acts as (or, for GetSessionToken/GetFederationToken, the user behind it)
--   role_account_id: the account of role_arn
--   role_name: the name of role_arn
--   role_session_name: the session name
--   principal_arn: the ARN the session acts as (assumed-role/... or federated-user/...)
--   issuing_source_ip: the source IP of the issuing call
--   requested_duration_seconds: the duration asked for; null when not asked
--   effective_duration_seconds: the lifetime STS granted (see assumptions)
--   credentials_expiration: when the credentials expire, UTC
--   source_identity: the session's source identity
--   external_id: the external ID given when the session was issued
--   mfa: the session was issued with MFA or reports MFA authentication
--   is_cross_account: the caller's account differs from the role's
--   first_used: the first call signed by the session, UTC; null when never used in the lake
--   last_used: the last call signed by the session, UTC
--   active_seconds: last_used minus first_used, in seconds
--   calls: calls signed by the session (0 when never used in the lake)
--   failed_calls: those calls that returned an errorCode
--   distinct_source_ips: the source IPs the session was used from, sorted
--   distinct_source_ip_count: how many distinct source IPs
--   user_agents: the user agents the session was used with, sorted
--   used_after_expiration: a call signed by the session is logged after its expiration (null when the expiration is unknown)
--   parent_access_key_id: the session (ASIA... key) that called STS to issue this one, for role chains; null when a long-term key, a SAML/OIDC token or a service asked
--   chain_depth: 1 when the session was issued to its origin principal, n+1 when issued to a session of depth n; null when the issuing call is not in the lake
--   accounts_crossed: account boundaries crossed from the origin principal to this session
--   origin_type: caller_type of the first link in the chain
--   origin_principal_arn: who is at the root of the chain: IAM user or root ARN, SAML or OIDC subject, AWS service, or the first AssumedRole ARN the lake knows of
--   role_chain: the chain as text: origin -> role -> role ...
WITH RECURSIVE issued AS (
    SELECT * FROM issued_credentials
),
chains (access_key_id, chain_depth, accounts_crossed, origin_type, origin_principal_arn, role_chain, role_account_id) AS (
    SELECT
        i.issued_access_key_id,
        CAST(1 AS BIGINT),
        CAST(CASE WHEN i.is_cross_account THEN 1 ELSE 0 END AS BIGINT),
        i.caller_type,
        i.caller,
        concat(coalesce(i.caller, '?'), ' -> ', coalesce(i.role_arn, i.assumed_role_arn, i.federated_user_arn, '?')),
        i.role_account_id
    FROM issued AS i
    LEFT JOIN issued AS parent ON parent.issued_access_key_id = i.caller_access_key_id
    WHERE parent.issued_access_key_id IS NULL
    UNION ALL
    SELECT
        i.issued_access_key_id,
        c.chain_depth + 1,
        c.accounts_crossed
            + CASE WHEN i.role_account_id IS DISTINCT FROM c.role_account_id THEN 1 ELSE 0 END,
        c.origin_type,
        c.origin_principal_arn,
        concat(c.role_chain, ' -> ', coalesce(i.role_arn, i.assumed_role_arn, i.federated_user_arn, '?')),
        i.role_account_id
    FROM issued AS i
    JOIN chains AS c ON i.caller_access_key_id = c.access_key_id
)
SELECT
    coalesce(i.issued_access_key_id, u.access_key_id) AS access_key_id,
    i.issued_access_key_id IS NOT NULL AS issued_in_lake,
    coalesce(i.event_time, u.session_created) AS issued_at,
    i.api,
    i.call_id,
    i.caller_type,
    i.caller,
    i.caller_account_id,
    coalesce(i.role_arn, u.session_issuer_arn) AS role_arn,
    coalesce(i.role_account_id, u.session_issuer_account_id) AS role_account_id,
    coalesce(i.role_name, u.session_issuer_user_name) AS role_name,
    i.role_session_name,
    coalesce(i.assumed_role_arn, i.federated_user_arn, u.principal_arn) AS principal_arn,
    i.source_ip_address AS issuing_source_ip,
    i.requested_duration_seconds,
    i.effective_duration_seconds,
    i.credentials_expiration,
    coalesce(i.source_identity, u.source_identity) AS source_identity,
    i.external_id,
    coalesce(i.mfa, false) OR coalesce(u.mfa_authenticated, false) AS mfa,
    i.is_cross_account,
    u.first_used,
    u.last_used,
    u.active_seconds,
    coalesce(u.calls, 0) AS calls,
    coalesce(u.failed_calls, 0) AS failed_calls,
    u.distinct_source_ips,
    coalesce(u.distinct_source_ip_count, 0) AS distinct_source_ip_count,
    u.user_agents,
    u.last_used > i.credentials_expiration AS used_after_expiration,
    CASE WHEN i.caller_access_key_id LIKE 'ASIA%' THEN i.caller_access_key_id END
        AS parent_access_key_id,
    c.chain_depth,
    c.accounts_crossed,
    c.origin_type,
    c.origin_principal_arn,
    c.role_chain
FROM issued AS i
FULL OUTER JOIN session_usage AS u ON u.access_key_id = i.issued_access_key_id
LEFT JOIN chains AS c ON c.access_key_id = i.issued_access_key_id
