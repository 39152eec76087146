-- name: integrity
-- title: Integrity gaps
-- description: What the newest `sts-audit verify --lake` run of each account and region found
--   not proven in the period: hourly digests missing (gap), digests invalid or unverifiable,
--   log files modified, missing (named by a digest, absent), unlisted (named by no digest),
--   unproven or pending, with the check that failed. Empty when everything verified, or when
--   no verify run was recorded (then the coverage section's verified share is 0).
WITH runs AS (
    SELECT account_id, region, max(verified_at) AS newest_run
    FROM verified
    GROUP BY account_id, region
)
SELECT v.account_id, v.region, v.kind, v.status, v.source_file, v.period_start,
    v.period_end, v.detail
FROM verified AS v
JOIN runs AS r
  ON v.account_id = r.account_id AND v.region = r.region AND v.verified_at = r.newest_run
WHERE v.status <> 'valid'
  AND (v.period_end IS NULL OR v.period_end >= $period_start)
  AND (v.period_start IS NULL OR v.period_start < $period_end)
ORDER BY v.account_id, v.region, v.period_end, v.kind, v.source_file
