-- Latency transaction for pgbench (tests/bench/bench.py): one UPDATE, one row change,
-- on the OLTP table. 5,000 tx/s of the 3-statement OLTP transaction (oltp.sql,
-- 15,000 changes/s) saturates a 2-core machine running the server, pgcdc, the
-- test broker and the consumer, which would measure the backlog, not pgcdc.
\set uid random(1, 50000)
UPDATE bench_oltp SET amount = amount + 1.25, doc = jsonb_set(doc, '{n}', to_jsonb(:uid::int)), updated_at = now() WHERE id = :uid;
