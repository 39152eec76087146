-- name: access
-- title: Who reached which roles, and how
-- description: Each principal and the roles it assumed or tried to assume, per STS API: calls,
--   failures, calls made with MFA, the federation (SAML or OIDC provider) it came through, the
--   source IPs, and the first and last call. (The kind of principal shows in its name: an IAM
--   user's or assumed role's ARN, a SAML or OIDC subject with its provider, an AWS service.)
SELECT
    caller AS principal,
    coalesce(role_arn, '') AS role_arn,
    api,
    count(*) AS calls,
    count(error_code) AS failed,
    count(CASE WHEN mfa THEN 1 END) AS with_mfa,
    coalesce(max(coalesce(saml_issuer, web_identity_provider, identity_provider)), '')
        AS federation,
    array_to_string(array_sort(array_agg(DISTINCT source_ip_address)), ' ') AS source_ips,
    min(event_time) AS first_seen,
    max(event_time) AS last_seen
FROM assumptions
WHERE event_time >= $period_start AND event_time < $period_end
GROUP BY caller, role_arn, api
ORDER BY calls DESC, principal, role_arn, api
