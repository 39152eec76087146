-- name: assumptions
-- description: One row per credential-issuing STS call (AssumeRole, AssumeRoleWithSAML,
--   AssumeRoleWithWebIdentity, GetSessionToken, GetFederationToken, AssumeRoot), whether it
--   succeeded or not. A cross-account call is logged in both accounts under one sharedEventID:
--   the copies are paired and the caller's copy (the one logged in the caller's account) gives
--   the row, so the caller's full identity is kept; event_ids lists every copy.
-- columns:
--   event_time: when STS was called, UTC
--   call_id: sharedEventID when the call was logged in several accounts, else eventID
--   event_ids: the eventID of every copy of the call in the lake, sorted
--   copies: how many copies of the call the lake holds (2 for a cross-account call seen from both sides)
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
--   recipient_account_id: the account whose log gave this row (the caller's, when both logged it)
WITH
-- Only calls logged in several accounts have copies to pair; the rest pass straight through.
shared_copies AS (
    SELECT
        shared_event_id,
        min(copy_key) AS chosen_copy,
        array_agg(event_id) AS event_ids,
        count(*) AS copies
    FROM assumption_copies
    WHERE shared_event_id IS NOT NULL
    GROUP BY shared_event_id
)
SELECT
    r.event_time,
    r.call_id,
    coalesce(array_sort(c.event_ids), [r.event_id]) AS event_ids,
    coalesce(c.copies, 1) AS copies,
    r.api,
    r.aws_region,
    r.caller_type,
    r.caller,
    r.caller_arn,
    r.caller_account_id,
    r.caller_access_key_id,
    r.caller_session_issuer_arn,
    r.invoked_by,
    r.identity_provider,
    r.role_arn,
    r.role_account_id,
    r.role_name,
    r.role_session_name,
    r.source_ip_address,
    r.user_agent,
    r.requested_duration_seconds,
    r.effective_duration_seconds,
    r.credentials_expiration,
    r.issued_access_key_id,
    r.assumed_role_arn,
    r.federated_user_arn,
    r.source_identity,
    r.external_id,
    r.mfa,
    r.saml_subject,
    r.saml_issuer,
    r.web_identity_subject,
    r.web_identity_provider,
    r.succeeded,
    r.error_code,
    r.error_message,
    r.is_cross_account,
    r.recipient_account_id
-- The small side first: DataFusion builds its hash table from the left input.
FROM shared_copies AS c
RIGHT JOIN assumption_copies AS r ON r.shared_event_id = c.shared_event_id
WHERE r.shared_event_id IS NULL OR r.copy_key = c.chosen_copy
