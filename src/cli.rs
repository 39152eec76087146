//! Command-line types (clap derive) only, in the binary: the library never sees them.
//! `commands` turns them into the library's plain types (`sts_audit::plan` validates them).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sts_audit::aws::AwsOptions;
use sts_audit::query::detect::findings::Severity;
use sts_audit::render;

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  the run could not be done (bad lake, unreadable source, disk full...)
  2  the run finished but some files or records failed (each is reported on stderr)
  3  detect: a finding reached --fail-on
  4  verify: a digest or log file of the period does not verify, or is missing
 64  invalid command line

Examples:
  sts-audit analyze sample-logs
  sts-audit ingest /data/cloudtrail --lake /data/sts-lake --from -7d
  sts-audit ingest s3://my-trail-bucket --lake s3://my-lake-bucket/sts --from -1d
  sts-audit report role-assumptions --lake /data/sts-lake --from -7d
  sts-audit report --list
  sts-audit derive --lake /data/sts-lake   (once after an ingest: fast reports)
  sts-audit detect --lake /data/sts-lake --fail-on high   (daily: the last full day)
  sts-audit sql \"SELECT role_arn, count(*) FROM assumptions GROUP BY 1 ORDER BY 2 DESC\"
  sts-audit sql                      (interactive shell)
  sts-audit schema sessions
  sts-audit verify /data/cloudtrail --public-keys keys.json --from -1d --lake /data/sts-lake";

#[derive(Debug, Parser)]
#[command(name = "sts-audit", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read CloudTrail logs into the Parquet lake (incremental, deduplicated, crash-safe)
    #[command(after_help = INGEST_HELP)]
    Ingest(IngestArgs),
    /// Ingest logs into a temporary lake (or --lake) and print the core reports
    #[command(after_help = ANALYZE_HELP)]
    Analyze(AnalyzeArgs),
    /// Build the derived tables (assumptions, sessions, ...) that make reports fast
    #[command(after_help = DERIVE_HELP)]
    Derive(DeriveArgs),
    /// Run a report from queries/reports (--list shows them)
    #[command(after_help = REPORT_HELP)]
    Report(ReportArgs),
    /// Flag anomalous durations, cross-account patterns and credential misuse in a window
    #[command(after_help = DETECT_HELP)]
    Detect(DetectArgs),
    /// Everything about one key, principal, role, address, session name or event
    #[command(after_help = TRIAGE_HELP)]
    Triage(TriageArgs),
    /// Run read-only SQL over the lake, or open an interactive shell
    #[command(after_help = SQL_HELP)]
    Sql(SqlArgs),
    /// Describe the tables and views and every column
    #[command(after_help = SCHEMA_HELP)]
    Schema(SchemaArgs),
    /// Find damaged data files in the lake and what they held
    #[command(after_help = CHECK_HELP)]
    Check(CheckArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell)
    #[command(after_help = COMPLETIONS_HELP)]
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write one per subcommand
    #[command(after_help = MAN_HELP)]
    Man(ManArgs),
    /// Validate CloudTrail's digest chain: signatures, log file hashes, every gap
    #[command(after_help = VERIFY_HELP)]
    Verify(VerifyArgs),
}

const VERIFY_HELP: &str = "\
Checks the log files of SOURCE (folders, or s3://bucket[/prefix], as for `ingest`) against the
digest files CloudTrail delivers beside them under CloudTrail-Digest/: for each account, region
and trail, each digest's signature (SHA256withRSA over digestEndTime, bucket/key, the digest's
SHA-256 and the previous signature), the previous digest's hash and signature as the next one
records them, and the SHA-256 of every log file a digest names. It reports, per account and
region: digests valid, invalid (and which check failed), pending, unverifiable, missing (a
gap in the hourly chain, in the middle or at the end); log files valid, modified, missing
(named by a digest, absent), unlisted (present, named by no digest), unproven (their digest
did not verify or is missing) and pending.

Signatures come from the digest object's x-amz-meta-signature on S3; on disk (a bucket copied
loses its metadata) from the previousDigestSignature of the digest after it, so the newest
digest is pending until the next one arrives (not a failure: the next run checks it). Digests
missing at the end are told from digests not yet delivered only when --to (default now) is
more than two hours (the hourly cadence and CloudTrail's delivery delay) after the newest.

Public keys, picked by the fingerprint each digest names: --public-keys FILE, the JSON `aws
cloudtrail list-public-keys --start-time T` prints in each trail's region (repeatable; fully
offline), else CloudTrail's ListPublicKeys API in each digest's region and its trail's home
region, with the credentials of --profile (its endpoint: AWS_ENDPOINT_URL_CLOUDTRAIL; the
--endpoint-url flag is for S3).

With --lake, the verdict of every log file, digest and gap is kept in <lake>/verified/ (the
`verified` table), and `report compliance` shows the share of records from verified files.

Examples:
  sts-audit verify s3://my-trail-bucket --from -1d
  aws cloudtrail list-public-keys --start-time 2024-03-01 > keys.json
  sts-audit verify /data/cloudtrail --public-keys keys.json --from 2024-03-01 --to 2024-03-02
  sts-audit verify s3://my-trail-bucket --public-keys keys.json --from -1d --format json
  sts-audit verify /data/cloudtrail --public-keys keys.json --from -1d --lake /data/sts-lake
  sts-audit verify s3://my-trail-bucket --from -7d --format csv > verdicts.csv

Exit codes: 0 everything of the period verified, 4 something did not, 1 the run failed, 64 bad
command line.";

/// `verify --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyFormat {
    /// The counts by account and region, the problems, the verdict
    Table,
    /// The same as one JSON object (totals, regions, problems, errors, passed)
    Json,
    /// The table as a Markdown document
    Markdown,
    /// One row per digest, log file and gap: the columns of the lake's `verified` table
    Csv,
    /// One JSON object a line per digest, log file and gap, as csv
    Ndjson,
}

#[derive(Debug, Args)]
#[command(mut_arg("accounts", |arg| arg.help("Only this account's folders (repeatable)")))]
pub struct VerifyArgs {
    /// Folders or s3://bucket/prefix holding AWSLogs/ (digests and log files)
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<String>,

    #[command(flatten)]
    pub scope: ScopeArgs,

    /// Only this region's folders (repeatable)
    #[arg(long = "region", value_name = "REGION")]
    pub regions: Vec<String>,

    /// The output of `aws cloudtrail list-public-keys` (repeatable: one per region); without
    /// it, CloudTrail's ListPublicKeys API
    #[arg(long, value_name = "FILE")]
    pub public_keys: Vec<PathBuf>,

    /// Keep every file's verdict in this lake's verified/ folder (a folder or s3://bucket/prefix)
    #[arg(long, value_name = "DIR|S3_URL")]
    pub lake: Option<String>,

    /// S3 objects fetched at once
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub concurrency: usize,

    /// Report format
    #[arg(long, value_enum, default_value_t = VerifyFormat::Table)]
    pub format: VerifyFormat,

    #[command(flatten)]
    pub aws: AwsArgs,
}

const CHECK_HELP: &str = "\
Reads every data file under <lake>/events whole and lists the damaged ones (a footer that
cannot be read, or data that cannot be decoded), each with what it held: its account and
date partition, the ingest run that wrote it, and its sources (the `source_file` values it
still holds, else the sources the manifest records for that run and account). Then says how
to repair: move the files out, remove those runs' manifest segments, ingest the same sources
again (deduplication writes back only what was lost). Lakes on disk only.

Examples:
  sts-audit check --lake /data/sts-lake
  sts-audit check --lake /data/sts-lake --format json

Exit codes: 0 no damage, 1 the check could not run, 2 damaged files found.";

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The lake: a folder
    #[arg(
        long,
        env = "STS_AUDIT_LAKE",
        default_value = "sts-lake",
        value_name = "DIR"
    )]
    pub lake: String,

    /// Report format
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub format: SummaryFormat,
}

const ANALYZE_HELP: &str = "\
Reads SOURCE like `ingest` into a lake (a temporary one, removed at the end, unless --lake is
given), builds its derived tables (see `derive`), then prints the reports role-assumptions, cross-account, role-chains, session-durations
and denied-assumptions.

Examples:
  sts-audit analyze sample-logs
  sts-audit analyze ~/Downloads/AWSLogs --from 2024-03-01 --format markdown > findings.md

Exit codes: 0 success, 1 failed, 2 some input files or records failed, 64 bad command line.";

const DERIVE_HELP: &str = "\
Computes the views `assumptions`, `session_usage`, `sessions` and `caller_sources` from the
whole lake once and keeps them as Parquet under <lake>/derived/. While the lake's event files
are the ones they were built from, every query without --account reads them instead of
recomputing the views (with --from/--to, only `assumptions`, narrowed to the range; the rest is
computed from the narrowed events). After an ingest they are stale and the views are computed
from events again, until the next `derive` (or `ingest --derive`). Spark, Athena and DuckDB can
read them too: <lake>/derived/CURRENT.json names the folder of the current build.

Does nothing when the tables are already current (--force builds them anyway). CURRENT.json
lists every file of its build: a build whose folder no longer holds them is never read, and
`derive` builds again. On a lake on disk a build holds the lake's lock, <lake>/_lock, the one
`ingest` takes: a second `derive` or an `ingest` started meanwhile fails at once (exit 1) and
can be run again when the first finishes. On S3 builds are not locked; a build folder other
than the current and previous ones is removed only once nothing was written to it for 24
hours.

Examples:
  sts-audit derive --lake /data/sts-lake
  sts-audit ingest s3://trail-bucket --lake s3://lake-bucket/sts --from -1d --derive

Exit codes: 0 success (built or already current), 1 failed, 64 bad command line.";

const REPORT_HELP: &str = "\
Reports are SQL files with a comment header (name, title, description, parameters). The
built-in ones come from queries/reports/; --queries DIR adds yours (a file with a built-in's
name replaces it). --from/--to/--account narrow the `events` table every view reads, as typed
values (never pasted into SQL).

`report compliance --output FILE.html|.md|.json` writes the compliance report instead: coverage
and gaps, who reached which roles and how, the cross-account matrix, session durations, role
chains, denied attempts and the findings of `detect` for the period (default: the last 30 days
of the lake), in the format the file's extension names, with FILE.manifest.json beside it (the
output's SHA-256, the lake's fingerprint, the SQL used). The same lake and period give the same
bytes. --config is the detections' config.

Examples:
  sts-audit report --list
  sts-audit report compliance --from 2024-03-01 --to 2024-03-31 --output march.html
  sts-audit report role-assumptions --from -7d
  sts-audit report cross-account --account 111122223333 --format csv --output cross.csv
  sts-audit report session-durations --format json | jq '.[0]'

Exit codes: 0 success, 1 failed (no lake, bad SQL, unknown report), 64 bad command line
(compliance: no --output, or an extension other than .html, .md, .json).";

const SQL_HELP: &str = "\
Tables: events (the lake; filter on `date` and `account_id` to skip folders), assumptions,
sessions, session_usage, issued_credentials, caller_sources. JSON text columns work with json_get_str(col, 'key'),
json_get(col, 'a', 'b'), json_contains, json_length, ->, ->> and friends. Only reading is
allowed: no DDL, INSERT, COPY or SET, and no access to files or URLs.

The shell (no QUERY and no -f): statements end with `;` and may span lines. \\d lists tables,
\\d NAME its columns, \\format FORMAT switches the output format, \\q quits. History is kept in
$STS_AUDIT_HISTORY (default ~/.sts_audit_history).

Examples:
  sts-audit sql \"SELECT api, count(*) FROM assumptions GROUP BY api\"
  sts-audit sql -f queries/my-check.sql --format csv
  sts-audit sql \"SELECT json_get_str(request_parameters, 'roleArn') FROM events WHERE event_name = 'AssumeRole' LIMIT 5\"
  sts-audit sql --from -1d";

const SCHEMA_HELP: &str = "\
Without TABLE, lists the tables and views; with one, its columns (name, type, meaning).
`sts-audit schema --all --format markdown` is how docs/schema.md is made.";

/// How S3 is reached, as in the AWS CLI.
#[derive(Debug, Args, Clone, Default)]
pub struct AwsArgs {
    /// The AWS profile to use (else AWS_PROFILE, else the default profile)
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// Region for S3 requests (else AWS_REGION or the profile's; a bucket's own region is
    /// found automatically)
    #[arg(long, value_name = "REGION")]
    pub aws_region: Option<String>,

    /// S3 endpoint, e.g. an S3-compatible server (else AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL,
    /// the profile's endpoint_url); addressed path-style
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

/// Which events to read: the scope flags of `ingest`, `analyze` and the query commands.
#[derive(Debug, Args, Clone)]
pub struct ScopeArgs {
    /// Only events at or after this time
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub from: Option<String>,

    /// Only events before this time (a date includes that whole day)
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub to: Option<String>,

    /// Only this recipient account (repeatable)
    #[arg(long = "account", value_name = "ID")]
    pub accounts: Vec<String>,
}

impl From<&AwsArgs> for AwsOptions {
    fn from(args: &AwsArgs) -> Self {
        AwsOptions {
            profile: args.profile.clone(),
            region: args.aws_region.clone(),
            endpoint_url: args.endpoint_url.clone(),
        }
    }
}

/// Where the lake is and which part of it to read.
#[derive(Debug, Args)]
#[command(mut_arg("accounts", |arg| arg.help("Only events logged in this account (repeatable)")))]
pub struct LakeArgs {
    /// The lake: a folder or s3://bucket/prefix
    #[arg(
        long,
        env = "STS_AUDIT_LAKE",
        default_value = "sts-lake",
        value_name = "DIR|S3_URL"
    )]
    pub lake: String,

    #[command(flatten)]
    pub scope: ScopeArgs,

    /// Memory for query operators (suffixes K, M, G) [default: half of the memory available:
    /// MemAvailable or the cgroup's limit, whichever is smaller]. Sorts, joins and grouping
    /// spill to disk beyond it; a query that cannot spill fails with an error
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub memory_limit: Option<u64>,

    /// Largest total size of a query's temporary spill files (suffixes K, M, G); past it
    /// the query fails with an error
    #[arg(long, default_value = "32G", value_name = "BYTES", value_parser = parse_size)]
    pub max_spill: u64,

    /// Compute assumptions and sessions from events even when the derived tables are current
    #[arg(long)]
    pub no_derived: bool,

    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Args)]
pub struct DeriveArgs {
    /// The lake: a folder or s3://bucket/prefix
    #[arg(
        long,
        env = "STS_AUDIT_LAKE",
        default_value = "sts-lake",
        value_name = "DIR|S3_URL"
    )]
    pub lake: String,

    /// Build the tables even when they are current
    #[arg(long)]
    pub force: bool,

    /// Memory for query operators (suffixes K, M, G) [default: half of the memory available:
    /// MemAvailable or the cgroup's limit, whichever is smaller]
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub memory_limit: Option<u64>,

    /// Summary format
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub format: SummaryFormat,

    #[command(flatten)]
    pub aws: AwsArgs,
}

/// How results are printed.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,

    /// Write to this file instead of stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The report to run
    #[arg(value_name = "NAME", required_unless_present = "list")]
    pub name: Option<String>,

    /// List the reports
    #[arg(long, conflicts_with = "name")]
    pub list: bool,

    /// A folder of extra report files (*.sql, or its reports/ subfolder)
    #[arg(long, env = "STS_AUDIT_QUERIES", value_name = "DIR")]
    pub queries: Option<PathBuf>,

    /// Stop the report after this long (e.g. 30s, 5m, 2h) with exit code 1
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,

    /// `compliance` only: the detections' config [default: sts-audit.toml in a lake on disk,
    /// when it exists]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub lake: LakeArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

const DETECT_HELP: &str = "\
Runs the detection rules (queries/detections/*.sql; --list shows them, --explain ID one in
full) over a window of the lake, each against a baseline of what happened before it: what is
normal for each principal, role, account pair, federated subject, network and duration.

The window is --from..--to. With neither, it is the last full day in the lake: the last day
that holds events, or the day before when that day is today or holds less than half the events
of the day before it (sessions running past midnight). With --from alone it runs to the end of
the lake, with --to alone it is the day before --to. The baseline is the --baseline-days
(default 30, or the config's baseline_days) before the window, fewer when the lake is younger.
Both are said on stderr, with the findings per severity and the suppressed counts.

Config: --config FILE, else sts-audit.toml in a lake on disk (TOML, every key optional; see the
README): organization and trusted accounts, known networks, rule thresholds, disabled rules,
suppressions. Unknown keys and bad values are errors naming the file, line and key (exit 1).

Findings (json: an array; ndjson: one object a line; csv: every field; table and markdown: the
main fields): id (stable across runs), rule, severity, title, summary, event_time,
last_event_time, account_id, principal_arn, role_arn, source_ip_address, access_key_id,
event_ids, attack, details. ocsf: OCSF Detection Finding objects (class 2004), a JSON array.

--save keeps every finding of the window (whatever --min-severity shows) in the lake's
findings/ folder, one Parquet file per window, which `sql` reads as the `findings` table: saving
the same window again replaces the rows of the rules that ran. --new-only shows, and --fail-on
counts, only findings whose id no earlier run saved: the same incident alerts once.

Examples:
  sts-audit detect --lake /data/sts-lake
  sts-audit detect --from 2025-06-08 --to 2025-06-08 --format json
  sts-audit detect --fail-on high --format ndjson --output findings.ndjson   (cron: exit 3)
  sts-audit detect --save --new-only --fail-on high         (daily alert: each incident once)
  sts-audit detect --rules credential-elsewhere,rare-sts-api --min-severity medium
  sts-audit detect --format ocsf --output findings.ocsf.json
  sts-audit detect --list
  sts-audit detect --explain fan-out

Exit codes: 0 no finding reached --fail-on (default: never), 3 one did, 1 failed (no lake, bad
config, a rule failed), 64 bad command line.";

/// `--format` of `detect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DetectFormat {
    Table,
    Json,
    Ndjson,
    Markdown,
    Csv,
    /// OCSF Detection Finding objects (class 2004), a JSON array
    Ocsf,
}

/// `--min-severity` and `--fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SeverityArg {
    Low,
    Medium,
    High,
    Critical,
}

impl From<SeverityArg> for Severity {
    fn from(severity: SeverityArg) -> Self {
        match severity {
            SeverityArg::Low => Severity::Low,
            SeverityArg::Medium => Severity::Medium,
            SeverityArg::High => Severity::High,
            SeverityArg::Critical => Severity::Critical,
        }
    }
}

#[derive(Debug, Args)]
#[command(mut_arg("from", |arg| arg.help("Start of the window (default: see below)")))]
#[command(mut_arg("to", |arg| arg.help("End of the window, exclusive (a date includes that whole day)")))]
#[command(mut_arg("accounts", |arg| arg.hide(true)))]
pub struct DetectArgs {
    /// Days before the window that count as normal [default: 30, or the config's]
    #[arg(long, value_name = "N")]
    pub baseline_days: Option<u32>,

    /// The config file [default: sts-audit.toml in a lake on disk, when it exists]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Only these rules (comma-separated ids)
    #[arg(long, value_name = "ID,...", value_delimiter = ',')]
    pub rules: Option<Vec<String>>,

    /// Leave out findings below this severity
    #[arg(long, value_enum, default_value_t = SeverityArg::Low)]
    pub min_severity: SeverityArg,

    /// Exit with code 3 when a finding has this severity or higher
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<SeverityArg>,

    /// Output format
    #[arg(long, value_enum, default_value_t = DetectFormat::Table)]
    pub format: DetectFormat,

    /// Write to this file instead of stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Keep the findings in the lake (findings/, the `findings` table); a window saved again is replaced
    #[arg(long)]
    pub save: bool,

    /// Show only findings whose id was not saved before (a daily alert job's choice)
    #[arg(long)]
    pub new_only: bool,

    /// List the rules
    #[arg(long, conflicts_with = "explain")]
    pub list: bool,

    /// Show one rule in full: what it catches, how, its parameters and its SQL
    #[arg(long, value_name = "ID")]
    pub explain: Option<String>,

    #[command(flatten)]
    pub lake: LakeArgs,
}

const TRIAGE_HELP: &str = "\
For a temporary key (ASIA...): how it was obtained, walked back to its origin (the IAM user,
root, SAML or OIDC subject, AWS service or outside account at the root of the role chain) with
every hop's STS call, time, address, user agent, requested and granted duration and
expiration; then every call it signed, in time order, the first call from each new address
marked; then every session it issued, recursively, and what they did; then the findings about
any key or principal of that tree: those saved by `detect --save`, and with --detect those the
rules find over the tree's days (marked computed).

For a long-term key (AKIA...), a principal, a role, an address, a session name: the sessions
involved, newest first (at most --limit, detailed the same way). For an event id: the key that
signed it. --from/--to narrow the sessions and calls; chains are followed wherever they lead.

Only the days a key was used are read (the session's first and last use pick the partitions),
and the derived tables answer when current: a key on a large lake takes seconds.

Examples:
  sts-audit triage --access-key ASIAEXAMPLEKEY000001
  sts-audit triage --principal arn:aws:iam::111111111111:user/alice --from -7d
  sts-audit triage --ip 198.51.100.77 --format markdown --output incident.md
  sts-audit triage --event-id 3b2f... --format json | jq '.trees[0].chain'

Exit codes: 0 done, 1 failed (no lake, the subject is not in the lake), 64 bad command line.";

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("subject").required(true)
    .args(["access_key", "principal", "role", "ip", "session_name", "event_id"])))]
#[command(mut_arg("from", |arg| arg.help("Only sessions and calls from this time")))]
#[command(mut_arg("to", |arg| arg.help("Only sessions and calls before this time (a date includes that day)")))]
#[command(mut_arg("accounts", |arg| arg.hide(true)))]
pub struct TriageArgs {
    /// A temporary (ASIA...) or long-term (AKIA...) access key
    #[arg(long, value_name = "KEY")]
    pub access_key: Option<String>,

    /// A principal: IAM user or role ARN, assumed-role ARN, SAML or OIDC subject
    #[arg(long, value_name = "ARN")]
    pub principal: Option<String>,

    /// A role: the sessions that assumed it
    #[arg(long, value_name = "ARN")]
    pub role: Option<String>,

    /// A source address: the sessions issued to it or used from it
    #[arg(long, value_name = "ADDRESS")]
    pub ip: Option<String>,

    /// A role session name
    #[arg(long, value_name = "NAME")]
    pub session_name: Option<String>,

    /// A CloudTrail eventID: the key (or principal) behind it
    #[arg(long, value_name = "ID")]
    pub event_id: Option<String>,

    /// Sessions detailed for a subject that is not a temporary key (newest first)
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub limit: usize,

    /// Calls listed per key
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub calls: usize,

    /// Also run the detection rules over the days of the keys found (besides the saved findings)
    #[arg(long)]
    pub detect: bool,

    /// The detection config for --detect [default: sts-audit.toml in a lake on disk]
    #[arg(long, value_name = "FILE", requires = "detect")]
    pub config: Option<PathBuf>,

    /// Output format: table is an incident timeline (colour on a terminal), json the same tree
    /// for tooling, ndjson one line per hop, call, issued session and finding
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,

    /// Write to this file instead of stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub lake: LakeArgs,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The SQL to run (several statements separated by `;` run in order)
    #[arg(value_name = "QUERY", conflicts_with = "file")]
    pub query: Option<String>,

    /// Run the SQL in this file
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Stop after this long (e.g. 30s, 5m, 2h) with exit code 1; in the shell, per statement
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,

    #[command(flatten)]
    pub lake: LakeArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// A table or view
    #[arg(value_name = "TABLE", conflicts_with = "all")]
    pub table: Option<String>,

    /// Every table's columns
    #[arg(long)]
    pub all: bool,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Log files, folders or s3://bucket/prefix to read
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<String>,

    /// Keep the lake here, a folder or s3://bucket/prefix (default: a temporary lake, removed
    /// at the end)
    #[arg(long, value_name = "DIR|S3_URL")]
    pub lake: Option<String>,

    #[command(flatten)]
    pub scope: ScopeArgs,

    /// Output format of the reports
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,

    /// No progress bar
    #[arg(long, short = 'q')]
    pub quiet: bool,

    #[command(flatten)]
    pub aws: AwsArgs,
}

const INGEST_HELP: &str = "\
SOURCE is a file, a folder (walked recursively) or s3://bucket[/prefix]. In S3 the layout
(AWSLogs/[o-id/]account/CloudTrail/region/YYYY/MM/DD/) is discovered with delimiter listings and
only the day folders in --from/--to (plus a day of slack) are listed; objects are fetched
--concurrency at a time. Credentials, --profile, --aws-region and --endpoint-url work as in the
AWS CLI. A lake on S3 (--lake s3://bucket/prefix) uses the same access.

CloudTrail logs are recognised by content: {\"Records\":[...]} documents, bare arrays of
records and NDJSON, gzipped or plain. Digest and Insight files and other files are skipped and
counted. With the AWSLogs/... key layout, folders
outside --from/--to, --account and --region are not even opened.

Times: 2024-03-01 (a whole day; --to includes it), 2024-03-01T12:00:00Z, or relative: -7d, -12h,
-30m, -2w, now.

The lake: <lake>/events/account_id=<id>/date=<YYYY-MM-DD>/*.parquet, readable by DataFusion,
DuckDB, Spark and Athena as it is. Records that cannot be read are kept in <lake>/_rejected/.

Examples:
  sts-audit ingest sample-logs
  sts-audit ingest /data/cloudtrail --lake /data/sts-lake --from -7d
  sts-audit ingest AWSLogs/ --account 111122223333 --region us-east-1 --format json
  sts-audit ingest s3://my-trail-bucket/AWSLogs --from -1d --profile audit
  sts-audit ingest s3://logs --endpoint-url http://127.0.0.1:9000 --lake s3://lake/sts
  sts-audit ingest /data/cloudtrail --lake /data/sts-lake --derive   (nightly job)

Exit codes: 0 success, 1 run failed, 2 some files or records failed, 64 bad command line.";

/// `--format` of the query commands: the library's [`render::OutputFormat`] as clap parses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
    Ndjson,
    Markdown,
}

impl From<OutputFormat> for render::OutputFormat {
    fn from(format: OutputFormat) -> Self {
        match format {
            OutputFormat::Table => render::OutputFormat::Table,
            OutputFormat::Csv => render::OutputFormat::Csv,
            OutputFormat::Json => render::OutputFormat::Json,
            OutputFormat::Ndjson => render::OutputFormat::Ndjson,
            OutputFormat::Markdown => render::OutputFormat::Markdown,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Log files, folders or s3://bucket/prefix to read
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<String>,

    /// The lake: a folder or s3://bucket/prefix
    #[arg(
        long,
        env = "STS_AUDIT_LAKE",
        default_value = "sts-lake",
        value_name = "DIR|S3_URL"
    )]
    pub lake: String,

    #[command(flatten)]
    pub scope: ScopeArgs,

    /// Only events in this AWS region (repeatable; see --aws-region for where S3 requests go)
    #[arg(long = "region", value_name = "REGION")]
    pub regions: Vec<String>,

    /// Files decoded in parallel [default: number of CPUs]
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,

    /// S3 objects fetched at once
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub concurrency: usize,

    /// Stop at the first file or record that fails
    #[arg(long)]
    pub strict: bool,

    /// Follow symbolic links that lead outside the source folder (by default such links are
    /// reported and not entered; links that stay inside it are followed)
    #[arg(long)]
    pub follow_symlinks: bool,

    /// Summary format
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub format: SummaryFormat,

    /// Largest decompressed size of one file (suffixes K, M, G)
    #[arg(long, default_value = "1G", value_name = "BYTES", value_parser = parse_size)]
    pub max_file_size: u64,

    /// Largest size of one record (AWS caps events at 256K)
    #[arg(long, default_value = "1M", value_name = "BYTES", value_parser = parse_size)]
    pub max_record_size: u64,

    /// Memory for rows waiting to be sorted and written, shared by all jobs (suffixes K, M, G)
    #[arg(long, default_value = "64M", value_name = "BYTES", value_parser = parse_size)]
    pub buffer_size: u64,

    /// Memory for the keys that catch duplicates; past it, the least recently used hours of
    /// keys are spilled to a temporary file next to the lake and read back if needed
    /// (suffixes K, M, G)
    #[arg(long, default_value = "16M", value_name = "BYTES", value_parser = parse_size)]
    pub dedup_memory: u64,

    /// No progress bar (it is never shown when stderr is not a terminal)
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Then build the derived tables, as `sts-audit derive` does, so reports are fast
    #[arg(long)]
    pub derive: bool,

    #[command(flatten)]
    pub aws: AwsArgs,
}

/// `1048576`, `512K`, `64M`, `1G` (binary units).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let multiplier: u64 = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} (use K, M or G)")),
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size"))?;
    number
        .checked_mul(multiplier)
        .filter(|size| *size > 0)
        .ok_or_else(|| format!("{text:?} is out of range"))
}

/// `30s`, `5m`, `2h`, `1d`, `500ms`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let at = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(at);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 30s, 5m, 2h)"))?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => {
            return Err(format!(
                "unknown duration unit {other:?} (use ms, s, m, h or d)"
            ));
        }
    };
    number
        .checked_mul(millis_per_unit)
        .filter(|millis| *millis > 0)
        .map(std::time::Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("M").is_err());
    }

    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        for bad in ["0s", "5x", "m", "", "-5s", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

const COMPLETIONS_HELP: &str = "\
Prints the completion script for SHELL on stdout, generated from this binary's own options (so
it matches the version installed). Install it where the shell looks:

  sts-audit completions bash > ~/.local/share/bash-completion/completions/sts-audit
  sts-audit completions zsh > ~/.zfunc/_sts-audit      (with fpath+=~/.zfunc before compinit)
  sts-audit completions fish > ~/.config/fish/completions/sts-audit.fish";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

const MAN_HELP: &str = "\
Prints the manual page of sts-audit (roff, section 1) on stdout, generated from this binary's
own options; with --dir, writes it and one page per subcommand (sts-audit-ingest.1, ...) into
DIR instead.

  sts-audit man | man -l -
  sts-audit man --dir ~/.local/share/man/man1      (then: man sts-audit-ingest)";

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write sts-audit.1 and a page per subcommand into this folder
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}
