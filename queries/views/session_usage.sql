-- name: session_usage
-- description: One row per temporary access key (ASIA...) that signed at least one call in the lake: how,
--   when and from where the session was used. `sessions` joins it with the issuing calls.
--   A call logged in two accounts (same sharedEventID) counts once.
-- columns:
--   access_key_id: the temporary access key that signed the calls
--   first_used: the first call signed by the key, UTC
--   last_used: the last call signed by the key, UTC
--   active_seconds: last_used minus first_used, in seconds
--   calls: calls signed by the key
--   failed_calls: those calls that returned an errorCode
--   distinct_source_ips: the source IPs of those calls, sorted
--   distinct_source_ip_count: how many distinct source IPs
--   user_agents: the user agents of those calls, sorted
--   principal_arn: the ARN the session acted as (assumed-role/... or federated-user/...)
--   principal_account_id: the account of principal_arn
--   session_issuer_arn: the role (or user) behind the session
--   session_issuer_account_id: the account of session_issuer_arn
--   session_issuer_user_name: the name of the role (or user) behind the session
--   session_issuer_type: Role, IAMUser, Root, ...
--   session_created: the session's creation time as its calls report it
--   mfa_authenticated: any call reports the session as MFA-authenticated
--   source_identity: the session's source identity as its calls report it
WITH
-- session_usage_daily holds each day and account apart. Only a call logged in two accounts
-- (its copies share key, source IP, user agent and sharedEventID) needs merging, so that it
-- counts once; per_key only sums, takes extremes and collects the other rows, whichever day
-- they come from. Plain GROUP BYs and no join: DISTINCT aggregates would keep one hash set per
-- session, which does not scale to millions of sessions in DataFusion.
per_source AS (
    SELECT
        access_key_id,
        source_ip_address,
        user_agent,
        shared_event_id,
        signed_rows,
        failed_rows,
        first_used,
        last_used,
        principal_arn,
        principal_account_id,
        session_issuer_arn,
        session_issuer_account_id,
        session_issuer_user_name,
        session_issuer_type,
        session_created,
        mfa_authenticated,
        source_identity
    FROM session_usage_daily
    WHERE shared_event_id IS NULL
    UNION ALL
    SELECT
        access_key_id,
        source_ip_address,
        user_agent,
        shared_event_id,
        sum(signed_rows) AS signed_rows,
        sum(failed_rows) AS failed_rows,
        min(first_used) AS first_used,
        max(last_used) AS last_used,
        max(principal_arn) AS principal_arn,
        max(principal_account_id) AS principal_account_id,
        max(session_issuer_arn) AS session_issuer_arn,
        max(session_issuer_account_id) AS session_issuer_account_id,
        max(session_issuer_user_name) AS session_issuer_user_name,
        max(session_issuer_type) AS session_issuer_type,
        min(session_created) AS session_created,
        bool_or(mfa_authenticated) AS mfa_authenticated,
        max(source_identity) AS source_identity
    FROM session_usage_daily
    WHERE shared_event_id IS NOT NULL
    GROUP BY access_key_id, source_ip_address, user_agent, shared_event_id
),
per_key AS (
    SELECT
        access_key_id,
        min(first_used) AS first_used,
        max(last_used) AS last_used,
        CAST(extract(EPOCH FROM max(last_used)) - extract(EPOCH FROM min(first_used)) AS BIGINT)
            AS active_seconds,
        sum(CASE WHEN shared_event_id IS NULL THEN signed_rows ELSE 1 END) AS calls,
        sum(
            CASE
                WHEN shared_event_id IS NULL THEN failed_rows
                WHEN failed_rows > 0 THEN 1
                ELSE 0
            END
        ) AS failed_calls,
        array_sort(array_distinct(
            array_agg(source_ip_address) FILTER (WHERE source_ip_address IS NOT NULL)
        )) AS distinct_source_ips,
        array_sort(array_distinct(array_agg(user_agent) FILTER (WHERE user_agent IS NOT NULL)))
            AS user_agents,
        max(principal_arn) AS principal_arn,
        max(principal_account_id) AS principal_account_id,
        max(session_issuer_arn) AS session_issuer_arn,
        max(session_issuer_account_id) AS session_issuer_account_id,
        max(session_issuer_user_name) AS session_issuer_user_name,
        max(session_issuer_type) AS session_issuer_type,
        min(session_created) AS session_created,
        coalesce(bool_or(mfa_authenticated), false) AS mfa_authenticated,
        max(source_identity) AS source_identity
    FROM per_source
    GROUP BY access_key_id
)
SELECT
    *,
    CAST(coalesce(array_length(distinct_source_ips), 0) AS BIGINT) AS distinct_source_ip_count
FROM per_key
