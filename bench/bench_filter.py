"""Filter + count + first page on 1,000,000 clients (target <= 200 ms each).

Clients are generated inside DuckDB (generate_series), not row by row. Each
figure is the median of 5 runs of count_clients + list_clients(limit=2000), the
same two queries the directory page runs; `count(*)` of the whole table is the
baseline printed alongside.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import fmt_ms, load_average, median_time, median_wall_cpu, peak_rss_mb  # noqa: E402
from comms.clients import ClientFilter, count_clients, list_clients, page_and_count  # noqa: E402
from comms.store import open_store  # noqa: E402

N = 1_000_000
PAGE = 2000

SEED_SQL = f"""
INSERT INTO clients (name, first_name, last_name, email, email_valid, phone, phone_kind,
                     company, city, lists, tags, consent_email, consent_sms, attributes)
SELECT
    fn || ' ' || ln, fn, ln,
    lower(strip_accents(fn)) || '.' || lower(strip_accents(ln)) || i || '@example.cz',
    i % 25 <> 0,
    '+420' || (600000000 + i)::VARCHAR,
    CASE WHEN i % 10 = 0 THEN 'fixed_line' WHEN i % 33 = 0 THEN 'invalid' ELSE 'mobile' END,
    'Firma ' || (i % 5000),
    ['Praha', 'Brno', 'Ostrava', 'Plzeň', 'Liberec', 'Olomouc', 'Zlín', 'Jihlava'][1 + i % 8],
    CASE WHEN i % 3 = 0 THEN ['Jaro 2025', 'Newsletter'] ELSE ['Newsletter'] END,
    CASE WHEN i % 7 = 0 THEN ['vip'] WHEN i % 5 = 0 THEN ['b2b', 'event'] ELSE [] END,
    i % 11 <> 0, i % 13 <> 0,
    json_object('segment', ['A', 'B', 'C'][1 + i % 3], 'poznamka',
                CASE WHEN i % 50 = 0 THEN 'volat dopoledne' ELSE '' END,
                'zakaznik_od', (2000 + i % 25)::VARCHAR)
FROM (
    SELECT i,
        ['Jan', 'Petr', 'Jana', 'Tomáš', 'Eva', 'Lukáš', 'Kateřina', 'Martin'][1 + i % 8] AS fn,
        ['Novák', 'Svoboda', 'Dvořák', 'Černý', 'Procházka', 'Kučera', 'Veselý', 'Horák',
         'Němec', 'Marek', 'Pokorný', 'Šťastný'][1 + (i // 8) % 12] AS ln
    FROM generate_series(1, {N}) AS t(i)
)
"""

FILTERS = {
    "no filter": ClientFilter(),
    "search 'novak'": ClientFilter(search="novak"),
    "search 'jan praha'": ClientFilter(search="jan praha"),
    "search phone '600123'": ClientFilter(search="600123"),
    "list + has mobile": ClientFilter(list="Jaro 2025", has_mobile=True),
    "tag vip + city Brno": ClientFilter(tag="vip", city="Brno"),
    "attribute segment = A": ClientFilter(attribute="segment", attribute_value="A"),
    "attribute poznamka ~ 'volat'": ClientFilter(
        attribute="poznamka", attribute_op="contains", attribute_value="volat"
    ),
    "valid e-mail + consent": ClientFilter(has_valid_email=True, consent_email=True),
}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "bench.duckdb")
        import time

        t0 = time.perf_counter()
        store.write(lambda cur: cur.execute(SEED_SQL))
        print(f"filter: {N:,} clients generated in {time.perf_counter() - t0:.1f} s")
        baseline = median_time(lambda: store.scalar("SELECT count(*) FROM clients"))
        print(f"  {'baseline count(*)':30} {fmt_ms(baseline)}")
        print("  page_and_count (1 pass, target <= 200 ms):")
        for label, f in FILTERS.items():

            def separate(f: ClientFilter = f) -> None:
                count_clients(store, f)
                list_clients(store, f, limit=PAGE)

            t_sep = median_time(separate)
            t, cpu = median_wall_cpu(lambda f=f: page_and_count(store, f, limit=PAGE))
            n = count_clients(store, f)
            print(
                f"  {label:30} {fmt_ms(t)} wall {fmt_ms(cpu)} cpu  (2 queries: {fmt_ms(t_sep)}; "
                f"{n:>9,} matching; {t / baseline:5.0f}x baseline)"
            )
        print(f"  peak RSS {peak_rss_mb():.0f} MB; load average {load_average()} on 2 cores")
        store.close()


if __name__ == "__main__":
    main()
