-- setup.sql - by hand what "pgcdc setup" does, plus a least-privilege role for pgcdc
--
--   psql -X -v ON_ERROR_STOP=1 -v slot=pgcdc -v publication=pgcdc -v role=pgcdc \
--        -v password='...' -v tables='public.orders, public.customers' -v via_root=false \
--        -d SOURCE_DB -f sql/setup.sql
--
-- Run it as a superuser connected to the source database (PostgreSQL 12 or later for this
-- script; tested with 15). Every -v is optional:
--   slot, publication, role  names (default pgcdc each)
--   password                 the role's password; leave it out to set one later
--                            (\password in psql) or to use another authentication method
--   tables                   comma-separated [schema.]table list to publish; leave it out
--                            to publish ALL TABLES (like publication.tables = "")
--   via_root                 true: publish partitions under their root (PostgreSQL 13+)
-- It is idempotent: what exists already is kept as it is (and shown), nothing is dropped.
-- The role gets LOGIN REPLICATION, CONNECT on the database, USAGE on the schemas and
-- SELECT on the published tables; it is not a superuser and owns nothing.
-- pg_hba.conf must also let the role in for the database and for "replication".

\set ON_ERROR_STOP on
\if :{?slot}
\else
\set slot pgcdc
\endif
\if :{?publication}
\else
\set publication pgcdc
\endif
\if :{?role}
\else
\set role pgcdc
\endif
\if :{?via_root}
\else
\set via_root false
\endif
\if :{?tables}
SELECT false AS all_tables \gset
\else
SELECT true AS all_tables \gset
\endif

-- Names for the DO blocks below, which cannot see psql variables.
SET pgcdc.slot = :'slot';
SET pgcdc.publication = :'publication';

-- 1. Server checks
DO $$
BEGIN
    IF current_setting('server_version_num')::int < 120000 THEN
        RAISE EXCEPTION 'postgresql % is too old for this script: it needs version 12 or later',
            current_setting('server_version');
    END IF;
    IF current_setting('wal_level') <> 'logical' THEN
        RAISE EXCEPTION 'wal_level is "%": logical decoding needs "logical"',
            current_setting('wal_level')
            USING HINT = 'run ALTER SYSTEM SET wal_level = logical; and restart the server';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_replication_slots
                   WHERE slot_name = current_setting('pgcdc.slot'))
       AND (SELECT count(*) FROM pg_replication_slots)
           >= current_setting('max_replication_slots')::int THEN
        RAISE EXCEPTION 'no free replication slot: all % are in use',
            current_setting('max_replication_slots')
            USING HINT = 'drop an unused slot or raise max_replication_slots and restart';
    END IF;
END
$$;

-- 2. The role: LOGIN REPLICATION, nothing more
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') AS create_role \gset
\if :create_role
CREATE ROLE :"role" LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE;
\else
\echo role :"role" already exists: making sure it has LOGIN REPLICATION
ALTER ROLE :"role" LOGIN REPLICATION;
\endif
\if :{?password}
ALTER ROLE :"role" PASSWORD :'password';
\endif
GRANT CONNECT ON DATABASE :"DBNAME" TO :"role";

-- 3. Read access to the published tables (the snapshot copies them)
\if :all_tables
SELECT string_agg(quote_ident(nspname), ', ' ORDER BY nspname) AS schemas
FROM pg_namespace WHERE nspname <> 'information_schema' AND nspname !~ '^pg_' \gset
GRANT USAGE ON SCHEMA :schemas TO :"role";
GRANT SELECT ON ALL TABLES IN SCHEMA :schemas TO :"role";
-- Tables created later are published too; to let the role read them as well, run as
-- their owner: ALTER DEFAULT PRIVILEGES IN SCHEMA ... GRANT SELECT ON TABLES TO ...;
\else
GRANT SELECT ON TABLE :tables TO :"role";
SELECT string_agg(DISTINCT quote_ident(n.nspname), ', ') AS schemas
FROM unnest(string_to_array(:'tables', ',')) AS t(name)
JOIN pg_class c ON c.oid = to_regclass(trim(t.name))
JOIN pg_namespace n ON n.oid = c.relnamespace \gset
GRANT USAGE ON SCHEMA :schemas TO :"role";
\endif

-- 4. The publication (before the slot, so decoding sees it from the slot's start)
SELECT NOT EXISTS (SELECT FROM pg_publication WHERE pubname = :'publication') AS create_pub \gset
\if :create_pub
\if :all_tables
\if :via_root
CREATE PUBLICATION :"publication" FOR ALL TABLES WITH (publish_via_partition_root = true);
\else
CREATE PUBLICATION :"publication" FOR ALL TABLES;
\endif
\else
\if :via_root
CREATE PUBLICATION :"publication" FOR TABLE :tables WITH (publish_via_partition_root = true);
\else
CREATE PUBLICATION :"publication" FOR TABLE :tables;
\endif
\endif
\else
\echo publication :"publication" already exists: not changed; it publishes
SELECT schemaname, tablename FROM pg_publication_tables
WHERE pubname = :'publication' ORDER BY 1, 2;
\endif

-- 5. The logical replication slot with pgoutput
DO $$
DECLARE
    s record;
BEGIN
    SELECT * INTO s FROM pg_replication_slots WHERE slot_name = current_setting('pgcdc.slot');
    IF FOUND AND (s.slot_type <> 'logical' OR s.plugin <> 'pgoutput'
                  OR s.database <> current_database()) THEN
        RAISE EXCEPTION 'replication slot "%" exists with plugin "%" in database "%"',
            s.slot_name, coalesce(s.plugin, '(physical)'), coalesce(s.database, '-')
            USING HINT = 'pgcdc needs a pgoutput slot in this database: use another slot '
                         'name, or drop that slot if nothing needs it';
    END IF;
END
$$;
SELECT NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = :'slot') AS create_slot \gset
\if :create_slot
SELECT slot_name, lsn FROM pg_create_logical_replication_slot(:'slot', 'pgoutput');
\else
\echo replication slot :"slot" already exists: not changed
\endif

-- 6. Published tables whose updates and deletes would carry no key, with the fix
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS "table",
       CASE c.relreplident WHEN 'n' THEN 'REPLICA IDENTITY NOTHING'
            WHEN 'd' THEN 'no primary key and REPLICA IDENTITY DEFAULT'
            ELSE 'replica identity index is gone' END AS problem,
       'ALTER TABLE ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname)
       || CASE WHEN EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
               THEN ' REPLICA IDENTITY DEFAULT;'
               ELSE coalesce(' REPLICA IDENTITY USING INDEX ' || (
                   SELECT quote_ident(ic.relname) FROM pg_index i
                   JOIN pg_class ic ON ic.oid = i.indexrelid
                   WHERE i.indrelid = c.oid AND i.indisunique AND i.indimmediate
                     AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
                     AND NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid
                                     AND a.attnum = ANY (i.indkey) AND NOT a.attnotnull)
                   ORDER BY ic.relname LIMIT 1) || ';', ' REPLICA IDENTITY FULL;') END AS fix
FROM pg_publication_tables pt
CROSS JOIN LATERAL (
    SELECT format('%I.%I', pt.schemaname, pt.tablename)::regclass AS relid
    UNION  -- the leaf partitions of a partitioned table carry the replica identity
    SELECT relid FROM pg_partition_tree(format('%I.%I', pt.schemaname, pt.tablename))
    WHERE isleaf) t
JOIN pg_class c ON c.oid = t.relid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE pt.pubname = :'publication' AND c.relkind = 'r'
  AND (c.relreplident = 'n'
       OR (c.relreplident = 'd'
           AND NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
       OR (c.relreplident = 'i'
           AND NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)))
ORDER BY 1;

\echo setup done: publication :"publication", slot :"slot", role :"role" on database :"DBNAME"
