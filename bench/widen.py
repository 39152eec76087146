"""widen.py LAKE OUT COPIES: a lake COPIES times as long as LAKE, for scale benchmarks.

Copy k (0 is LAKE itself) shifts every time by k times the lake's span of days and renames
every key and event ID, so copies neither overlap nor deduplicate into each other: a 10M-event,
8-day lake becomes a 30M-event, 24-day one in a minute instead of an hour of the generator.
Writes OUT/events/account_id=.../date=.../*.parquet with DuckDB (which `bench/derive.sh`
needs anyway). Text that embeds the originals (request_parameters, user_identity, ...) is
left as it is: the derived views read the typed columns.
"""
import os, sys, duckdb

lake, out, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(f"{out}/events", exist_ok=True)
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute("SET TimeZone = 'UTC'")
con.execute(f"""CREATE VIEW src AS SELECT * FROM read_parquet('{lake}/events/*/*/*.parquet',
                hive_partitioning = true, hive_types_autocast = false)""")
first, last = con.execute("SELECT min(date)::DATE, max(date)::DATE FROM src").fetchone()
span = (last - first).days + 1
columns = [row[0] for row in con.execute("DESCRIBE src").fetchall()]
renamed = {"access_key_id", "issued_access_key_id", "event_id", "shared_event_id", "request_id"}
shifted = {"event_time", "session_creation_date", "credentials_expiration"}
for k in range(copies):
    def expr(c):
        if c == "date":
            return f"strftime(event_time + INTERVAL {k * span} DAY, '%Y-%m-%d') AS date"
        if k and c in renamed:
            return f"CASE WHEN {c} IS NULL THEN NULL ELSE {c} || 'W{k}' END AS {c}"
        if k and c in shifted:
            return f"{c} + INTERVAL {k * span} DAY AS {c}"
        return c
    select = ", ".join(expr(c) for c in columns)
    con.execute(f"""COPY (SELECT {select} FROM src) TO '{out}/events'
                    (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (account_id, date),
                     FILENAME_PATTERN 'copy{k}-{{uuid}}', ROW_GROUP_SIZE 65536, APPEND)""")
    print(f"copy {k}: +{k * span} days")
