-- name: assumption_copies
-- description: One row per copy of a credential-issuing STS call as one account's log holds it (a
--   cross-account call is logged in both accounts), with the columns of `assumptions` computed
--   from that copy alone; `assumptions` pairs the copies of each call. `derive` stores it per
--   account and day: a row depends on its own event only.
-- columns:
--   event_time: when STS was called, UTC
--   call_id: sharedEventID when the call was logged in several accounts, else eventID
--   api: the STS API (eventName)
--   aws_region: the region STS was called in
--   caller_type: userIdentity.type of the caller: IAMUser, AssumedRole, SAMLUser, WebIdentityUser, AWSService, Root, ...
--   caller: who called, readably: the caller's ARN, or the SAML/OIDC subject, or the AWS service
--   caller_arn: userIdentity.arn of the caller (null for SAML, OIDC and AWS service callers)
--   caller_account_id: the caller's account (null for SAML, OIDC and AWS service callers)
--   caller_access_key_id: the key that signed the call; an ASIA... key means the caller was itself a session
--   caller_session_issuer_arn: for an AssumedRole caller, the role it was using (role chaining)
--   invoked_by: the AWS service that called on the caller's behalf
--   identity_provider: the SAML or OIDC provider of a federated caller
--   role_arn: the role requested; for a failed call without payloads, taken from errorMessage
--   role_account_id: the account of role_arn
--   role_name: the role's name (last part of role_arn)
--   role_session_name: the session name asked for
--   source_ip_address: where the call came from (an IP, or a service name)
--   user_agent: the caller's user agent
--   requested_duration_seconds: durationSeconds as requested; null when not requested
--   effective_duration_seconds: how long the credentials last: expiration minus call time when logged, else the request, else the API's default (3600 s; 43200 s for GetSessionToken and GetFederationToken; 900 s for AssumeRoot); null when the call failed
--   credentials_expiration: when the issued credentials expire, UTC
--   issued_access_key_id: the access key of the new session (ASIA...)
--   assumed_role_arn: the ARN the new session acts as (arn:aws:sts::...:assumed-role/...)
--   federated_user_arn: the federated user of a GetFederationToken call
--   source_identity: the source identity set on the new session (requestParameters.sourceIdentity), else the caller's
--   external_id: requestParameters.externalId (third-party access)
--   mfa: true when the caller's session was MFA-authenticated or an MFA code was given with the call
--   saml_subject: the SAML subject (AssumeRoleWithSAML)
--   saml_issuer: the SAML issuer (AssumeRoleWithSAML)
--   web_identity_subject: the OIDC subject (AssumeRoleWithWebIdentity)
--   web_identity_provider: the OIDC provider (AssumeRoleWithWebIdentity)
--   succeeded: true when STS issued credentials (no errorCode)
--   error_code: errorCode of a failed call
--   error_message: errorMessage of a failed call
--   is_cross_account: the caller's account is known and differs from the role's account
--   recipient_account_id: the account whose log holds this copy
--   event_id: the eventID of this copy
--   shared_event_id: sharedEventID, the same in every copy of a call logged in several accounts
--   copy_key: orders the copies of a call; the smallest speaks for it (the caller's own log first, then a copy with a real identity, then the lowest account and eventID)
--   account_id: the lake partition (account) the copy was read from
--   date: the lake partition (day, UTC) the copy was read from
SELECT
    event_time,
    coalesce(shared_event_id, event_id) AS call_id,
    event_name AS api,
    aws_region,
    user_type AS caller_type,
    CASE
        WHEN user_type = 'SAMLUser' THEN coalesce(saml_subject, user_name, principal_id)
        WHEN user_type = 'WebIdentityUser'
            THEN coalesce(web_identity_subject, user_name, principal_id)
        WHEN user_type = 'AWSService' THEN coalesce(invoked_by, source_ip_address)
        ELSE coalesce(principal_arn, user_name, principal_id, invoked_by)
    END AS caller,
    principal_arn AS caller_arn,
    principal_account_id AS caller_account_id,
    access_key_id AS caller_access_key_id,
    session_issuer_arn AS caller_session_issuer_arn,
    invoked_by,
    identity_provider,
    role_arn,
    role_account_id,
    role_name,
    role_session_name,
    source_ip_address,
    user_agent,
    duration_seconds AS requested_duration_seconds,
    CASE WHEN error_code IS NULL THEN coalesce(
        CAST(
            extract(EPOCH FROM credentials_expiration) - extract(EPOCH FROM event_time)
            AS BIGINT
        ),
        duration_seconds,
        CASE event_name
            WHEN 'GetSessionToken' THEN 43200
            WHEN 'GetFederationToken' THEN 43200
            WHEN 'AssumeRoot' THEN 900
            ELSE 3600
        END
    ) END AS effective_duration_seconds,
    credentials_expiration,
    issued_access_key_id,
    assumed_role_arn,
    federated_user_arn,
    coalesce(json_get_str(request_parameters, 'sourceIdentity'), source_identity)
        AS source_identity,
    external_id,
    coalesce(mfa_authenticated, false) OR mfa_serial_number IS NOT NULL AS mfa,
    saml_subject,
    saml_issuer,
    web_identity_subject,
    web_identity_provider,
    error_code IS NULL AS succeeded,
    error_code,
    error_message,
    coalesce(
        principal_account_id IS NOT NULL
        AND role_account_id IS NOT NULL
        AND principal_account_id <> role_account_id,
        false
    ) AS is_cross_account,
    recipient_account_id,
    event_id,
    shared_event_id,
    -- Which copy speaks for the call: the caller's own log first, then a copy with a real
    -- identity (not the bare AWSAccount of the other side), then the lowest account/eventID.
    -- A sortable key rather than a window, so no wide rows are ever sorted.
    concat(
        CASE WHEN recipient_account_id = principal_account_id THEN '0' ELSE '1' END,
        CASE WHEN user_type IS NULL OR user_type = 'AWSAccount' THEN '1' ELSE '0' END,
        coalesce(recipient_account_id, ''),
        '/',
        event_id
    ) AS copy_key,
    account_id,
    date
FROM events
WHERE event_source = 'sts.amazonaws.com'
  AND event_name IN (
      'AssumeRole', 'AssumeRoleWithSAML', 'AssumeRoleWithWebIdentity',
      'GetSessionToken', 'GetFederationToken', 'AssumeRoot'
  )
