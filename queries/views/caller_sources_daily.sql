-- name: caller_sources_daily
-- description: What `caller_sources` adds up: calls per caller, source IP and user agent within one
--   account and day of the lake. `derive` stores it per account and day (it depends on that
--   day's events only).
-- columns:
--   kind: role (calls made with a session of the role) or principal (any other caller)
--   identity: see caller_sources (anonymous for calls made without credentials)
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
    CASE
        -- How CloudTrail logs a request made without credentials (an anonymous S3 read).
        WHEN principal_account_id = 'ANONYMOUS_PRINCIPAL' THEN 'anonymous'
        ELSE coalesce(
            CASE
                WHEN user_type = 'AssumedRole'
                    THEN coalesce(nullif(session_issuer_arn, ''), nullif(principal_arn, ''))
                WHEN user_type = 'AWSService'
                    THEN coalesce(nullif(invoked_by, ''), nullif(principal_id, ''))
                ELSE coalesce(
                    nullif(principal_arn, ''),
                    nullif(user_name, ''),
                    nullif(principal_id, ''),
                    nullif(invoked_by, '')
                )
            END,
            nullif(principal_account_id, ''),
            '(unknown)'
        )
    END AS identity,
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
