-- name: caller_sources
-- description: One row per caller, source IP and user agent, over every event with a source IP: who called
--   AWS from where, with what, how often and when. Roles are counted through their sessions (the
--   calls made with credentials of an assumed role); other callers by their own identity. An
--   empty identity field counts as absent (anonymous S3 reads log `principalId: ""`); a call
--   made without credentials (userIdentity.accountId `ANONYMOUS_PRINCIPAL`) is listed as
--   `anonymous`; other calls whose identity names nobody are listed under their account, or
--   `(unknown)`. A call logged in two accounts counts twice (once per log).
-- columns:
--   kind: role (calls made with a session of the role) or principal (any other caller)
--   identity: the role ARN, or the caller's ARN, user name, AWS service or principal ID; anonymous for calls made without credentials; else its account, else (unknown)
--   source_ip_address: where the calls came from (an IP, or an AWS service name)
--   user_agent: the user agent of the calls
--   calls: events logged for this caller, IP and user agent
--   failed_calls: those with an errorCode
--   first_seen: the first of those events, UTC
--   last_seen: the last of those events, UTC
SELECT
    kind,
    identity,
    source_ip_address,
    user_agent,
    sum(calls) AS calls,
    sum(failed_calls) AS failed_calls,
    min(first_seen) AS first_seen,
    max(last_seen) AS last_seen
FROM caller_sources_daily
GROUP BY kind, identity, source_ip_address, user_agent
