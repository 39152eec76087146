#!/usr/bin/env python3
"""Reads an sts-audit lake with another engine and prints what it saw, as JSON.

    lake-readers.py ENGINE SPEC.json      ENGINE: duckdb | pyarrow | spark

The interoperability test (tests/it/interop.rs) writes SPEC and compares the output with what
`sts-audit sql` returns for the same questions. SPEC:

    {"tables": {NAME: {"root": DIR, "partitions": {"account_id": "string", "date": "date"},
                       "columns": {COLUMN: "text" | "bool" | "int" | "time" | "other"}}},
     "sample": {"table": NAME, "columns": [...], "order": [...], "limit": N},
     "snippets": [SQL, ...]}   (duckdb and spark: documented snippets, each run whole; for each,
                              the rows and column types of its last statement)

For each table: its row count, the type the engine gives each column, and a profile of every
column listed: non-null count; for text the smallest and largest value; for booleans the count
of true; for integers the sum; for times the first and last, as microseconds since the epoch.
The sample is the first rows in `order`, times as microseconds, dates as YYYY-MM-DD, every
other value as the engine typed it (so an account ID read as a number shows as one).
"""

import datetime
import json
import sys


def plain(value):
    """A JSON value for what an engine returned."""
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


class SqlEngine:
    """DuckDB and Spark: the profile is one SQL aggregate per table, in each one's dialect."""

    quote = '"'

    def ident(self, name):
        return f"{self.quote}{name}{self.quote}"

    def profile_terms(self, columns):
        terms = ["count(*)"]
        for name, kind in columns.items():
            c = self.ident(name)
            terms.append(f"count({c})")
            if kind == "text":
                terms += [f"min(CAST({c} AS STRING))", f"max(CAST({c} AS STRING))"]
            elif kind == "bool":
                terms.append(f"coalesce(count_if({c}), 0)")
            elif kind == "int":
                terms.append(f"sum({c})")
            elif kind == "time":
                terms += [f"min({self.micros(c)})", f"max({self.micros(c)})"]
        return terms

    def table_report(self, name, table):
        source = self.source(name, table)
        values = list(self.query(f"SELECT {', '.join(self.profile_terms(table['columns']))} FROM {source}")[0])
        rows = values.pop(0)
        profile = {}
        for column, kind in table["columns"].items():
            entry = {"count": values.pop(0)}
            if kind == "text":
                entry["min"], entry["max"] = values.pop(0), values.pop(0)
            elif kind == "bool":
                entry["true"] = values.pop(0)
            elif kind == "int":
                entry["sum"] = values.pop(0)
            elif kind == "time":
                entry["min"], entry["max"] = values.pop(0), values.pop(0)
            profile[column] = plain(entry)
        return {"rows": rows, "profile": profile, "types": self.types(source)}

    def sample(self, spec, tables):
        source = self.source(spec["table"], tables[spec["table"]])
        kinds = tables[spec["table"]]["columns"]
        select = [
            self.micros(self.ident(c)) if kinds.get(c) == "time" else self.ident(c)
            for c in spec["columns"]
        ]
        order = ", ".join(self.ident(c) for c in spec["order"])
        rows = self.query(f"SELECT {', '.join(select)} FROM {source} ORDER BY {order} LIMIT {spec['limit']}")
        return [plain(list(row)) for row in rows]


class DuckDb(SqlEngine):
    def __init__(self):
        import duckdb

        self.db = duckdb.connect()
        self.db.execute("SET TimeZone = 'UTC'")

    def micros(self, column):
        return f"epoch_us({column})"

    def source(self, name, table):
        types = ", ".join(
            f"'{k}': {'DATE' if v == 'date' else 'VARCHAR'}" for k, v in table["partitions"].items()
        )
        hive_types = f", hive_types = {{{types}}}" if types else ""
        return f"read_parquet('{table['root']}/**/*.parquet', hive_partitioning = true{hive_types})"

    def query(self, sql):
        return self.db.execute(sql).fetchall()

    def types(self, source):
        return {row[0]: row[1] for row in self.db.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}

    def snippet(self, sql):
        for statement in [s for s in sql.split(";") if s.strip()]:
            result = self.db.execute(statement)
        rows = result.fetchall()
        return {"rows": len(rows), "types": {d[0]: str(d[1]) for d in result.description or []}}


class Spark(SqlEngine):
    quote = "`"

    def __init__(self):
        from pyspark.sql import SparkSession

        self.spark = (
            SparkSession.builder.master("local[2]")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.showConsoleProgress", "false")
            # Account IDs are twelve digits: inferred, they become numbers and lose leading
            # zeros. docs/interop.md says to set this (or to declare the partition types).
            .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
            .getOrCreate()
        )
        self.spark.sparkContext.setLogLevel("ERROR")

    def micros(self, column):
        return f"unix_micros({column})"

    def source(self, name, table):
        view = f"t_{name}"
        reader = self.spark.read
        if not table["partitions"]:
            # The derived files sit in <account>/<date>/ folders that are not Hive partitions.
            reader = reader.option("recursiveFileLookup", "true")
        reader.parquet(table["root"]).createOrReplaceTempView(view)
        return view

    def query(self, sql):
        return [tuple(row) for row in self.spark.sql(sql).collect()]

    def types(self, source):
        return {f.name: f.dataType.simpleString() for f in self.spark.table(source).schema.fields}

    def snippet(self, sql):
        for statement in [s for s in sql.split(";") if s.strip()]:
            frame = self.spark.sql(statement)
        rows = frame.collect()
        return {"rows": len(rows), "types": {f.name: f.dataType.simpleString() for f in frame.schema.fields}}


class PyArrow:
    def __init__(self):
        import pyarrow
        import pyarrow.compute
        import pyarrow.dataset

        self.pa, self.pc, self.ds = pyarrow, pyarrow.compute, pyarrow.dataset

    def dataset(self, table):
        pa, ds = self.pa, self.ds
        if table["partitions"]:
            types = {"string": pa.string(), "date": pa.date32()}
            schema = pa.schema([(k, types[v]) for k, v in table["partitions"].items()])
            partitioning = ds.partitioning(schema, flavor="hive")
        else:
            partitioning = "hive"
        return ds.dataset(table["root"], format="parquet", partitioning=partitioning).to_table()

    def micros(self, column):
        return self.pc.cast(column, self.pa.timestamp("us", tz="UTC")).cast(self.pa.int64())

    def table_report(self, name, table):
        pc, pa = self.pc, self.pa
        data = self.dataset(table)
        profile = {}
        for column, kind in table["columns"].items():
            values = data.column(column)
            entry = {"count": len(values) - values.null_count}
            if kind == "text":
                bounds = pc.min_max(values.cast(pa.string()))
                entry["min"], entry["max"] = bounds["min"].as_py(), bounds["max"].as_py()
            elif kind == "bool":
                entry["true"] = pc.sum(values.cast(pa.int64())).as_py() or 0
            elif kind == "int":
                entry["sum"] = pc.sum(values).as_py()
            elif kind == "time":
                bounds = pc.min_max(self.micros(values))
                entry["min"], entry["max"] = bounds["min"].as_py(), bounds["max"].as_py()
            profile[column] = plain(entry)
        types = {field.name: str(field.type) for field in data.schema}
        return {"rows": data.num_rows, "profile": profile, "types": types}

    def sample(self, spec, tables):
        table = tables[spec["table"]]
        data = self.dataset(table).sort_by([(c, "ascending") for c in spec["order"]])
        data = data.slice(0, spec["limit"])
        columns = []
        for column in spec["columns"]:
            values = data.column(column)
            if table["columns"].get(column) == "time":
                values = self.micros(values)
            columns.append([plain(v) for v in values.to_pylist()])
        return [list(row) for row in zip(*columns)]

    def snippet(self, sql):
        raise SystemExit("pyarrow runs no SQL snippet")


def main():
    engine_name, spec_path = sys.argv[1], sys.argv[2]
    with open(spec_path) as f:
        spec = json.load(f)
    engine = {"duckdb": DuckDb, "spark": Spark, "pyarrow": PyArrow}[engine_name]()
    report = {
        "tables": {name: engine.table_report(name, t) for name, t in spec["tables"].items()},
        "sample": engine.sample(spec["sample"], spec["tables"]),
        "snippets": [engine.snippet(sql) for sql in spec.get("snippets", [])],
    }
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
