-- description: Sessions as triage shows them: the `sessions` view with the issuing call's user
--   agent (from `assumptions`). Triage adds the filter (a key, a parent key, a principal, a
--   role, an address, a session name) as a typed expression, never as text.
SELECT
    s.access_key_id,
    s.issued_in_lake,
    s.issued_at,
    s.api,
    s.caller_type,
    s.caller,
    s.caller_account_id,
    a.caller_access_key_id,
    s.role_arn,
    s.role_account_id,
    s.role_session_name,
    s.principal_arn,
    s.issuing_source_ip,
    a.user_agent AS issuing_user_agent,
    s.requested_duration_seconds,
    s.effective_duration_seconds,
    s.credentials_expiration,
    s.mfa,
    s.external_id,
    s.source_identity,
    s.parent_access_key_id,
    s.first_used,
    s.last_used,
    s.calls,
    s.failed_calls,
    s.distinct_source_ips,
    s.used_after_expiration,
    s.chain_depth,
    s.origin_type,
    s.origin_principal_arn
FROM sessions AS s
LEFT JOIN assumptions AS a ON a.call_id = s.call_id
