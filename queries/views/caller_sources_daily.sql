-- name: caller_sources_daily
-- description: What `caller_sources` adds up: calls per caller, source IP and user agent within one
--   account and day of the lake. `derive` stores it per account and day (it depends on that
--   day's events only).
-- columns:
--   kind: role (calls made with a session of the role) or principal (any other caller)
--   identity: see caller_sources
--   source_ip_address: where the calls came from (an IP, or an AWS service name)
--   user_agent: the user agent of the calls
--   calls: events logged for this caller, IP and user agent in the account and day
--   failed_calls: those with an errorCode
--   first_seen: the first of those events, UTC
--   last_seen: the last of those events, UTC
--   account_id: the lake partition (account) the events were read from
--   date: the lake partition (day, UTC) the events were read from
SELECT
    CASE WHEN user_type = 'AssumedRole' THEN 'role' ELSE 'principal' END AS kind,
    coalesce(
        CASE
            WHEN user_type = 'AssumedRole' THEN coalesce(session_issuer_arn, principal_arn)
            WHEN user_type = 'AWSService' THEN coalesce(invoked_by, principal_id)
            ELSE coalesce(principal_arn, user_name, principal_id, invoked_by)
        END,
        principal_account_id,
        '(unknown)'
    ) AS identity,
    source_ip_address,
    user_agent,
    count(*) AS calls,
    count(error_code) AS failed_calls,
    min(event_time) AS first_seen,
    max(event_time) AS last_seen,
    account_id,
    date
FROM events
WHERE source_ip_address IS NOT NULL
GROUP BY 1, 2, source_ip_address, user_agent, account_id, date
