-- teardown.sql - by hand what "pgcdc teardown" does, and optionally drop the pgcdc role
--
--   psql -X -v ON_ERROR_STOP=1 -v slot=pgcdc -v publication=pgcdc -v role=pgcdc \
--        -d SOURCE_DB -f sql/teardown.sql
--
-- Run it as a superuser connected to the source database. slot and publication default
-- to pgcdc; leave out -v role to keep the role. What is already absent is skipped, so
-- running it twice is harmless. It refuses while the slot is in use: stop pgcdc first.
-- The checkpoint file of pgcdc (checkpoint.path) is not touched: it is stale afterwards,
-- remove it before the next "pgcdc start".

\set ON_ERROR_STOP on
\if :{?slot}
\else
\set slot pgcdc
\endif
\if :{?publication}
\else
\set publication pgcdc
\endif

SET pgcdc.slot = :'slot';

-- 1. The slot, unless something streams from it or it is not a pgoutput slot of this database
DO $$
DECLARE
    s record;
BEGIN
    SELECT * INTO s FROM pg_replication_slots WHERE slot_name = current_setting('pgcdc.slot');
    IF NOT FOUND THEN
        RAISE NOTICE 'replication slot "%" does not exist (already absent)',
            current_setting('pgcdc.slot');
        RETURN;
    END IF;
    IF s.active THEN
        RAISE EXCEPTION 'replication slot "%" is active for PID %: not dropped',
            s.slot_name, s.active_pid
            USING HINT = 'stop the pgcdc that streams from it and run this script again';
    END IF;
    IF s.slot_type <> 'logical' OR s.plugin <> 'pgoutput'
       OR s.database <> current_database() THEN
        RAISE EXCEPTION 'replication slot "%" has plugin "%" in database "%": not pgcdc''s, '
            'not dropped', s.slot_name, coalesce(s.plugin, '(physical)'),
            coalesce(s.database, '-');
    END IF;
    PERFORM pg_drop_replication_slot(s.slot_name);
    RAISE NOTICE 'dropped replication slot "%"', s.slot_name;
END
$$;

-- 2. The publication
DROP PUBLICATION IF EXISTS :"publication";

-- 3. The role, when asked for: first its privileges here (DROP OWNED also revokes them)
\if :{?role}
SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') AS role_exists \gset
\if :role_exists
DROP OWNED BY :"role";
DROP ROLE :"role";
\else
\echo role :"role" does not exist (already absent)
\endif
\endif

\echo teardown done on database :"DBNAME"
