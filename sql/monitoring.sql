-- monitoring.sql - lag, retained WAL and state of pgcdc's logical replication slot
--
--   psql -X -v slot=pgcdc -d SOURCE_DB -f sql/monitoring.sql
--
-- Leave out -v slot to see every logical slot. Any role can run it (the pgcdc role too);
-- the walsender columns of the second query need pg_monitor or a superuser.
--   retained_wal  WAL the server keeps for the slot (current position - restart_lsn):
--                 it grows while pgcdc is stopped or behind, and can fill the disk
--   lag           changes not yet confirmed by pgcdc (current position - confirmed_flush_lsn)
--   wal_status    reserved/extended are fine, unreserved is close to max_slot_wal_keep_size,
--                 lost means the slot is unusable (PostgreSQL 13+)
-- Alert on: active = false for long, retained_wal_bytes above what the disk can hold,
-- wal_status = unreserved or lost.

\if :{?slot}
\else
\set slot ''
\endif

SELECT s.slot_name,
       s.plugin,
       s.database,
       s.active,
       s.active_pid,
       s.restart_lsn,
       s.confirmed_flush_lsn,
       pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint AS retained_wal_bytes,
       pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)) AS retained_wal,
       pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint AS lag_bytes,
       pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)) AS lag,
       s.wal_status,
       pg_size_pretty(s.safe_wal_size) AS safe_wal_size
FROM pg_replication_slots s
WHERE s.slot_type = 'logical' AND (:'slot' = '' OR s.slot_name = :'slot')
ORDER BY s.slot_name;

-- The walsender that streams from the slot: what it sent, what pgcdc confirmed, and when
-- it last answered.
SELECT s.slot_name,
       r.pid,
       r.application_name,
       r.client_addr,
       r.state,
       r.sent_lsn,
       r.flush_lsn,
       pg_wal_lsn_diff(r.sent_lsn, r.flush_lsn)::bigint AS unconfirmed_bytes,
       r.reply_time,
       now() - r.reply_time AS since_reply
FROM pg_replication_slots s
JOIN pg_stat_replication r ON r.pid = s.active_pid
WHERE s.slot_type = 'logical' AND (:'slot' = '' OR s.slot_name = :'slot')
ORDER BY s.slot_name;
