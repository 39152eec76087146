-- name: issued_credentials
-- description: The successful assumptions that issued a temporary access key, with the columns `sessions`
--   needs. sts-audit computes it once per query, for the columns the query reads, because
--   `sessions` reads it four times (role chains are recursive) and DataFusion would otherwise
--   recompute it each time.
-- columns:
--   issued_access_key_id: the access key of the new session (ASIA...)
--   event_time: when STS issued it, UTC
--   api: the STS API
--   call_id: see assumptions
--   caller_type: userIdentity.type of the caller
--   caller: who called, readably (see assumptions)
--   caller_account_id: the caller's account
--   caller_access_key_id: the key that signed the call (an ASIA... key when the caller was a session)
--   role_arn: the role assumed
--   role_account_id: the account of role_arn
--   role_name: the name of role_arn
--   role_session_name: the session name
--   assumed_role_arn: the ARN the new session acts as
--   federated_user_arn: the federated user of a GetFederationToken call
--   source_ip_address: where the call came from
--   requested_duration_seconds: the duration asked for
--   effective_duration_seconds: the lifetime STS granted (see assumptions)
--   credentials_expiration: when the credentials expire, UTC
--   source_identity: the source identity of the new session
--   external_id: the external ID given
--   mfa: MFA was used (see assumptions)
--   is_cross_account: the caller's account differs from the role's
SELECT
    issued_access_key_id,
    event_time,
    api,
    call_id,
    caller_type,
    caller,
    caller_account_id,
    caller_access_key_id,
    role_arn,
    role_account_id,
    role_name,
    role_session_name,
    assumed_role_arn,
    federated_user_arn,
    source_ip_address,
    requested_duration_seconds,
    effective_duration_seconds,
    credentials_expiration,
    source_identity,
    external_id,
    mfa,
    is_cross_account
FROM assumptions
WHERE issued_access_key_id IS NOT NULL
