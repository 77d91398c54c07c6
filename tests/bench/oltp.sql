-- OLTP transaction for pgbench (tests/bench/bench.py): exactly 3 row changes.
-- Rows 1..50000 are only updated; rows from 50001 up are deleted 50000 inserts
-- after the sequence passed them, so every statement touches exactly one row
-- (bench_oltp is preloaded with ids 1..100000, bench_oltp_seq starts at 100001).
\set uid random(1, 50000)
BEGIN;
UPDATE bench_oltp SET amount = amount + 1.25, doc = jsonb_set(doc, '{n}', to_jsonb(:uid::int)), updated_at = now() WHERE id = :uid;
INSERT INTO bench_oltp (id, name, amount, doc, updated_at) VALUES (nextval('bench_oltp_seq'), 'customer ' || :uid::int, 1234.56, '{"k": "v", "n": 1, "tags": ["a", "b"], "nested": {"x": 1.5, "y": null}}', now());
DELETE FROM bench_oltp WHERE id = (SELECT currval('bench_oltp_seq') - 50000);
END;
