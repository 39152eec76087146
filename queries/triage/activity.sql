-- description: The calls a key signed, as triage lists them. Triage adds the key and the time
--   bounds (the session's first and last use, or --from/--to) as typed filters, with the
--   matching `date` partitions, so only the days the key was used are read.
SELECT
    event_time,
    event_id,
    event_source,
    event_name,
    aws_region,
    recipient_account_id,
    source_ip_address,
    user_agent,
    error_code,
    error_message,
    access_key_id,
    date
FROM events
