"""Every statistic of ``stunscan report``, as named SQL in one place.

The report counts a server (ip, port, protocol) once per day, with the amplification of
its first row that day. The files are read a few at a time into one table, a row each
(``BATCH_ROWS``), and the servers a day lists twice merged (``MERGE_DAY``);
``SERVER_DAYS`` is the view every figure below reads. ``{table}``,
``{servers}`` and the like are table names filled in by ``stunscan.report.inputs`` and
``figures``; values from the data never enter the SQL text (paths and days are parameters).
"""

from __future__ import annotations

GROUPS_TABLE = """
CREATE OR REPLACE TABLE {table} (
    batch INTEGER, day DATE, ip VARCHAR, port INTEGER, protocol VARCHAR, bad TINYINT,
    rows BIGINT, family TINYINT, first_ts TIMESTAMP, amplification DOUBLE,
    software VARCHAR, fingerprint VARCHAR, geo VARCHAR, asn VARCHAR, response_size VARCHAR
)
"""
"""The rows of every file (``bad`` NULL for a good row, else the number of its reason;
``rows`` 1), until ``MERGE_DAY`` leaves one per server and day (``rows`` how many). The
columns only the hosts' rankings use (SOFTWARE to response_size) stay the file's text
here, typed host by host in ``LATEST``: ten million rows typed for the 400,000 hosts that
keep them cost seconds."""

BATCH_ROWS = """
INSERT INTO {table}
SELECT {batch}, day, ip, port, protocol, bad, 1, family, coalesce(ts, TIMESTAMP '1970-01-01'),
       amplification, software, fingerprint, geo, asn, response_size
FROM ({read})
"""
"""One batch of files (a few, read together by DuckDB's threads), read once, a row each:
a server is listed once a day, so grouping every row (an ``arg_min`` of the row's columns
per server and day) was most of the load for nothing. ``DUPLICATE_DAYS`` finds the days
where it is not, and ``MERGE_DAY`` merges them."""

DUPLICATE_DAYS = """
SELECT DISTINCT day FROM (
    SELECT day FROM {table}
    WHERE batch = {batch} AND bad IS NULL
    GROUP BY day, ip, port, protocol
    HAVING count(*) > 1
)
"""
"""Days on which a batch lists a server more than once. Per batch: a batch holds few days,
so the grouping stays small (one grouping of a month of files spilled and cost about
twice the CPU time)."""

VERDICTS = "SELECT bad, sum(rows) FROM {table} GROUP BY bad"
"""Rows per verdict: NULL (good) and each reason a row was left out."""

SHARED_DAYS = """
SELECT day FROM {table} WHERE bad IS NULL GROUP BY day HAVING count(DISTINCT batch) > 1
"""
"""Days that more than one batch lists (then a server may be in several of its rows)."""

TWICE = """
CREATE OR REPLACE TEMP TABLE {table}_twice AS
SELECT ip, port, protocol FROM {table}
WHERE bad IS NULL AND batch >= 0 AND day IS NOT DISTINCT FROM $day
GROUP BY ip, port, protocol
HAVING count(*) > 1
"""
"""The servers a day lists more than once (``MERGE_DAY`` merges only those)."""

MERGE_DAY = """
INSERT INTO {table}
SELECT -1, day, ip, port, protocol, NULL, rows, family, first_ts, pick.amplification,
       pick.software, pick.fingerprint, pick.geo, pick.asn, pick.response_size
FROM (
    SELECT day, ip, port, protocol, sum(rows) AS rows, any_value(family) AS family,
           min(first_ts) AS first_ts,
           arg_min({{'amplification': amplification, 'software': software,
                     'fingerprint': fingerprint, 'geo': geo, 'asn': asn,
                     'response_size': response_size}}, first_ts) AS pick
    FROM {table} AS t
    WHERE bad IS NULL AND batch >= 0 AND day IS NOT DISTINCT FROM $day
      AND EXISTS (SELECT 1 FROM {table}_twice AS d WHERE d.ip = t.ip AND d.port = t.port
                  AND d.protocol IS NOT DISTINCT FROM t.protocol)
    GROUP BY day, ip, port, protocol
)
"""
"""The servers a day lists more than once (``TWICE``) merged: one row each, batch -1,
what its first row that day said (``MERGED_AWAY`` then removes the rows merged). A day
at a time, so the grouping holds one day's servers at most."""

MERGED_AWAY = """
DELETE FROM {table} AS t
WHERE bad IS NULL AND batch >= 0 AND day IS NOT DISTINCT FROM $day
  AND EXISTS (SELECT 1 FROM {table}_twice AS d WHERE d.ip = t.ip AND d.port = t.port
              AND d.protocol IS NOT DISTINCT FROM t.protocol)
"""

SERVER_DAYS = """
CREATE OR REPLACE VIEW {servers} AS
SELECT day, ip, port, protocol, family, first_ts, amplification
FROM {table}
WHERE bad IS NULL
"""
"""One row per server and day: what its first row that day said (once ``MERGE_DAY`` has
merged the days several batches share)."""

FAMILIES = """
SELECT family, h.servers, d.server_days, d.mean_amplification, d.median_amplification,
       d.max_amplification
FROM (
    SELECT family, count(*) AS server_days, avg(amplification) AS mean_amplification,
           median(amplification) AS median_amplification,
           max(amplification) AS max_amplification
    FROM {servers}
    GROUP BY family
) AS d
JOIN (SELECT family, count(*) AS servers FROM {hosts} GROUP BY family) AS h USING (family)
ORDER BY family
"""
"""Accessible servers per family; mean and median amplification (one value per server
and day, as the report's daily figures). Grouped before the join: the join then has a
row per family, not one per server and day."""

PERCENTILES = """
SELECT family, quantile_cont(amplification, [0.05, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99]) AS values,
       min(amplification) AS low, max(amplification) AS high
FROM {servers}
WHERE amplification IS NOT NULL
GROUP BY family
ORDER BY family
"""
PERCENTILE_POINTS = (5, 25, 50, 75, 90, 95, 99)

HISTOGRAM = """
SELECT least(floor(amplification / {width}) * {width}, {top}) AS low,
       count(*) FILTER (WHERE family = 4) AS ipv4,
       count(*) FILTER (WHERE family = 6) AS ipv6
FROM {servers}
WHERE amplification IS NOT NULL
GROUP BY low
ORDER BY low
"""
"""Server-days per amplification bin of ``width``; the last bin holds ``top`` and above."""

TOP_COUNTRIES = """
SELECT coalesce(geo, '') AS geo, count(*) AS servers
FROM {hosts}
GROUP BY ALL
ORDER BY servers DESC, geo
LIMIT {limit}
"""

TOP_ASES = """
SELECT asn, count(*) AS servers
FROM {hosts}
GROUP BY ALL
ORDER BY servers DESC, asn NULLS LAST
LIMIT {limit}
"""

TOP_SOFTWARE = """
SELECT coalesce(software, '') AS software, count(*) AS servers,
       avg(amplification) AS mean_amplification
FROM {hosts}
GROUP BY ALL
ORDER BY servers DESC, software
LIMIT {limit}
"""

PORTS = """
SELECT port, coalesce(protocol, '') AS protocol,
       count(*) AS servers
FROM {hosts}
GROUP BY ALL
ORDER BY servers DESC, port, protocol
LIMIT {limit}
"""

FINGERPRINT = """
SELECT fingerprint IS NOT NULL AS present, count(*) AS servers
FROM {hosts}
GROUP BY ALL
ORDER BY present DESC
"""
"""Servers whose answer carried FINGERPRINT, and those whose did not."""

PER_DAY = """
SELECT day, count(*) FILTER (WHERE family = 4) AS ipv4,
       count(*) FILTER (WHERE family = 6) AS ipv6
FROM {servers}
WHERE day IS NOT NULL
GROUP BY day
ORDER BY day
"""
"""Servers per day per family."""

CHURN = """
WITH bounds AS (SELECT min(first_day) AS first, max(day) AS last FROM {hosts})
SELECT any_value(first) AS first_day, any_value(last) AS last_day,
       count(*) FILTER (WHERE day = last AND first_day > first) AS new,
       count(*) FILTER (WHERE first_day = first AND day < last) AS gone,
       count(*) FILTER (WHERE first_day = first AND day = last) AS still
FROM {hosts}, bounds
"""
"""Between the first and the last day: servers new, gone, still present."""

LATEST = """
CREATE OR REPLACE TABLE {hosts} AS
SELECT h.ip, h.port, h.protocol, h.family, s.amplification, {payload}, h.day, h.first_day
FROM (
    SELECT ip, port, protocol, any_value(family) AS family, max(day) AS day,
           min(day) AS first_day, arg_max(rowid, first_ts) AS latest
    FROM {table}
    WHERE bad IS NULL
    GROUP BY ip, port, protocol
) AS h
JOIN {table} AS s ON s.rowid = h.latest
"""
"""One row per host (ip, port, protocol): its latest server-day (found by its row number,
an integer: an arg_max of the row's columns together cost more than twice as much
over ten million rows), its columns typed (``{payload}``, from ``inputs.typed_payload``), and the
first and last days it was listed. The rankings (countries, ASes, SOFTWARE, ports,
FINGERPRINT) count each server once, as its latest row describes it."""

COMPARE = """
SELECT coalesce(n.ip, o.ip) AS ip, coalesce(n.port, o.port) AS port,
       coalesce(n.protocol, o.protocol) AS protocol,
       CASE WHEN o.ip IS NULL THEN 'new'
            WHEN n.ip IS NULL THEN 'gone'
            WHEN round(o.amplification, 2) IS DISTINCT FROM round(n.amplification, 2)
              OR o.software IS DISTINCT FROM n.software THEN 'changed'
            ELSE 'same' END AS status,
       o.amplification AS amplification_old, n.amplification AS amplification_new,
       o.software AS software_old, n.software AS software_new
FROM {old} AS o FULL OUTER JOIN {new} AS n
  ON o.ip = n.ip AND o.port = n.port AND o.protocol IS NOT DISTINCT FROM n.protocol
ORDER BY CASE status WHEN 'new' THEN 0 WHEN 'gone' THEN 1 WHEN 'changed' THEN 2 ELSE 3 END,
         ip, port, protocol
"""
"""OLD against NEW host by host: new, gone, changed (amplification or SOFTWARE), same."""

HOSTS = """
SELECT ip, port, protocol, family, amplification, software, response_size
FROM {hosts}
ORDER BY family, ip, port, protocol
"""
"""The hosts a report lists, for ``stunscan verify``."""
