-- id: new-federated-subject
-- title: A SAML or OIDC subject never seen for a role assumed it
-- family: 8 (new federated subjects)
-- severity: high   = an OIDC subject that is a GitHub pull_request token, or whose repository owner
--                    (repo:<owner>/...) never reached the role in the baseline (a fork, another org)
--           medium = another OIDC subject new for a role that has a baseline
--           low    = a SAML subject new for the role (people join teams), or any subject for a role
--                    with no federated baseline at all (new role; first-seen context)
-- attack: T1078.004 (Valid Accounts: Cloud Accounts), T1199 (Trusted Relationship),
--         T1195.002 (Supply Chain Compromise: Compromise Software Supply Chain) for CI tokens
-- rationale: a role trusting an OIDC provider with a loose `sub` condition (repo:org/*:* or
--   no condition) can be assumed by any workflow that can mint a token, including a fork's
--   pull_request run; the subject says who it was. New SAML subjects for a role are usually
--   onboarding, but also the trace of an IdP compromise (golden SAML) and worth context.
--   One finding per (role, subject) in the window; failed calls count too (they show the probe).
-- false_positives: a new repository or environment added to a deploy role's trust policy;
--   new engineers (SAML, low); a new branch name in subjects that include the ref (medium: roles
--   should pin environments, not refs).
-- baseline: (role ARN, subject) pairs between baseline_start and window_start, and the owners
--   (repo:<owner>/) and subject count per role. With no baseline, findings are low.
WITH fed AS (
    SELECT
        a.*,
        coalesce(a.web_identity_subject, a.saml_subject, CASE WHEN a.api = 'AssumeRoleWithWebIdentity' OR a.api = 'AssumeRoleWithSAML' THEN a.caller END) AS subject,
        CASE WHEN a.api = 'AssumeRoleWithWebIdentity' THEN 'oidc' ELSE 'saml' END AS kind
    FROM assumptions AS a
    WHERE a.api IN ('AssumeRoleWithWebIdentity', 'AssumeRoleWithSAML')
      AND a.event_time >= $baseline_start AND a.event_time < $window_end
),
fed2 AS (
    SELECT *,
        CASE WHEN subject LIKE 'repo:%/%' THEN split_part(substr(subject, 6), '/', 1) END AS repo_owner
    FROM fed WHERE subject IS NOT NULL AND role_arn IS NOT NULL
),
base_pairs AS (
    SELECT role_arn, subject, count(*) AS n FROM fed2 WHERE event_time < $window_start GROUP BY 1, 2
),
base_roles AS (
    SELECT role_arn, count(DISTINCT subject) AS subjects, count(*) AS n FROM fed2 WHERE event_time < $window_start GROUP BY 1
),
base_owners AS (
    SELECT DISTINCT role_arn, repo_owner FROM fed2 WHERE event_time < $window_start AND repo_owner IS NOT NULL
),
win AS (
    SELECT
        role_arn, subject, max(kind) AS kind, max(repo_owner) AS repo_owner,
        min(event_time) AS event_time, max(event_time) AS last_event_time,
        max(role_account_id) AS account_id,
        min(source_ip_address) AS source_ip_address,
        min(issued_access_key_id) AS access_key_id,
        max(coalesce(web_identity_provider, saml_issuer, identity_provider)) AS provider,
        count(*) AS calls,
        sum(CASE WHEN succeeded THEN 1 ELSE 0 END) AS succeeded_calls,
        array_sort(array_distinct(flatten(array_agg(event_ids)))) AS event_ids
    FROM fed2
    WHERE event_time >= $window_start
    GROUP BY role_arn, subject
),
judged AS (
    SELECT
        w.*,
        br.subjects AS baseline_subjects,
        br.n AS baseline_calls,
        bo.repo_owner IS NOT NULL AS owner_known,
        (w.kind = 'oidc' AND w.subject LIKE '%:pull_request%') AS pull_request
    FROM win AS w
    LEFT JOIN base_pairs AS bp ON bp.role_arn = w.role_arn AND bp.subject = w.subject
    LEFT JOIN base_roles AS br ON br.role_arn = w.role_arn
    LEFT JOIN base_owners AS bo ON bo.role_arn = w.role_arn AND bo.repo_owner = w.repo_owner
    WHERE bp.n IS NULL
)
SELECT
    concat_ws('|', 'new-federated-subject', j.role_arn, j.subject) AS finding_key,
    'new-federated-subject' AS rule,
    CASE
        WHEN j.kind = 'oidc' AND (j.pull_request OR (j.repo_owner IS NOT NULL AND j.baseline_calls IS NOT NULL AND NOT j.owner_known)) THEN 'high'
        WHEN j.baseline_calls IS NULL THEN 'low'
        WHEN j.kind = 'oidc' THEN 'medium'
        ELSE 'low'
    END AS severity,
    concat('New ', upper(j.kind), ' subject for a role') AS title,
    concat(upper(j.kind), ' subject ', j.subject, ' (', coalesce(j.provider, '?'), ') assumed ', j.role_arn, ' ',
           CAST(j.calls AS VARCHAR), ' time(s), ', CAST(j.succeeded_calls AS VARCHAR), ' succeeded; ',
           CASE WHEN j.baseline_calls IS NULL THEN 'the role has no federated baseline'
                ELSE concat('the role had ', CAST(j.baseline_subjects AS VARCHAR), ' other subject(s) in the baseline') END,
           CASE WHEN j.pull_request THEN '; a pull_request token' ELSE '' END,
           CASE WHEN j.repo_owner IS NOT NULL AND j.baseline_calls IS NOT NULL AND NOT j.owner_known THEN concat('; repository owner ', j.repo_owner, ' never reached this role') ELSE '' END) AS summary,
    j.event_time,
    j.last_event_time,
    j.account_id,
    j.subject AS principal_arn,
    j.role_arn,
    j.source_ip_address,
    j.access_key_id,
    j.event_ids,
    CASE WHEN j.kind = 'oidc' THEN make_array('T1078.004', 'T1199', 'T1195.002') ELSE make_array('T1078.004', 'T1199') END AS attack,
    -- details
    j.kind,
    j.subject,
    j.provider,
    j.repo_owner,
    j.pull_request,
    j.calls,
    j.succeeded_calls,
    coalesce(j.baseline_subjects, 0) AS baseline_subjects,
    coalesce(j.baseline_calls, 0) AS baseline_calls
FROM judged AS j
ORDER BY j.event_time
