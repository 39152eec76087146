-- name: session_usage_daily
-- description: The calls signed by temporary access keys (ASIA...), summed per key, source IP, user agent
--   and sharedEventID within one account and day of the lake: what `session_usage` adds up.
--   `derive` stores it per account and day (it depends on that day's events only).
-- columns:
--   access_key_id: the temporary access key that signed the calls
--   source_ip_address: where the calls came from
--   user_agent: the user agent of the calls
--   shared_event_id: the sharedEventID of a call logged in several accounts (its copies are counted once by session_usage), else null
--   signed_rows: events signed by the key in this group
--   failed_rows: those with an errorCode
--   first_used: the first of those events, UTC
--   last_used: the last of those events, UTC
--   principal_arn: the ARN the session acted as
--   principal_account_id: the account of principal_arn
--   session_issuer_arn: the role (or user) behind the session
--   session_issuer_account_id: the account of session_issuer_arn
--   session_issuer_user_name: the name of the role (or user) behind the session
--   session_issuer_type: Role, IAMUser, Root, ...
--   session_created: the session's creation time as its calls report it
--   mfa_authenticated: any call reports the session as MFA-authenticated
--   source_identity: the session's source identity as its calls report it
--   account_id: the lake partition (account) the events were read from
--   date: the lake partition (day, UTC) the events were read from
SELECT
    access_key_id,
    source_ip_address,
    user_agent,
    shared_event_id,
    count(*) AS signed_rows,
    count(error_code) AS failed_rows,
    min(event_time) AS first_used,
    max(event_time) AS last_used,
    max(principal_arn) AS principal_arn,
    max(principal_account_id) AS principal_account_id,
    max(session_issuer_arn) AS session_issuer_arn,
    max(session_issuer_account_id) AS session_issuer_account_id,
    max(session_issuer_user_name) AS session_issuer_user_name,
    max(session_issuer_type) AS session_issuer_type,
    min(session_creation_date) AS session_created,
    bool_or(mfa_authenticated) AS mfa_authenticated,
    max(source_identity) AS source_identity,
    account_id,
    date
FROM events
WHERE access_key_id LIKE 'ASIA%'
-- A plain GROUP BY (DISTINCT aggregates would keep one hash set per session, which does not
-- scale to millions of sessions in DataFusion); the two copies of a call logged in two accounts
-- share key, source IP, user agent and sharedEventID, so session_usage can count them once.
GROUP BY access_key_id, source_ip_address, user_agent, shared_event_id, account_id, date
