"""sqla_stack.py — the benchmark workloads on SQLAlchemy Core (Debian's
python3-sqlalchemy) with PyMySQL or mysqlclient (MySQLdb).

    usage: /usr/bin/python3 bench/sqla_stack.py pymysql|mysqldb WORKLOAD [N]

WORKLOAD: w1 w2 w3 w4 w5 w6q_on w6q_off w6c_on w6c_off start (see
bench/README.md). The rules (rows written, ids looked up, check sums,
report lines) are the ones in bench/benchlib.lua and bench/raw.c.
"""
import os
import sys
import time

T_IMPORT = time.monotonic()  # "start" counts from BENCH_T0, before this

import sqlalchemy as sa  # noqa: E402

SEL_ROW = "SELECT id, name, price, qty, created, note FROM items"
WARMUP = 200


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set (run through bench/run)")
    return value


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def report(ops, seconds, check, cpu=-1.0):
    sys.stdout.write(f"ops {ops}\nseconds {seconds:.6f}\ncpu_seconds {cpu:.6f}\n"
                     f"check {check}\nrss_kib {rss_kib()}\n")


def timer():
    """Starts timing; the returned function gives (wall, process CPU) seconds."""
    c0, t0 = time.process_time(), time.monotonic()
    return lambda: (time.monotonic() - t0, time.process_time() - c0)


def gen_rows(n):
    rows = []
    for i in range(1, n + 1):
        rows.append({
            "name": f"item {i}",
            "price": "%d.%02d" % (i % 1000, i % 100),
            "qty": i % 50,
            "created": "2026-%02d-%02d %02d:%02d:%02d"
                       % (1 + i % 12, 1 + i % 28, i % 24, i % 60, (i * 7) % 60),
            "note": None if i % 5 == 0 else f"note {i}",
        })
    return rows


def w2_id(i):
    return (i * 7919) % 100000 + 1


def item_check(r):
    # DECIMAL comes back as decimal.Decimal, DATETIME as datetime: their
    # str() is the server's text, as in the other stacks.
    note = r.note
    return (r.id + r.qty + len(r.name) + len(str(r.price)) + len(str(r.created))
            + (len(note) if note is not None else 0))


metadata = sa.MetaData()
items = sa.Table(
    "items", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100)),
    sa.Column("price", sa.Numeric(10, 2)),
    sa.Column("qty", sa.Integer),
    sa.Column("created", sa.DateTime),
    sa.Column("note", sa.Text),
)
items_w = items.to_metadata(sa.MetaData(), name="items_w")


def make_engine(driver, **kw):
    url = sa.engine.URL.create(
        "mysql+" + driver,
        username=env("FSDB_TEST_USER"), password=env("FSDB_TEST_PASSWORD"),
        host=env("FSDB_TEST_HOST"), port=int(env("FSDB_TEST_PORT")),
        database=env("FSDB_TEST_DB"), query={"charset": "utf8mb4"})
    return sa.create_engine(url, future=True, **kw)


def w1(engine, n):
    stmt = sa.text("SELECT 1")
    with engine.connect() as conn:
        def run(k):
            check = 0
            for _ in range(k):
                check += conn.execute(stmt).fetchall()[0][0]
            return check
        run(WARMUP)
        stop = timer()
        check = run(n)
        t, cpu = stop()
        report(n, t, check, cpu)


def w2(engine, n):
    stmt = sa.select(items).where(items.c.id == sa.bindparam("id"))
    with engine.connect() as conn:
        def run(k):
            check = 0
            for i in range(k):
                check += item_check(conn.execute(stmt, {"id": w2_id(i)}).fetchall()[0])
            return check
        run(WARMUP)
        stop = timer()
        check = run(n)
        t, cpu = stop()
        report(n, t, check, cpu)


def w3(engine, n):
    stmt = sa.select(items)
    with engine.connect() as conn:
        stop = timer()
        rows = conn.execute(stmt).fetchall()
        t, cpu = stop()
        report(len(rows), t, sum(item_check(r) for r in rows), cpu)


def w4(engine, n):
    rows = gen_rows(n)
    stmt = items_w.insert()
    with engine.connect() as conn:
        affected = 0
        stop = timer()
        with conn.begin():
            for r in rows:
                affected += conn.execute(stmt, r).rowcount
        t, cpu = stop()
        report(n, t, affected, cpu)


def w5(engine, n):
    # executemany: both drivers rewrite INSERT … VALUES into multi-row
    # statements of up to about 1 MB, SQLAlchemy's fastest way on MySQL.
    rows = gen_rows(n)
    stmt = items_w.insert()
    with engine.connect() as conn:
        stop = timer()
        with conn.begin():
            affected = conn.execute(stmt, rows).rowcount
        t, cpu = stop()
        report(n, t, affected, cpu)


def w6(query, pre_ping):
    def run_w6(driver, n):
        engine = make_engine(driver, pool_pre_ping=pre_ping)
        stmt = sa.text("SELECT 1")

        def run(k):
            check = 0
            for _ in range(k):
                with engine.connect() as conn:
                    if query:
                        check += conn.execute(stmt).fetchall()[0][0]
            return check if query else k
        run(WARMUP)
        stop = timer()
        check = run(n)
        t, cpu = stop()
        assert engine.pool.checkedout() == 0 and engine.pool.checkedin() == 1
        report(n, t, check, cpu)
        engine.dispose()
    return run_w6


def start(driver, n):
    engine = make_engine(driver)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).fetchall()[0][0] == 1
        t = time.monotonic() - float(env("BENCH_T0"))
    report(1, t, 1)


PLAIN = {"w1": (w1, 20000), "w2": (w2, 20000), "w3": (w3, 0), "w4": (w4, 10000),
         "w5": (w5, 100000)}
POOLED = {"w6q_on": w6(True, True), "w6q_off": w6(True, False),
          "w6c_on": w6(False, True), "w6c_off": w6(False, False)}


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("pymysql", "mysqldb"):
        sys.exit("usage: sqla_stack.py pymysql|mysqldb WORKLOAD [N]")
    driver, workload = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else None
    if workload == "start":
        start(driver, 1)
    elif workload in POOLED:
        POOLED[workload](driver, count or 20000)
    elif workload in PLAIN:
        fn, default = PLAIN[workload]
        engine = make_engine(driver)
        fn(engine, count or default)
        engine.dispose()
    else:
        sys.exit(f"unknown workload {workload}")


if __name__ == "__main__":
    main()
