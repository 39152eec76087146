# Shared by the benchmark scripts: source it after setting OUT (the scratch folder).

# measure NAME CMD...: runs CMD under /usr/bin/time -v (stdout in $OUT/NAME.out, or in
# $MEASURE_OUT when set; stderr in $OUT/NAME.err) and prints "seconds rss_mib", or "failed failed".
measure() {
  local name=$1; shift
  if ! /usr/bin/time -v -o "$OUT/$name.time" "$@" > "${MEASURE_OUT:-$OUT/$name.out}" 2> "$OUT/$name.err"; then
    echo "failed failed"; return
  fi
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; print s}' "$OUT/$name.time")
  rss=$(awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$OUT/$name.time")
  echo "$wall $rss"
}

# median NUMBER...
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# write_block NAME HEADING TEXT: puts TEXT between BENCHMARKS.md's BEGIN/END NAME markers, or
# adds a section HEADING holding them before "## Ingest from S3".
write_block() {
  python3 - "$1" "$2" "$3" <<'PY'
import re, sys, pathlib
name, heading, body = sys.argv[1:4]
path = pathlib.Path("BENCHMARKS.md")
text = path.read_text()
begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
block = begin + "\n" + body.strip() + "\n" + end
if begin in text:
    text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
else:
    marker = "## Ingest from S3"
    section = f"## {heading}\n\n{block}\n\n"
    text = text.replace(marker, section + marker, 1) if marker in text else text + "\n" + section
path.write_text(text)
PY
}
