
/*
 * projkey: the PostgreSQL engine of the key store (see projkey_store.h and
 * projkey_store_engine.h); the only file that includes <libpq-fe.h>.
 * Blocking libpq calls: the CLI and nginx's thread pool call the store.
 *
 * The schema, in schema "projkey" (created and migrated by "projkey --db
 * URI init" and "migrate" only, never by nginx):
 *
 *   meta      k, v: "schema" (version), "instance", "cursor_key"
 *   revision  the one counter row: the database's revision
 *   keys      a key per row, as the SQLite engine's table keys; seq is the
 *             revision of its last change
 *   deleted   a deleted key's id, hash and the revision of its delete
 *   retired   a previous secret taken out of use, and its revision
 *   changes   the change log: one row a revision, in commit order
 *   audit     who changed what; detail is JSON
 *   nodes     the nginx instances' heartbeats
 *
 * Every change goes through a function of the schema (create_key,
 * change_key, roll_key, delete_key, purge), which an application may call
 * by SQL too: it locks the counter row first (one lock order: writers
 * never deadlock, and revisions commit in their order, gap-free, which a
 * sequence would not give), takes the next revision (next_revision),
 * writes its change-log row and sends NOTIFY projkey, all in the change's
 * own transaction.  An application may read every table; it creates and
 * rolls keys through those functions, and may UPDATE name, status or
 * expires_at, or DELETE, by hand (triggers take the revision).
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <libpq-fe.h>

#include "projkey_json.h"
#include "projkey_store_engine.h"


#define PROJKEY_PG_PURGE_BATCH   1000

/* seconds to connect, unless the URI says otherwise (libpq waits forever) */
#define PROJKEY_PG_CONNECT_TIMEOUT  "5"
#define PROJKEY_PG_TCP_TIMEOUT      "10000"

/* last uses written a statement and a transaction */
#define PROJKEY_PG_TOUCH            1000

/* a hex digit's value; 0x10 for any other byte */
static const unsigned char  projkey_pg_hex[256] = {
#define X 0x10
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, X, X, X, X, X, X,
    X, 10, 11, 12, 13, 14, 15, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, 10, 11, 12, 13, 14, 15, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X
#undef X
};


/* the rows of a cursor read a round trip: some MB of a load */
#define PROJKEY_PG_FETCH            "10000"

/* the columns of a key, in the order projkey_pg_row() reads them */
#define PROJKEY_PG_KEY_COLUMNS                                                \
    "id, encode(hash, 'hex'), project, name, preview, created_by, "           \
    "created_at, updated_at, coalesce(last_used_at, 0), seq, status, "        \
    "CASE WHEN expires_at IS NULL THEN 0 WHEN expires_at < 1 THEN 1 "         \
    "ELSE expires_at END, "                                                   \
    "encode(prev_hash, 'hex'), prev_preview, coalesce(prev_expires_at, 0)"

/* what the zone needs of a key, in the places of PROJKEY_PG_KEY_COLUMNS */
#define PROJKEY_PG_LOAD_COLUMNS                                               \
    "id, encode(hash, 'hex'), project, name, NULL, NULL, 0, 0, "              \
    "coalesce(last_used_at, 0), seq, status, "                                \
    "CASE WHEN expires_at IS NULL THEN 0 WHEN expires_at < 1 THEN 1 "         \
    "ELSE expires_at END, "                                                   \
    "encode(prev_hash, 'hex'), NULL, coalesce(prev_expires_at, 0)"

#define PROJKEY_PG_KEY_NCOLUMNS  15

/*
 * A key a page shows: $4 the status filter, $5 and $9 the ILIKE patterns
 * of the name (a substring) and of the preview (its end), $6 now
 */
#define PROJKEY_PG_PAGE_OK                                                    \
    "CASE $4::int WHEN 0 THEN true"                                           \
    " WHEN 1 THEN status = 1 AND NOT coalesce(expires_at <= $6, false)"       \
    " WHEN 2 THEN status = 2 AND NOT coalesce(expires_at <= $6, false)"       \
    " ELSE coalesce(expires_at <= $6, false) END"                             \
    " AND ($5::text IS NULL OR name ILIKE $5 OR preview ILIKE $9)"


struct projkey_pg_s {
    PGconn           *conn;
    projkey_json_t   *json;         /* renders the KEY objects of a list */
    int               busy_timeout;
    int               in_tx;
    int               trgm;         /* 1: trigram indexes, -1: none */
};


/* a key read from a result, its hashes decoded */
typedef struct {
    projkey_row_t     row;
    unsigned char     hash[PROJKEY_HASH_LEN];
    unsigned char     prev_hash[PROJKEY_HASH_LEN];
    unsigned char     retired_hash[PROJKEY_HASH_LEN];
} projkey_pg_row_t;




/* PostgreSQL takes each parameter as text or as bytes of its type */
typedef struct {
    int               n;
    const char       *values[12];
    int               lengths[12];
    int               formats[12];
    char              nums[12][24];
} projkey_pg_params_t;


/* a key copied for a callback after the commit */
typedef struct {
    projkey_pg_row_t  r;
    int               found;
} projkey_pg_after_t;


/* the JSON of rows, appended to by projkey_pg_json_row() */
typedef struct {
    projkey_store_t    *st;
    projkey_buf_t    buf;
    int                 n;
    projkey_store_rc_e  rc;
} projkey_pg_json_t;


static projkey_store_rc_e projkey_pg_open(projkey_store_t *st,
    const char *uri, int busy_timeout_ms);
static void projkey_pg_scrub(projkey_store_t *st, const char *uri);
static const char *projkey_pg_password(const char *uri, const char *p,
    const char **secret, size_t *len);
static void projkey_pg_cut(projkey_store_t *st, const char *secret,
    size_t len);
static projkey_store_rc_e projkey_pg_schema(projkey_store_t *st);
static projkey_store_rc_e projkey_pg_migrate(projkey_store_t *st,
    int version);
static void projkey_pg_close(projkey_store_t *st);
static void projkey_pg_one_line(projkey_store_t *st);
static void projkey_pg_notice(void *arg, const char *message);
static projkey_store_rc_e projkey_pg_fail(projkey_store_t *st,
    PGresult *res);
static PGresult *projkey_pg_exec(projkey_store_t *st, const char *sql,
    projkey_pg_params_t *p, projkey_store_rc_e *rc);
static projkey_store_rc_e projkey_pg_command(projkey_store_t *st,
    const char *sql);
static projkey_store_rc_e projkey_pg_begin(projkey_store_t *st,
    int write);
static projkey_store_rc_e projkey_pg_commit(projkey_store_t *st);
static void projkey_pg_rollback(projkey_store_t *st);
static void projkey_pg_text(projkey_pg_params_t *p, const char *s,
    size_t len);
static void projkey_pg_bytes(projkey_pg_params_t *p, const unsigned char *b,
    size_t len);
static void projkey_pg_int(projkey_pg_params_t *p, int64_t v);
static int64_t projkey_pg_int64(PGresult *res, int row, int col);
static int projkey_pg_hash(PGresult *res, int row, int col,
    unsigned char *hash);
static int projkey_pg_row(PGresult *res, int i, projkey_pg_row_t *r);
static projkey_store_rc_e projkey_pg_walk(projkey_store_t *st,
    PGresult *res, projkey_row_pt cb, void *data);
static projkey_store_rc_e projkey_pg_key(projkey_store_t *st,
    const char *project, size_t project_len, const char *id, size_t id_len,
    const char *lock, projkey_row_pt cb, void *data, PGresult **out);
static projkey_store_rc_e projkey_pg_state(projkey_store_t *st,
    int64_t *seq, char instance[33]);
static projkey_store_rc_e projkey_pg_revision(projkey_store_t *st,
    int64_t *seq);
static projkey_store_rc_e projkey_pg_load(projkey_store_t *st,
    projkey_row_pt cb, void *data, int64_t *seq);
static projkey_store_rc_e projkey_pg_changes(projkey_store_t *st,
    int64_t since, projkey_row_pt cb, void *data, int64_t *seq);
static projkey_store_rc_e projkey_pg_fetch_all(projkey_store_t *st,
    const char *sql, projkey_pg_params_t *p, projkey_row_pt cb, void *data);
static projkey_store_rc_e projkey_pg_get(projkey_store_t *st,
    const char *project, size_t project_len, const char *id, size_t id_len,
    projkey_row_pt cb, void *data);
static projkey_store_rc_e projkey_pg_list(projkey_store_t *st,
    const char *project, size_t project_len, projkey_row_pt cb, void *data);
static projkey_store_rc_e projkey_pg_create(projkey_store_t *st,
    const projkey_new_t *key, const projkey_actor_t *actor,
    projkey_row_pt cb, void *data);
static projkey_store_rc_e projkey_pg_insert(projkey_store_t *st,
    const projkey_new_t *key, const projkey_actor_t *actor, int64_t now);
static projkey_store_rc_e projkey_pg_create_batch(projkey_store_t *st,
    const projkey_new_t *keys, size_t n, const projkey_actor_t *actor);
static projkey_store_rc_e projkey_pg_change(projkey_store_t *st,
    const char *project, size_t project_len, const char *id, size_t id_len,
    const projkey_change_t *change, const projkey_actor_t *actor,
    projkey_row_pt check, projkey_row_pt cb, void *data);
static projkey_store_rc_e projkey_pg_roll(projkey_store_t *st,
    const char *project, size_t project_len, const char *id, size_t id_len,
    const unsigned char *hash, const unsigned char *preview,
    int64_t prev_expires_at, const projkey_actor_t *actor,
    projkey_row_pt check, projkey_row_pt cb, void *data);
static int projkey_pg_after(void *data, const projkey_row_t *row);
static projkey_store_rc_e projkey_pg_finish(projkey_store_t *st,
    const char *project, size_t project_len, const char *id, size_t id_len,
    const unsigned char *retired, projkey_row_pt check, projkey_row_pt cb,
    void *data);
static projkey_store_rc_e projkey_pg_purge(projkey_store_t *st,
    int64_t now, projkey_row_pt cb, void *data, size_t *n);
static projkey_store_rc_e projkey_pg_delete(projkey_store_t *st,
    const char *project, size_t project_len, const char *id, size_t id_len,
    const projkey_actor_t *actor, projkey_row_pt cb, void *data);
static projkey_store_rc_e projkey_pg_checkpoint(projkey_store_t *st,
    int full, int *complete);
static int projkey_pg_alive(projkey_store_t *st);
static projkey_store_rc_e projkey_pg_listen(projkey_store_t *st);
static int projkey_pg_socket(projkey_store_t *st);
static projkey_store_rc_e projkey_pg_notified(projkey_store_t *st,
    int64_t *seq);
static projkey_store_rc_e projkey_pg_touch(projkey_store_t *st,
    const projkey_touch_t *touch, size_t n);
static projkey_store_rc_e projkey_pg_heartbeat(projkey_store_t *st,
    const projkey_node_t *node);
static projkey_store_rc_e projkey_pg_nodes(projkey_store_t *st,
    int64_t now, projkey_node_pt cb, void *data);
static projkey_store_rc_e projkey_pg_cursor_key(projkey_store_t *st);
static projkey_store_rc_e projkey_pg_page_rows(projkey_store_t *st,
    const char *project, size_t project_len, const projkey_page_t *page,
    PGresult **out, int *bound);
static int projkey_pg_trgm(projkey_store_t *st);
static projkey_store_rc_e projkey_pg_page(projkey_store_t *st,
    const char *project, size_t project_len, const projkey_page_t *page,
    projkey_row_pt cb, void *data, char **next);
static projkey_store_rc_e projkey_pg_page_json(projkey_store_t *st,
    const char *project, size_t project_len, const projkey_page_t *page,
    char **out, size_t *len);
static projkey_store_rc_e projkey_pg_search_merge_step(projkey_store_t *st,
    int *more);
static projkey_store_rc_e projkey_pg_list_json(projkey_store_t *st,
    const char *project, size_t project_len, char **out, size_t *len);
static projkey_store_rc_e projkey_pg_audit_json(projkey_store_t *st,
    const char *project, size_t project_len, int64_t before, int limit,
    char **out, size_t *len);
static projkey_store_rc_e projkey_pg_nodes_json(projkey_store_t *st,
    int64_t now, char **out, size_t *len);
static int projkey_pg_json_row(void *data, const projkey_row_t *row);
static void projkey_pg_buf_json(projkey_buf_t *b, const char *p,
    size_t len);
static char *projkey_pg_pattern(const char *q, size_t len);


/* the migrations: entry n brings version n to n + 1 */
static const char  *projkey_pg_migrations[] = {

    "CREATE SCHEMA projkey;\n"
    "\n"
    "CREATE TABLE projkey.meta (\n"
    "    k  text PRIMARY KEY,\n"
    "    v  text NOT NULL\n"
    ");\n"
    "\n"
    "CREATE TABLE projkey.revision (\n"
    "    one    boolean PRIMARY KEY DEFAULT true CHECK (one),\n"
    "    value  bigint NOT NULL\n"
    ");\n"
    "\n"
    "INSERT INTO projkey.revision (value) VALUES (0);\n"
    "\n"
    "CREATE TABLE projkey.keys (\n"
    "    id               text PRIMARY KEY,\n"
    "    project          text NOT NULL,\n"
    "    name             text NOT NULL,\n"
    "    hash             bytea NOT NULL UNIQUE CHECK (length(hash) = 32),\n"
    "    preview          text NOT NULL,\n"
    "    status           smallint NOT NULL CHECK (status IN (1, 2)),\n"
    "    created_by       text NOT NULL,\n"
    "    created_at       bigint NOT NULL,\n"
    "    updated_at       bigint NOT NULL,\n"
    "    last_used_at     bigint,\n"
    "    seq              bigint NOT NULL,\n"
    "    expires_at       bigint,\n"
    "    prev_hash        bytea CHECK (length(prev_hash) = 32),\n"
    "    prev_preview     text,\n"
    "    prev_expires_at  bigint\n"
    ");\n"
    "\n"
    "CREATE INDEX keys_seq ON projkey.keys (seq);\n"
    "CREATE INDEX keys_list ON projkey.keys (project, created_at DESC, id"
    " DESC);\n"
    "CREATE INDEX keys_prev ON projkey.keys (prev_expires_at)\n"
    "    WHERE prev_hash IS NOT NULL;\n"
    "\n"
    "CREATE TABLE projkey.deleted (\n"
    "    id       text PRIMARY KEY,\n"
    "    hash     bytea NOT NULL,\n"
    "    project  text NOT NULL,\n"
    "    seq      bigint NOT NULL\n"
    ");\n"
    "\n"
    "CREATE INDEX deleted_seq ON projkey.deleted (seq);\n"
    "\n"
    "CREATE TABLE projkey.retired (\n"
    "    hash     bytea PRIMARY KEY,\n"
    "    id       text NOT NULL,\n"
    "    project  text NOT NULL,\n"
    "    seq      bigint NOT NULL\n"
    ");\n"
    "\n"
    "CREATE INDEX retired_seq ON projkey.retired (seq);\n"
    "\n"
    "CREATE TABLE projkey.changes (\n"
    "    revision  bigint PRIMARY KEY,\n"
    "    at        timestamptz NOT NULL DEFAULT now(),\n"
    "    project   text,\n"
    "    key_id    text,\n"
    "    action    text NOT NULL\n"
    ");\n"
    "\n"
    "CREATE TABLE projkey.audit (\n"
    "    seq      bigserial PRIMARY KEY,\n"
    "    at       bigint NOT NULL,\n"
    "    project  text NOT NULL,\n"
    "    key_id   text NOT NULL,\n"
    "    action   text NOT NULL,\n"
    "    actor    text NOT NULL,\n"
    "    addr     text,\n"
    "    detail   json NOT NULL\n"
    ");\n"
    "\n"
    "CREATE INDEX audit_project ON projkey.audit (project, seq);\n"
    "\n"
    "CREATE TABLE projkey.nodes (\n"
    "    name       text PRIMARY KEY,\n"
    "    revision   bigint NOT NULL,\n"
    "    last_seen  bigint NOT NULL,\n"
    "    zone_keys  bigint NOT NULL,\n"
    "    zone_used  bigint NOT NULL,\n"
    "    zone_size  bigint NOT NULL\n"
    ");\n"
    "\n"
    "CREATE FUNCTION projkey.rfc3339(t bigint) RETURNS text\n"
    "LANGUAGE sql IMMUTABLE AS $$\n"
    "    SELECT to_char(to_timestamp(t) AT TIME ZONE 'UTC',\n"
    "                   'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')\n"
    "$$;\n"
    "\n"
    "CREATE FUNCTION projkey.status_name(s integer) RETURNS text\n"
    "LANGUAGE sql IMMUTABLE AS $$\n"
    "    SELECT CASE WHEN s = 1 THEN 'active' ELSE 'disabled' END\n"
    "$$;\n"
    "\n"
    "-- The next revision, in the change's own transaction: the counter row\n"
    "-- stays locked until commit, so revisions commit in their order.\n"
    "CREATE FUNCTION projkey.next_revision(p_project text, p_key text,\n"
    "    p_action text) RETURNS bigint\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    r bigint;\n"
    "BEGIN\n"
    "    UPDATE projkey.revision SET value = value + 1 RETURNING value INTO"
    " r;\n"
    "    INSERT INTO projkey.changes (revision, project, key_id, action)\n"
    "        VALUES (r, p_project, p_key, p_action);\n"
    "    PERFORM pg_notify('projkey', r::text);\n"
    "    RETURN r;\n"
    "END\n"
    "$$;\n"
    "\n"
    "-- every writer takes the counter first: one lock order, no deadlock\n"
    "CREATE FUNCTION projkey.lock_writers() RETURNS void\n"
    "LANGUAGE sql AS $$\n"
    "    SELECT NULL::void FROM projkey.revision FOR UPDATE\n"
    "$$;\n"
    "\n"
    "-- a deleted key's hashes, for the nodes to take out, at revision r\n"
    "CREATE FUNCTION projkey.bury(k projkey.keys, r bigint) RETURNS void\n"
    "LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "    INSERT INTO projkey.deleted (id, hash, project, seq)\n"
    "        VALUES (k.id, k.hash, k.project, r);\n"
    "    IF k.prev_hash IS NOT NULL THEN\n"
    "        INSERT INTO projkey.retired (hash, id, project, seq)\n"
    "            VALUES (k.prev_hash, k.id, k.project, r)\n"
    "            ON CONFLICT (hash) DO UPDATE SET id = excluded.id,\n"
    "                project = excluded.project, seq = excluded.seq;\n"
    "    END IF;\n"
    "END\n"
    "$$;\n"
    "\n"
    "CREATE FUNCTION projkey.audit(p_at bigint, p_project text, p_key text,\n"
    "    p_action text, p_actor text, p_addr text, p_detail json) RETURNS"
    " void\n"
    "LANGUAGE sql AS $$\n"
    "    INSERT INTO projkey.audit (at, project, key_id, action, actor,"
    " addr,\n"
    "        detail)\n"
    "    VALUES (p_at, p_project, p_key, p_action, p_actor, p_addr,"
    " p_detail)\n"
    "$$;\n"
    "\n"
    "CREATE FUNCTION projkey.create_key(p_id text, p_project text, p_name"
    " text,\n"
    "    p_hash bytea, p_preview text, p_status integer, p_expires_at"
    " bigint,\n"
    "    p_now bigint, p_actor text, p_addr text) RETURNS bigint\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    r bigint;\n"
    "BEGIN\n"
    "    PERFORM projkey.lock_writers();\n"
    "    r := projkey.next_revision(p_project, p_id, 'create');\n"
    "    INSERT INTO projkey.keys (id, project, name, hash, preview, status,\n"
    "        created_by, created_at, updated_at, seq, expires_at)\n"
    "    VALUES (p_id, p_project, p_name, p_hash, p_preview,\n"
    "        coalesce(nullif(p_status, 0), 1), p_actor, p_now, p_now, r,\n"
    "        nullif(p_expires_at, 0));\n"
    "    PERFORM projkey.audit(p_now, p_project, p_id, 'create', p_actor,"
    " p_addr,\n"
    "        json_build_object('name', p_name));\n"
    "    RETURN r;\n"
    "END\n"
    "$$;\n"
    "\n"
    "-- NULL name, 0 status, false set_expires: unchanged; no row: no such"
    " key\n"
    "CREATE FUNCTION projkey.change_key(p_project text, p_id text, p_name"
    " text,\n"
    "    p_status integer, p_set_expires boolean, p_expires_at bigint,\n"
    "    p_now bigint, p_actor text, p_addr text,\n"
    "    OUT seq bigint, OUT changed boolean)\n"
    "RETURNS SETOF record\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    k         projkey.keys;\n"
    "    r         bigint;\n"
    "    rename    boolean;\n"
    "    restatus  boolean;\n"
    "    reexpire  boolean;\n"
    "    expires   bigint := nullif(p_expires_at, 0);\n"
    "BEGIN\n"
    "    PERFORM projkey.lock_writers();\n"
    "    SELECT * INTO k FROM projkey.keys\n"
    "        WHERE id = p_id AND project = p_project FOR UPDATE;\n"
    "    IF NOT FOUND THEN\n"
    "        RETURN;\n"
    "    END IF;\n"
    "\n"
    "    rename := p_name IS NOT NULL AND p_name <> k.name;\n"
    "    restatus := p_status <> 0 AND p_status <> k.status;\n"
    "    reexpire := p_set_expires AND expires IS DISTINCT FROM"
    " k.expires_at;\n"
    "\n"
    "    IF NOT (rename OR restatus OR reexpire) THEN\n"
    "        seq := k.seq;\n"
    "        changed := false;\n"
    "        RETURN NEXT;\n"
    "        RETURN;\n"
    "    END IF;\n"
    "\n"
    "    r := projkey.next_revision(p_project, p_id, 'update');\n"
    "\n"
    "    UPDATE projkey.keys SET\n"
    "        name = CASE WHEN rename THEN p_name ELSE k.name END,\n"
    "        status = CASE WHEN restatus THEN p_status ELSE k.status END,\n"
    "        expires_at = CASE WHEN reexpire THEN expires ELSE k.expires_at"
    " END,\n"
    "        updated_at = p_now, seq = r\n"
    "    WHERE id = p_id;\n"
    "\n"
    "    IF rename THEN\n"
    "        PERFORM projkey.audit(p_now, p_project, p_id, 'rename',"
    " p_actor,\n"
    "            p_addr, json_build_object('name',\n"
    "                json_build_object('from', k.name, 'to', p_name)));\n"
    "    END IF;\n"
    "\n"
    "    IF restatus THEN\n"
    "        PERFORM projkey.audit(p_now, p_project, p_id,\n"
    "            CASE WHEN p_status = 1 THEN 'enable' ELSE 'disable' END,\n"
    "            p_actor, p_addr, json_build_object('status',\n"
    "                json_build_object('from',"
    " projkey.status_name(k.status),\n"
    "                                  'to',"
    " projkey.status_name(p_status))));\n"
    "    END IF;\n"
    "\n"
    "    IF reexpire THEN\n"
    "        PERFORM projkey.audit(p_now, p_project, p_id,\n"
    "            CASE WHEN expires IS NULL THEN 'clear_expiry'\n"
    "                 ELSE 'set_expiry' END,\n"
    "            p_actor, p_addr, json_build_object('expires_at',\n"
    "                json_build_object('from',"
    " projkey.rfc3339(k.expires_at),\n"
    "                                  'to', projkey.rfc3339(expires))));\n"
    "    END IF;\n"
    "\n"
    "    seq := r;\n"
    "    changed := true;\n"
    "    RETURN NEXT;\n"
    "END\n"
    "$$;\n"
    "\n"
    "-- the previous secret of an earlier roll is taken out of use (retired)\n"
    "CREATE FUNCTION projkey.roll_key(p_project text, p_id text, p_hash"
    " bytea,\n"
    "    p_preview text, p_prev_expires_at bigint, p_now bigint, p_actor"
    " text,\n"
    "    p_addr text, OUT seq bigint, OUT retired bytea)\n"
    "RETURNS SETOF record\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    k  projkey.keys;\n"
    "    r  bigint;\n"
    "BEGIN\n"
    "    PERFORM projkey.lock_writers();\n"
    "    SELECT * INTO k FROM projkey.keys\n"
    "        WHERE id = p_id AND project = p_project FOR UPDATE;\n"
    "    IF NOT FOUND THEN\n"
    "        RETURN;\n"
    "    END IF;\n"
    "\n"
    "    r := projkey.next_revision(p_project, p_id, 'roll');\n"
    "\n"
    "    IF k.prev_hash IS NOT NULL THEN\n"
    "        INSERT INTO projkey.retired (hash, id, project, seq)\n"
    "            VALUES (k.prev_hash, k.id, k.project, r)\n"
    "            ON CONFLICT (hash) DO UPDATE SET id = excluded.id,\n"
    "                project = excluded.project, seq = excluded.seq;\n"
    "    END IF;\n"
    "\n"
    "    UPDATE projkey.keys SET prev_hash = k.hash, prev_preview ="
    " k.preview,\n"
    "        prev_expires_at = p_prev_expires_at, hash = p_hash,\n"
    "        preview = p_preview, updated_at = p_now, seq = r\n"
    "    WHERE id = p_id;\n"
    "\n"
    "    PERFORM projkey.audit(p_now, p_project, p_id, 'roll', p_actor,"
    " p_addr,\n"
    "        json_build_object('preview',\n"
    "            json_build_object('from', k.preview, 'to', p_preview),\n"
    "            'previous_expires_at',"
    " projkey.rfc3339(p_prev_expires_at)));\n"
    "\n"
    "    seq := r;\n"
    "    retired := k.prev_hash;\n"
    "    RETURN NEXT;\n"
    "END\n"
    "$$;\n"
    "\n"
    "-- NULL: no such key; the deleted row first, so that the trigger below\n"
    "-- knows the delete for one of ours\n"
    "CREATE FUNCTION projkey.delete_key(p_project text, p_id text, p_now"
    " bigint,\n"
    "    p_actor text, p_addr text) RETURNS bigint\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    k  projkey.keys;\n"
    "    r  bigint;\n"
    "BEGIN\n"
    "    PERFORM projkey.lock_writers();\n"
    "    SELECT * INTO k FROM projkey.keys\n"
    "        WHERE id = p_id AND project = p_project FOR UPDATE;\n"
    "    IF NOT FOUND THEN\n"
    "        RETURN NULL;\n"
    "    END IF;\n"
    "\n"
    "    r := projkey.next_revision(p_project, p_id, 'delete');\n"
    "    PERFORM projkey.bury(k, r);\n"
    "    DELETE FROM projkey.keys WHERE id = p_id;\n"
    "\n"
    "    PERFORM projkey.audit(p_now, p_project, p_id, 'delete', p_actor,"
    " p_addr,\n"
    "        json_build_object('name', k.name));\n"
    "    RETURN r;\n"
    "END\n"
    "$$;\n"
    "\n"
    "-- previous secrets expired at p_now, each a change of its own\n"
    "CREATE FUNCTION projkey.purge(p_now bigint, p_limit integer,\n"
    "    OUT id text, OUT project text, OUT hash bytea, OUT seq bigint)\n"
    "RETURNS SETOF record\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    k  record;\n"
    "BEGIN\n"
    "    PERFORM projkey.lock_writers();\n"
    "    FOR k IN SELECT keys.id, keys.project, keys.prev_hash FROM"
    " projkey.keys\n"
    "        WHERE prev_hash IS NOT NULL AND prev_expires_at <= p_now\n"
    "        ORDER BY keys.id LIMIT p_limit FOR UPDATE\n"
    "    LOOP\n"
    "        seq := projkey.next_revision(k.project, k.id, 'purge');\n"
    "        INSERT INTO projkey.retired (hash, id, project, seq)\n"
    "            VALUES (k.prev_hash, k.id, k.project, seq)\n"
    "            ON CONFLICT ON CONSTRAINT retired_pkey DO UPDATE SET\n"
    "                id = excluded.id, project = excluded.project,\n"
    "                seq = excluded.seq;\n"
    "        UPDATE projkey.keys SET prev_hash = NULL, prev_preview = NULL,\n"
    "            prev_expires_at = NULL, seq = purge.seq\n"
    "        WHERE keys.id = k.id;\n"
    "        id := k.id;\n"
    "        project := k.project;\n"
    "        hash := k.prev_hash;\n"
    "        RETURN NEXT;\n"
    "    END LOOP;\n"
    "END\n"
    "$$;\n"
    "\n"
    "-- a key changed by hand (UPDATE of keys, not through the functions\n"
    "-- above, which set seq) takes a revision all the same; its id,\n"
    "-- project and secrets only through them, which retire the old\n"
    "-- secrets: a hash changed by hand would stay valid on the nodes\n"
    "CREATE FUNCTION projkey.keys_by_hand() RETURNS trigger\n"
    "LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "    IF NEW.seq = OLD.seq\n"
    "       AND (NEW.id, NEW.project, NEW.hash, NEW.prev_hash)\n"
    "           IS DISTINCT FROM (OLD.id, OLD.project, OLD.hash,"
    " OLD.prev_hash)\n"
    "    THEN\n"
    "        RAISE EXCEPTION 'projkey: a key''s id, project and secrets "
    "change only through projkey''s functions';\n"
    "    END IF;\n"
    "    IF NEW.seq = OLD.seq\n"
    "       AND (NEW.name, NEW.status, NEW.expires_at, NEW.hash,"
    " NEW.prev_hash,\n"
    "            NEW.prev_expires_at)\n"
    "           IS DISTINCT FROM (OLD.name, OLD.status, OLD.expires_at,"
    " OLD.hash,\n"
    "                             OLD.prev_hash, OLD.prev_expires_at)\n"
    "    THEN\n"
    "        NEW.seq := projkey.next_revision(NEW.project, NEW.id,"
    " 'update');\n"
    "    END IF;\n"
    "    RETURN NEW;\n"
    "END\n"
    "$$;\n"
    "\n"
    "CREATE TRIGGER keys_by_hand BEFORE UPDATE ON projkey.keys\n"
    "    FOR EACH ROW EXECUTE FUNCTION projkey.keys_by_hand();\n"
    "\n"
    "-- a key deleted by hand (DELETE FROM keys) takes a revision too\n"
    "CREATE FUNCTION projkey.keys_deleted_by_hand() RETURNS trigger\n"
    "LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "    IF NOT EXISTS (SELECT 1 FROM projkey.deleted WHERE id = OLD.id)"
    " THEN\n"
    "        PERFORM projkey.bury(OLD, projkey.next_revision(OLD.project,"
    " OLD.id,\n"
    "                                                        'delete'));\n"
    "    END IF;\n"
    "    RETURN NULL;\n"
    "END\n"
    "$$;\n"
    "\n"
    "CREATE TRIGGER keys_deleted_by_hand AFTER DELETE ON projkey.keys\n"
    "    FOR EACH ROW EXECUTE FUNCTION projkey.keys_deleted_by_hand();\n"
    "\n"
    "-- a trigram index for the search, when pg_trgm is installed (it takes\n"
    "-- a superuser): ILIKE works without it, scanning\n"
    "DO $$\n"
    "DECLARE\n"
    "    ns text;\n"
    "BEGIN\n"
    "    SELECT n.nspname INTO ns FROM pg_extension e\n"
    "        JOIN pg_namespace n ON n.oid = e.extnamespace\n"
    "        WHERE e.extname = 'pg_trgm';\n"
    "    IF FOUND THEN\n"
    "        EXECUTE format('CREATE INDEX keys_name_trgm ON projkey.keys'\n"
    "            ' USING gin (name %I.gin_trgm_ops)', ns);\n"
    "        EXECUTE format('CREATE INDEX keys_preview_trgm'\n"
    "            ' ON projkey.keys USING gin (preview %I.gin_trgm_ops)',\n"
    "            ns);\n"
    "    END IF;\n"
    "END\n"
    "$$;\n",
};

#define PROJKEY_PG_SCHEMA_VERSION                                             \
    ((int) (sizeof(projkey_pg_migrations)                                     \
            / sizeof(projkey_pg_migrations[0])))


const projkey_store_ops_t  projkey_store_pg_ops = {
    "PostgreSQL",
    PROJKEY_PG_SCHEMA_VERSION,
    projkey_pg_open,
    projkey_pg_close,
    projkey_pg_state,
    projkey_pg_revision,
    projkey_pg_load,
    projkey_pg_changes,
    projkey_pg_get,
    projkey_pg_list,
    projkey_pg_create,
    projkey_pg_create_batch,
    projkey_pg_change,
    projkey_pg_roll,
    projkey_pg_purge,
    projkey_pg_delete,
    projkey_pg_checkpoint,
    projkey_pg_touch,
    projkey_pg_heartbeat,
    projkey_pg_nodes,
    projkey_pg_page,
    projkey_pg_page_json,
    projkey_pg_search_merge_step,
    projkey_pg_list_json,
    projkey_pg_audit_json,
    projkey_pg_nodes_json,
    projkey_pg_alive,
    projkey_pg_listen,
    projkey_pg_socket,
    projkey_pg_notified,
};


static projkey_store_rc_e
projkey_pg_open(projkey_store_t *st, const char *uri, int busy_timeout_ms)
{
    char                sql[64];
    const char         *keys[7], *values[7];
    char               *bad;
    PQconninfoOption   *opts;
    projkey_store_rc_e  rc;

    /*
     * A server gone without a word (a partition, a host down) fails a
     * query in seconds, not after TCP's retransmissions: callers hold
     * locks meanwhile.
     */
    keys[0] = "connect_timeout";
    values[0] = PROJKEY_PG_CONNECT_TIMEOUT;
    keys[1] = "tcp_user_timeout";
    values[1] = PROJKEY_PG_TCP_TIMEOUT;
    keys[2] = "keepalives_idle";
    values[2] = "5";
    keys[3] = "keepalives_interval";
    values[3] = "2";
    keys[4] = "keepalives_count";
    values[4] = "3";
    keys[5] = "dbname";
    values[5] = uri;
    keys[6] = NULL;
    values[6] = NULL;

    st->pg = calloc(1, sizeof(projkey_pg_t));

    if (st->pg == NULL) {
        projkey_store_set_errmsg(st, "out of memory");
        return PROJKEY_STORE_ERROR;
    }

    st->pg->busy_timeout = busy_timeout_ms;

    rc = projkey_json_open(&st->pg->json);
    if (rc != PROJKEY_STORE_OK) {
        projkey_store_set_errmsg(st, "%s", projkey_json_errmsg(st->pg->json));
        return rc;
    }

    /* a URI libpq cannot parse is a mistake, not a server out of reach */
    opts = PQconninfoParse(uri, &bad);
    if (opts == NULL) {
        projkey_store_set_errmsg(st, "the URI is not valid: %s",
                                 bad ? bad : "out of memory");
        PQfreemem(bad);
        projkey_pg_one_line(st);
        projkey_pg_scrub(st, uri);
        return PROJKEY_STORE_ERROR;
    }

    PQconninfoFree(opts);

    /* the URI's own connect_timeout, if any, comes after ours and wins */
    st->pg->conn = PQconnectdbParams(keys, values, 1);

    if (st->pg->conn == NULL) {
        projkey_store_set_errmsg(st, "out of memory");
        return PROJKEY_STORE_ERROR;
    }

    if (PQstatus(st->pg->conn) != CONNECTION_OK) {
        rc = projkey_pg_fail(st, NULL);
        projkey_pg_scrub(st, uri);

        /*
         * The server answered, and refused (a password, pg_hba.conf, no
         * such database): a configuration to fix, not a server out of
         * reach that a snapshot may stand in for
         */
        st->unreachable = (strstr(PQerrorMessage(st->pg->conn), "FATAL:")
                           == NULL);

        return rc;
    }

    (void) PQsetNoticeProcessor(st->pg->conn, projkey_pg_notice, NULL);

    /* waiting for a lock is "busy" after the caller's timeout */
    snprintf(sql, sizeof(sql), "SET lock_timeout = %d",
             busy_timeout_ms > 0 ? busy_timeout_ms : 1);

    rc = projkey_pg_command(st, sql);
    if (rc != PROJKEY_STORE_OK) {
        return rc;
    }

    if (st->flags & PROJKEY_STORE_RDONLY) {
        rc = projkey_pg_command(st, "SET default_transaction_read_only = on");
        if (rc != PROJKEY_STORE_OK) {
            return rc;
        }
    }

    return projkey_pg_schema(st);
}


/*
 * libpq quotes a bad part of a URI in its message ("invalid percent-encoded
 * token"), which may be the password: it goes, wherever it shows.
 */

static void
projkey_pg_scrub(projkey_store_t *st, const char *uri)
{
    size_t       len;
    const char  *p, *secret;

    for (p = uri; (p = projkey_pg_password(uri, p, &secret, &len)) != NULL;
         /* void */)
    {
        projkey_pg_cut(st, secret, len);
    }
}


void
projkey_store_display(const char *db, char *out, size_t size)
{
    size_t       len, n, k;
    const char  *p, *from, *secret;

    if (size == 0) {
        return;
    }

    n = 0;
    from = db;

    if (projkey_store_is_uri(db)) {
        for (p = db; (p = projkey_pg_password(db, p, &secret, &len)) != NULL;
             /* void */)
        {
            k = secret - from;
            k = (k < size - 1 - n) ? k : size - 1 - n;
            memcpy(out + n, from, k);
            n += k;

            k = (3 < size - 1 - n) ? 3 : size - 1 - n;
            memcpy(out + n, "...", k);
            n += k;

            from = secret + len;
        }
    }

    k = strlen(from);
    k = (k < size - 1 - n) ? k : size - 1 - n;
    memcpy(out + n, from, k);
    out[n + k] = '\0';
}


/*
 * The next password of a URI at or after p: user:PASSWORD@ of the
 * authority, then each password=VALUE; NULL when there is none, else where
 * to look for the one after.
 */

static const char *
projkey_pg_password(const char *uri, const char *p, const char **secret,
    size_t *len)
{
    const char  *host, *end, *at, *colon, *q;

    host = strstr(uri, "://");
    if (host == NULL) {
        return NULL;
    }

    host += 3;
    end = host + strcspn(host, "/?");

    if (p <= host) {

        /* the last @ of the authority */
        for (at = NULL, q = host; q < end; q++) {
            if (*q == '@') {
                at = q;
            }
        }

        colon = (at != NULL) ? memchr(host, ':', at - host) : NULL;

        if (colon != NULL && at - colon > 1) {
            *secret = colon + 1;
            *len = at - colon - 1;
            return at;
        }

        p = end;
    }

    if (p < end) {
        p = end;
    }

    for ( /* void */ ; (q = strstr(p, "password=")) != NULL; p = q + 9) {
        *len = strcspn(q + 9, "&");

        if (*len > 0) {
            *secret = q + 9;
            return q + 9 + *len;
        }
    }

    return NULL;
}


/* every copy of secret in the error message becomes "...", in one pass */

static void
projkey_pg_cut(projkey_store_t *st, const char *secret, size_t len)
{
    char        out[PROJKEY_ERRMSG_LEN];
    size_t      n, k;
    const char  *p;

    if (len == 0) {
        return;
    }

    n = 0;

    for (p = st->errmsg; *p != '\0' && n < PROJKEY_ERRMSG_LEN - 4; /* void */)
    {
        /* a message cut to size may end within the secret */
        k = strlen(p);

        if (strncmp(p, secret, k < len ? k : len) == 0) {
            memcpy(out + n, "...", 3);
            n += 3;
            p += k < len ? k : len;
            continue;
        }

        out[n++] = *p++;
    }

    out[n] = '\0';
    memcpy(st->errmsg, out, n + 1);
}


/*
 * Checks the schema's version; only PROJKEY_STORE_MIGRATE (projkey init,
 * migrate) migrates it, and with PROJKEY_STORE_CREATE (init) creates it:
 * nginx never does either.
 */

static projkey_store_rc_e
projkey_pg_schema(projkey_store_t *st)
{
    int                 version;
    PGresult           *res;
    const char         *state;
    projkey_store_rc_e  rc;

    res = PQexec(st->pg->conn,
                 "SELECT v FROM projkey.meta WHERE k = 'schema'");

    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        version = PQntuples(res) == 1 ? atoi(PQgetvalue(res, 0, 0)) : 0;
        PQclear(res);

        if (version < 1) {
            projkey_store_set_errmsg(st, "not a projkey database: its schema "
                                     "version is missing");
            return PROJKEY_STORE_CORRUPT;
        }

    } else {
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

        /* undefined_table, invalid_schema_name: no schema yet */
        if (state == NULL
            || (strcmp(state, "42P01") != 0 && strcmp(state, "3F000") != 0))
        {
            return projkey_pg_fail(st, res);
        }

        PQclear(res);
        version = 0;
    }

    if (version > PROJKEY_PG_SCHEMA_VERSION) {
        projkey_store_set_errmsg(st, "the schema (version %d) is newer than "
                                 "this projkey's (%d)", version,
                                 PROJKEY_PG_SCHEMA_VERSION);
        return PROJKEY_STORE_CORRUPT;
    }

    st->version = version;

    if (version == PROJKEY_PG_SCHEMA_VERSION) {
        return PROJKEY_STORE_OK;
    }

    /* migrate (MIGRATE alone) does not make a schema: init does */
    if (version == 0 && (st->flags & PROJKEY_STORE_MIGRATE)
        && !(st->flags & PROJKEY_STORE_CREATE))
    {
        projkey_store_set_errmsg(st, "the database has no projkey schema "
                                 "to migrate: \"init\" creates it");
        return PROJKEY_STORE_CORRUPT;
    }

    if (!(st->flags & PROJKEY_STORE_MIGRATE)) {
        if (version > 0 && (st->flags & PROJKEY_STORE_ANY_VERSION)) {
            return PROJKEY_STORE_OK;
        }

        projkey_store_set_errmsg(st, version == 0
                                 ? "the database has no projkey schema: "
                                   "run \"projkey --db URI init\""
                                 : "the schema (version %d) is older than "
                                   "this projkey's: run \"projkey --db URI "
                                   "migrate\"", version);
        return PROJKEY_STORE_CORRUPT;
    }

    rc = projkey_pg_migrate(st, version);
    if (rc != PROJKEY_STORE_OK) {
        return rc;
    }

    st->version = PROJKEY_PG_SCHEMA_VERSION;

    return PROJKEY_STORE_OK;
}


/* in one transaction, under a lock so that two "init" do not race */

static projkey_store_rc_e
projkey_pg_migrate(projkey_store_t *st, int version)
{
    int                  v;
    char                 hex[2 * PROJKEY_CURSOR_KEY_LEN + 1];
    unsigned char        rnd[PROJKEY_CURSOR_KEY_LEN];
    PGresult            *res;
    projkey_store_rc_e   rc;
    projkey_pg_params_t  p;

    rc = projkey_pg_begin(st, 1);
    if (rc != PROJKEY_STORE_OK) {
        return rc;
    }

    rc = projkey_pg_command(st, "SELECT pg_advisory_xact_lock(7370656)");
    if (rc != PROJKEY_STORE_OK) {
        goto failed;
    }

    /* another init may have been first */
    res = PQexec(st->pg->conn, "SELECT to_regclass('projkey.meta') IS NULL");

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = projkey_pg_fail(st, res);
        goto failed;
    }

    if (PQgetvalue(res, 0, 0)[0] == 'f') {
        PQclear(res);
        res = PQexec(st->pg->conn,
                     "SELECT v FROM projkey.meta WHERE k = 'schema'");

        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
            rc = projkey_pg_fail(st, res);
            goto failed;
        }

        version = atoi(PQgetvalue(res, 0, 0));
    }

    PQclear(res);

    for (v = version; v < PROJKEY_PG_SCHEMA_VERSION; v++) {
        rc = projkey_pg_command(st, projkey_pg_migrations[v]);
        if (rc != PROJKEY_STORE_OK) {
            goto failed;
        }
    }

    if (version == 0) {
        randombytes_buf(rnd, 16);
        sodium_bin2hex(hex, sizeof(hex), rnd, 16);

        memset(&p, 0, sizeof(projkey_pg_params_t));
        projkey_pg_text(&p, hex, 32);
        randombytes_buf(rnd, PROJKEY_CURSOR_KEY_LEN);
        sodium_bin2hex(hex, sizeof(hex), rnd, PROJKEY_CURSOR_KEY_LEN);
        projkey_pg_text(&p, hex, 2 * PROJKEY_CURSOR_KEY_LEN);
        sodium_memzero(rnd, sizeof(rnd));

        res = projkey_pg_exec(st, "INSERT INTO projkey.meta (k, v) VALUES"
                              " ('instance', $1), ('cursor_key', $2),"
                              " ('schema', '0')", &p, &rc);
        sodium_memzero(hex, sizeof(hex));

        if (res == NULL) {
            goto failed;
        }

        PQclear(res);
    }

    memset(&p, 0, sizeof(projkey_pg_params_t));
    projkey_pg_int(&p, PROJKEY_PG_SCHEMA_VERSION);

    res = projkey_pg_exec(st, "UPDATE projkey.meta SET v = $1::text"
                          " WHERE k = 'schema'", &p, &rc);
    if (res == NULL) {
        goto failed;
    }

    PQclear(res);

    return projkey_pg_commit(st);

failed:

    projkey_pg_rollback(st);
    return rc;
}


static void
projkey_pg_close(projkey_store_t *st)
{
    if (st->pg == NULL) {
        return;
    }

    if (st->pg->conn != NULL) {
        PQfinish(st->pg->conn);
    }

    projkey_json_close(st->pg->json);

    free(st->pg);
    st->pg = NULL;
}


/* libpq's messages run over lines ("\n\tThis probably means..."): a log's is one */

static void
projkey_pg_one_line(projkey_store_t *st)
{
    char  *p, *q;

    for (p = st->errmsg, q = st->errmsg; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\t' || *p == '\r') {
            if (q > st->errmsg && q[-1] != ' ') {
                *q++ = ' ';
            }

            continue;
        }

        *q++ = *p;
    }

    while (q > st->errmsg && q[-1] == ' ') {
        q--;
    }

    *q = '\0';
}


/* a server's NOTICE or WARNING (a shutdown's) is not written to stderr */

static void
projkey_pg_notice(void *arg, const char *message)
{
}


/* maps a failed result (or connection) to ours, in an operator's words */

static projkey_store_rc_e
projkey_pg_fail(projkey_store_t *st, PGresult *res)
{
    char         state[6];
    size_t       n;
    const char  *p, *msg;

    /* both point into res: copied out before it goes */
    p = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(state, sizeof(state), "%s", p != NULL ? p : "");

    msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                      : NULL;

    if (msg == NULL) {
        msg = PQerrorMessage(st->pg->conn);
    }

    n = strlen(msg);

    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) {
        n--;
    }

    if (PQstatus(st->pg->conn) != CONNECTION_OK) {
        st->broken = 1;
        projkey_store_set_errmsg(st, "the database is unreachable: %.*s",
                                 (int) n, msg);
        projkey_pg_one_line(st);
        PQclear(res);
        return PROJKEY_STORE_ERROR;
    }

    projkey_store_set_errmsg(st, "%.*s", (int) n, msg);
    projkey_pg_one_line(st);
    PQclear(res);

    /* lock_not_available, deadlock, serialization, statement timeout */
    if (strcmp(state, "55P03") == 0 || strcmp(state, "40P01") == 0
        || strcmp(state, "40001") == 0 || strcmp(state, "57014") == 0)
    {
        projkey_store_set_errmsg(st, "database is locked by another writer "
                                 "(waited %d ms)", st->pg->busy_timeout);
        return PROJKEY_STORE_BUSY;
    }

    /* read_only_sql_transaction, and a standby's */
    if (strcmp(state, "25006") == 0) {
        return PROJKEY_STORE_READONLY;
    }

    if (strcmp(state, "53100") == 0) {
        return PROJKEY_STORE_FULL;
    }

    /* undefined table, schema or function: not (all) of a projkey schema */
    if (strcmp(state, "42P01") == 0 || strcmp(state, "3F000") == 0
        || strcmp(state, "42883") == 0)
    {
        return PROJKEY_STORE_CORRUPT;
    }

    return PROJKEY_STORE_ERROR;
}


/* NULL on failure (*rc says why); the caller PQclear()s the result */

static PGresult *
projkey_pg_exec(projkey_store_t *st, const char *sql, projkey_pg_params_t *p,
    projkey_store_rc_e *rc)
{
    PGresult  *res;

    res = PQexecParams(st->pg->conn, sql, p->n, NULL, p->values, p->lengths,
                       p->formats, 0);

    switch (PQresultStatus(res)) {

    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK:
        *rc = PROJKEY_STORE_OK;
        return res;

    default:
        *rc = projkey_pg_fail(st, res);
        return NULL;
    }
}


static projkey_store_rc_e
projkey_pg_command(projkey_store_t *st, const char *sql)
{
    PGresult  *res;

    res = PQexec(st->pg->conn, sql);

    if (PQresultStatus(res) != PGRES_COMMAND_OK
        && PQresultStatus(res) != PGRES_TUPLES_OK)
    {
        return projkey_pg_fail(st, res);
    }

    PQclear(res);

    return PROJKEY_STORE_OK;
}


/* a read sees one snapshot: the revision and the rows agree */

static projkey_store_rc_e
projkey_pg_begin(projkey_store_t *st, int write)
{
    projkey_store_rc_e  rc;

    rc = projkey_pg_command(st, write
                            ? "BEGIN"
                            : "BEGIN ISOLATION LEVEL REPEATABLE READ"
                              " READ ONLY");
    if (rc == PROJKEY_STORE_OK) {
        st->pg->in_tx = 1;
    }

    return rc;
}


static projkey_store_rc_e
projkey_pg_commit(projkey_store_t *st)
{
    projkey_store_rc_e  rc;

    rc = projkey_pg_command(st, "COMMIT");
    st->pg->in_tx = 0;

    return rc;
}


static void
projkey_pg_rollback(projkey_store_t *st)
{
    char  saved[PROJKEY_ERRMSG_LEN];

    if (!st->pg->in_tx) {
        return;
    }

    /* the error that made us roll back is the one to tell */
    memcpy(saved, st->errmsg, PROJKEY_ERRMSG_LEN);
    (void) projkey_pg_command(st, "ROLLBACK");
    memcpy(st->errmsg, saved, PROJKEY_ERRMSG_LEN);

    st->pg->in_tx = 0;
}


/* a string as its bytes (NULL: SQL NULL) */

static void
projkey_pg_text(projkey_pg_params_t *p, const char *s, size_t len)
{
    p->values[p->n] = s;
    p->lengths[p->n] = (int) len;
    p->formats[p->n] = 1;
    p->n++;
}


static void
projkey_pg_bytes(projkey_pg_params_t *p, const unsigned char *b, size_t len)
{
    projkey_pg_text(p, (const char *) b, len);
}


static void
projkey_pg_int(projkey_pg_params_t *p, int64_t v)
{
    snprintf(p->nums[p->n], sizeof(p->nums[0]), "%lld", (long long) v);

    p->values[p->n] = p->nums[p->n];
    p->lengths[p->n] = 0;
    p->formats[p->n] = 0;
    p->n++;
}


static int64_t
projkey_pg_int64(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col)
           ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}


/* a hex-encoded hash column: 1 if present and right, 0 if NULL, -1 bad */

static int
projkey_pg_hash(PGresult *res, int row, int col, unsigned char *hash)
{
    int          hi, lo;
    size_t       i;
    const char  *hex;

    if (PQgetisnull(res, row, col)) {
        return 0;
    }

    if (PQgetlength(res, row, col) != 2 * PROJKEY_HASH_LEN) {
        return -1;
    }

    hex = PQgetvalue(res, row, col);

    /*
     * A hash, not a secret: no need for sodium_hex2bin()'s constant time,
     * which was an eighth of a million-key load
     */

    for (i = 0; i < PROJKEY_HASH_LEN; i++) {
        hi = projkey_pg_hex[(unsigned char) hex[2 * i]];
        lo = projkey_pg_hex[(unsigned char) hex[2 * i + 1]];

        if ((hi | lo) & 0x10) {
            return -1;
        }

        hash[i] = (unsigned char) (hi << 4 | lo);
    }

    return 1;
}


/*
 * Row i of a result of PROJKEY_PG_KEY_COLUMNS or PROJKEY_PG_LOAD_COLUMNS;
 * -1 for a damaged hash.
 */

static int
projkey_pg_row(PGresult *res, int i, projkey_pg_row_t *r)
{
    int             h, ph;
    projkey_row_t  *row;

    row = &r->row;
    memset(row, 0, sizeof(projkey_row_t));

    h = projkey_pg_hash(res, i, 1, r->hash);
    ph = projkey_pg_hash(res, i, 12, r->prev_hash);

    if (h < 0 || ph < 0) {
        return -1;
    }

    row->id = PQgetvalue(res, i, 0);
    row->hash = h ? r->hash : NULL;
    row->project = PQgetvalue(res, i, 2);
    row->project_len = PQgetlength(res, i, 2);
    /* a deleted key has no name, preview or creator */
    if (!PQgetisnull(res, i, 3)) {
        row->name = PQgetvalue(res, i, 3);
        row->name_len = PQgetlength(res, i, 3);
        row->preview = PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4);
        row->created_by = PQgetisnull(res, i, 5) ? NULL
                                                 : PQgetvalue(res, i, 5);
    }
    row->created_at = projkey_pg_int64(res, i, 6);
    row->updated_at = projkey_pg_int64(res, i, 7);
    row->last_used_at = projkey_pg_int64(res, i, 8);
    row->seq = projkey_pg_int64(res, i, 9);
    row->status = (int) projkey_pg_int64(res, i, 10);
    row->expires_at = projkey_pg_int64(res, i, 11);
    row->prev_hash = ph ? r->prev_hash : NULL;
    row->prev_preview = (ph && !PQgetisnull(res, i, 13))
                        ? PQgetvalue(res, i, 13) : NULL;
    row->prev_expires_at = projkey_pg_int64(res, i, 14);

    return 0;
}


static projkey_store_rc_e
projkey_pg_walk(projkey_store_t *st, PGresult *res, projkey_row_pt cb,
    void *data)
{
    int               i;
    projkey_pg_row_t  r;

    for (i = 0; i < PQntuples(res); i++) {
        if (projkey_pg_row(res, i, &r) != 0) {
            projkey_store_set_errmsg(st, "the key has a damaged hash");
            return PROJKEY_STORE_CORRUPT;
        }

        if (cb != NULL && cb(data, &r.row) != 0) {
            projkey_store_set_errmsg(st, "stopped by the caller");
            return PROJKEY_STORE_ERROR;
        }
    }

    return PROJKEY_STORE_OK;
}


/*
 * One key, given to cb; lock is "" or " FOR UPDATE".  With out, the
 * result is kept for the caller, who PQclear()s it.
 */

static projkey_store_rc_e
projkey_pg_key(projkey_store_t *st, const char *project, size_t project_len,
    const char *id, size_t id_len, const char *lock, projkey_row_pt cb,
    void *data, PGresult **out)
{
    char                 sql[512];
    PGresult            *res;
    projkey_store_rc_e   rc;
    projkey_pg_params_t  p;

    memset(&p, 0, sizeof(projkey_pg_params_t));
    projkey_pg_text(&p, id, id_len);
    projkey_pg_text(&p, project, project_len);

    snprintf(sql, sizeof(sql), "SELECT " PROJKEY_PG_KEY_COLUMNS
             " FROM projkey.keys WHERE id = $1 AND project = $2%s", lock);

    res = projkey_pg_exec(st, sql, &p, &rc);
    if (res == NULL) {
        return rc;
    }

    if (PQntuples(res) == 0) {
        PQclear(res);
        projkey_store_set_errmsg(st, "no such key");
        return PROJKEY_STORE_NOTFOUND;
    }

    rc = projkey_pg_walk(st, res, cb, data);

    if (out != NULL && rc == PROJKEY_STORE_OK) {
        *out = res;

    } else {
        PQclear(res);
    }

    return rc;
}


/*
 * The instance a node compares is the database's id and the server's
 * timeline: a promoted standby is on a new one, and may lack the last
 * commits of the old primary under the same revision numbers, so a node
 * reloads every key from it rather than take it for a continuation.
 */

static projkey_store_rc_e
projkey_pg_state(projkey_store_t *st, int64_t *seq, char instance[33])
{
    size_t                     i;
    PGresult                  *res;
    const char                *id, *tl;
    unsigned char              h[16];
    crypto_generichash_state   gs;

    res = PQexec(st->pg->conn, "SELECT (SELECT value FROM projkey.revision),"
                 " (SELECT v FROM projkey.meta WHERE k = 'instance'),"
                 " CASE WHEN pg_is_in_recovery()"
                 " THEN (SELECT timeline_id FROM pg_control_checkpoint())::text"
                 " ELSE substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"
                 " END");

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        return projkey_pg_fail(st, res);
    }

    *seq = projkey_pg_int64(res, 0, 0);
    id = PQgetvalue(res, 0, 1);
    tl = PQgetvalue(res, 0, 2);

    crypto_generichash_init(&gs, NULL, 0, sizeof(h));
    crypto_generichash_update(&gs, (const unsigned char *) id, strlen(id));
    crypto_generichash_update(&gs, (const unsigned char *) ":", 1);
    crypto_generichash_update(&gs, (const unsigned char *) tl, strlen(tl));
    crypto_generichash_final(&gs, h, sizeof(h));

    for (i = 0; i < sizeof(h); i++) {
        snprintf(instance + 2 * i, 3, "%02x", h[i]);
    }

    PQclear(res);

    return PROJKEY_STORE_OK;
}


static projkey_store_rc_e
projkey_pg_revision(projkey_store_t *st, int64_t *seq)
{
    PGresult  *res;

    res = PQexec(st->pg->conn, "SELECT value FROM projkey.revision");

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        return projkey_pg_fail(st, res);
    }

    *seq = projkey_pg_int64(res, 0, 0);
    PQclear(res);

    return PROJKEY_STORE_OK;
}


static projkey_store_rc_e
projkey_pg_load(projkey_store_t *st, projkey_row_pt cb, void *data,
    int64_t *seq)
{
    return projkey_pg_changes(st, -1, cb, data, seq);
}


/*
 * The keys changed after since (every key when since is -1), deleted ones
 * and previous secrets out of use as deleted rows, in revision order: in
 * one snapshot, whose revision is every change committed before it, as
 * revisions commit in their order.
 */

static projkey_store_rc_e
projkey_pg_changes(projkey_store_t *st, int64_t since, projkey_row_pt cb,
    void *data, int64_t *seq)
{
    const char          *sql;
    projkey_store_rc_e   rc;
    projkey_pg_params_t  p;

    rc = projkey_pg_begin(st, 0);
    if (rc != PROJKEY_STORE_OK) {
        return rc;
    }

    rc = projkey_pg_revision(st, seq);
    if (rc != PROJKEY_STORE_OK) {
        goto failed;
    }

    memset(&p, 0, sizeof(projkey_pg_params_t));

    if (since < 0) {
        sql = "SELECT " PROJKEY_PG_LOAD_COLUMNS " FROM projkey.keys";

    } else {
        projkey_pg_int(&p, since);

        /* a hash out of use comes before the key's row of the same change */
        sql = "SELECT " PROJKEY_PG_KEY_COLUMNS " FROM projkey.keys"
              " WHERE seq > $1"
              " UNION ALL"
              " SELECT id, encode(hash, 'hex'), project, NULL, NULL, NULL,"
              " 0, 0, 0, seq, 0, 0, NULL, NULL, 0"
              " FROM projkey.deleted WHERE seq > $1"
              " UNION ALL"
              " SELECT id, encode(hash, 'hex'), project, NULL, NULL, NULL,"
              " 0, 0, 0, seq, 0, 0, NULL, NULL, 0"
              " FROM projkey.retired WHERE seq > $1"
              " ORDER BY 10, 11";
    }

    rc = projkey_pg_fetch_all(st, sql, &p, cb, data);
    if (rc != PROJKEY_STORE_OK) {
        goto failed;
    }

    return projkey_pg_commit(st);

failed:

    projkey_pg_rollback(st);
    return rc;
}


/*
 * A read of every key goes through a cursor in its transaction, a batch at
 * a time: libpq would otherwise hold all the rows of a million keys in
 * memory at once, in the master at start.
 */

static projkey_store_rc_e
projkey_pg_fetch_all(projkey_store_t *st, const char *sql,
    projkey_pg_params_t *p, projkey_row_pt cb, void *data)
{
    int                  n;
    char                 declare[2048];
    PGresult            *res;
    projkey_store_rc_e   rc;

    if ((size_t) snprintf(declare, sizeof(declare),
                          "DECLARE projkey_rows NO SCROLL CURSOR FOR %s", sql)
        >= sizeof(declare))
    {
        projkey_store_set_errmsg(st, "the query is too long");
        return PROJKEY_STORE_ERROR;
    }

    res = projkey_pg_exec(st, declare, p, &rc);
    if (res == NULL) {
        return rc;
    }

    PQclear(res);

    do {
        res = PQexec(st->pg->conn, "FETCH " PROJKEY_PG_FETCH
                     " FROM projkey_rows");

        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            return projkey_pg_fail(st, res);
        }

        n = PQntuples(res);
        rc = projkey_pg_walk(st, res, cb, data);
        PQclear(res);

    } while (rc == PROJKEY_STORE_OK && n == atoi(PROJKEY_PG_FETCH));

    return rc;
}


static projkey_store_rc_e
projkey_pg_get(projkey_store_t *st, const char *project, size_t project_len,
    const char *id, size_t id_len, projkey_row_pt cb, void *data)
{
    return projkey_pg_key(st, project, project_len, id, id_len, "", cb, data,
                          NULL);
}


static projkey_store_rc_e
projkey_pg_list(projkey_store_t *st, const char *project, size_t project_len,
    projkey_row_pt cb, void *data)
{
    PGresult            *res;
    projkey_store_rc_e   rc;
    projkey_pg_params_t  p;

    memset(&p, 0, sizeof(projkey_pg_params_t));
    projkey_pg_text(&p, project, project_len);

    res = projkey_pg_exec(st, "SELECT " PROJKEY_PG_KEY_COLUMNS
                          " FROM projkey.keys WHERE project = $1"
                          " ORDER BY created_at DESC, id DESC", &p, &rc);
    if (res == NULL) {
        return rc;
    }

    rc = projkey_pg_walk(st, res, cb, data);
    PQclear(res);

    return rc;
}


static projkey_store_rc_e
projkey_pg_create(projkey_store_t *st, const projkey_new_t *key,
    const projkey_actor_t *actor, projkey_row_pt cb, void *data)
{
    int64_t             now;
    const char         *msg;
    projkey_store_rc_e  rc;

    now = time(NULL);

    if (key->expires_at > 0) {
        msg = projkey_text_check_expires(key->expires_at, now);
        if (msg != NULL) {
            return projkey_store_invalid(st, msg);
        }
    }

    rc = projkey_pg_begin(st, 1);
    if (rc != PROJKEY_STORE_OK) {
        return rc;
    }

    rc = projkey_pg_insert(st, key, actor, now);
    if (rc != PROJKEY_STORE_OK) {
        goto failed;
    }

    return projkey_pg_finish(st, key->project, key->project_len, key->id,
                             PROJKEY_ID_LEN, NULL, NULL, cb, data);

failed:

    projkey_pg_rollback(st);
    return rc;
}


static projkey_store_rc_e
projkey_pg_insert(projkey_store_t *st, const projkey_new_t *key,
    const projkey_actor_t *actor, int64_t now)
{
    PGresult            *res;
    projkey_store_rc_e   rc;
    projkey_pg_params_t  p;

    memset(&p, 0, sizeof(projkey_pg_params_t));
    projkey_pg_text(&p, key->id, PROJKEY_ID_LEN);
    projkey_pg_text(&p, key->project, key->project_len);
    projkey_pg_text(&p, key->name, key->name_len);
    projkey_pg_bytes(&p, key->hash, PROJKEY_HASH_LEN);
    projkey_pg_text(&p, (const char *) key->preview, PROJKEY_PREVIEW_LEN);
    projkey_pg_int(&p, key->status);
    projkey_pg_int(&p, key->expires_at);
    projkey_pg_int(&p, now);
    projkey_pg_text(&p, actor->user, actor->user_len);
    projkey_pg_text(&p, actor->addr, actor->addr_len);

    res = projkey_pg_exec(st, "SELECT projkey.create_key($1, $2, $3, $4, $5,"
                          " $6, $7, $8, $9, $10)", &p, &rc);
    if (res == NULL) {
        return rc;
    }

    PQclear(res);

    return PROJKEY_STORE_OK;
}


static projkey_store_rc_e
projkey_pg_create_batch(projkey_store_t *st, const projkey_new_t *keys,
    size_t n, const projkey_actor_t *actor)
{
    size_t              i;
    int64_t             now;
    const char         *msg;
    projkey_store_rc_e  rc;

    now = time(NULL);

    for (i = 0; i < n; i++) {
        if (keys[i].expires_at > 0) {
            msg = projkey_text_check_expires(keys[i].expires_at, now);
            if (msg != NULL) {
                return projkey_store_invalid(st, msg);
            }
        }
    }

    rc = projkey_pg_begin(st, 1);
    if (rc != PROJKEY_STORE_OK) {
        return rc;
    }

    for (i = 0; i < n; i++) {
        rc = projkey_pg_insert(st, &keys[i], actor, now);
        if (rc != PROJKEY_STORE_OK) {
            projkey_pg_rollback(st);
            return rc;
        }
    }

    return projkey_pg_commit(st);
}


static projkey_store_rc_e
projkey_pg_change(projkey_store_t *st, const char *project,
    size_t project_len, const char *id, size_t id_len,
    const projkey_change_t *change, const projkey_actor_t *actor,
    projkey_row_pt check, projkey_row_pt cb, void *data)
{
    int                  changed;
    int64_t              now;
    const char          *msg;
    PGresult            *res;
    projkey_store_rc_e   rc;
    projkey_pg_params_t  p;

    now = time(NULL);

    if (change->status != 0 && change->status != PROJKEY_STATUS_ACTIVE
        && change->status != PROJKEY_STATUS_DISABLED)
    {
        projkey_store_set_errmsg(st, "The status must be \"active\" or "
                                 "\"disabled\".");
        return PROJKEY_STORE_INVALID;
    }

    if (change->set_expires && change->expires_at > 0) {
        msg = projkey_text_check_expires(change->expires_at, now);
        if (msg != NULL) {
            return projkey_store_invalid(st, msg);
        }
    }

    rc = projkey_pg_begin(st, 1);
    if (rc != PROJKEY_STORE_OK) {
        return rc;
    }

    memset(&p, 0, sizeof(projkey_pg_params_t));
    projkey_pg_text(&p, project, project_len);
    projkey_pg_text(&p, id, id_len);
    projkey_pg_text(&p, change->name, change->name_len);
    projkey_pg_int(&p, change->status);
    projkey_pg_text(&p, change->set_expires ? "t" : "f", 1);
    p.formats[p.n - 1] = 0;
    projkey_pg_int(&p, change->set_expires ? change->expires_at : 0);
    projkey_pg_int(&p, now);
    projkey_pg_text(&p, actor->user, actor->user_len);
    projkey_pg_text(&p, actor->addr, actor->addr_len);

    res = projkey_pg_exec(st, "SELECT changed FROM projkey.change_key($1, $2,"
                          " $3, $4::int, $5::boolean, $6, $7, $8, $9)",
                          &p, &rc);
    if (res == NULL) {
        goto failed;
    }

    if (PQntuples(res) == 0) {
        PQclear(res);
        projkey_store_set_errmsg(st, "no such key");
        rc = PROJKEY_STORE_NOTFOUND;
        goto failed;
    }

    changed = (PQgetvalue(res, 0, 0)[0] == 't');
    PQclear(res);

    /* nothing written, no revision taken: nothing for check to refuse */
    return projkey_pg_finish(st, project, project_len, id, id_len, NULL,
                             changed ? check : NULL, cb, data);

failed:

    projkey_pg_rollback(st);
    return rc;
}


static projkey_store_rc_e
projkey_pg_roll(projkey_store_t *st, const char *project, size_t project_len,
    const char *id, size_t id_len, const unsigned char *hash,
    const unsigned char *preview, int64_t prev_expires_at,
    const projkey_actor_t *actor, projkey_row_pt check, projkey_row_pt cb,
    void *data)
{
    int                  retired;
    int64_t              now;
    const char          *msg;
    PGresult            *res;
    unsigned char        old[PROJKEY_HASH_LEN];
    projkey_store_rc_e   rc;
    projkey_pg_params_t  p;

    now = time(NULL);

    msg = projkey_text_check_previous(&prev_expires_at, now);
    if (msg != NULL) {
        return projkey_store_invalid(st, msg);
    }

    rc = projkey_pg_begin(st, 1);
    if (rc != PROJKEY_STORE_OK) {
        return rc;
    }

    memset(&p, 0, sizeof(projkey_pg_params_t));
    projkey_pg_text(&p, project, project_len);
    projkey_pg_text(&p, id, id_len);
    projkey_pg_bytes(&p, hash, PROJKEY_HASH_LEN);
    projkey_pg_text(&p, (const char *) preview, PROJKEY_PREVIEW_LEN);
    projkey_pg_int(&p, prev_expires_at);
    projkey_pg_int(&p, now);
    projkey_pg_text(&p, actor->user, actor->user_len);
    projkey_pg_text(&p, actor->addr, actor->addr_len);

    res = projkey_pg_exec(st, "SELECT encode(retired, 'hex')"
                          " FROM projkey.roll_key($1, $2, $3, $4, $5, $6,"
                          " $7, $8)", &p, &rc);
    if (res == NULL) {
        goto failed;
    }

    if (PQntuples(res) == 0) {
        PQclear(res);
        projkey_store_set_errmsg(st, "no such key");
        rc = PROJKEY_STORE_NOTFOUND;
        goto failed;
    }

    retired = projkey_pg_hash(res, 0, 0, old);
    PQclear(res);

    return projkey_pg_finish(st, project, project_len, id, id_len,
                             retired > 0 ? old : NULL, check, cb, data);

failed:

    projkey_pg_rollback(st);
    return rc;
}


/* a copy of a key to give to a callback later */

static int
projkey_pg_after(void *data, const projkey_row_t *row)
{
    projkey_pg_after_t  *a;

    a = data;
    a->r.row = *row;

    if (row->hash != NULL) {
        memcpy(a->r.hash, row->hash, PROJKEY_HASH_LEN);
        a->r.row.hash = a->r.hash;
    }

    if (row->prev_hash != NULL) {
        memcpy(a->r.prev_hash, row->prev_hash, PROJKEY_HASH_LEN);
        a->r.row.prev_hash = a->r.prev_hash;
    }

    a->found = 1;

    return 0;
}


/*
 * The end of a write transaction: the key as it is about to be committed
 * goes to check (which may refuse it), then after the commit to cb.
 */

static projkey_store_rc_e
projkey_pg_finish(projkey_store_t *st, const char *project,
    size_t project_len, const char *id, size_t id_len,
    const unsigned char *retired, projkey_row_pt check, projkey_row_pt cb,
    void *data)
{
    PGresult            *res;
    projkey_store_rc_e   rc;
    projkey_pg_after_t   a;

    res = NULL;
    memset(&a, 0, sizeof(projkey_pg_after_t));

    if (cb != NULL || check != NULL) {
        rc = projkey_pg_key(st, project, project_len, id, id_len, "",
                            projkey_pg_after, &a, &res);
        if (rc != PROJKEY_STORE_OK) {
            goto failed;
        }

        if (retired != NULL) {
            memcpy(a.r.retired_hash, retired, PROJKEY_HASH_LEN);
            a.r.row.retired_hash = a.r.retired_hash;
        }
    }

    if (check != NULL && check(data, &a.r.row) != 0) {
        projkey_store_set_errmsg(st, "stopped by the caller");
        rc = PROJKEY_STORE_ERROR;
        goto failed;
    }

    rc = projkey_pg_commit(st);

    if (rc == PROJKEY_STORE_OK && cb != NULL && cb(data, &a.r.row) != 0) {
        projkey_store_set_errmsg(st, "stopped by the caller");
        rc = PROJKEY_STORE_ERROR;
    }

    PQclear(res);
    return rc;

failed:

    projkey_pg_rollback(st);
    PQclear(res);
    return rc;
}


static projkey_store_rc_e
projkey_pg_purge(projkey_store_t *st, int64_t now, projkey_row_pt cb,
    void *data, size_t *n)
{
    int                  i;
    PGresult            *res;
    projkey_row_t        row;
    unsigned char        hash[PROJKEY_HASH_LEN];
    projkey_store_rc_e   rc;
    projkey_pg_params_t  p;

    *n = 0;

    memset(&p, 0, sizeof(projkey_pg_params_t));
    projkey_pg_int(&p, now);

    /* nothing to do costs one indexed read, and takes no lock */
    res = projkey_pg_exec(st, "SELECT 1 FROM projkey.keys"
                          " WHERE prev_hash IS NOT NULL"
                          " AND prev_expires_at <= $1 LIMIT 1", &p, &rc);
    if (res == NULL) {
        return rc;
    }

    i = PQntuples(res);
    PQclear(res);

    if (i == 0) {
        return PROJKEY_STORE_OK;
    }

    projkey_pg_int(&p, PROJKEY_PG_PURGE_BATCH);

    res = projkey_pg_exec(st, "SELECT id, project, encode(hash, 'hex'), seq"
                          " FROM projkey.purge($1, $2::int)", &p, &rc);
    if (res == NULL) {
        return rc;
    }

    *n = PQntuples(res);

    for (i = 0; cb != NULL && i < PQntuples(res); i++) {
        memset(&row, 0, sizeof(projkey_row_t));

        if (projkey_pg_hash(res, i, 2, hash) <= 0) {
            continue;
        }

        row.id = PQgetvalue(res, i, 0);
        row.project = PQgetvalue(res, i, 1);
        row.project_len = PQgetlength(res, i, 1);
        row.hash = hash;
        row.seq = projkey_pg_int64(res, i, 3);
        row.status = PROJKEY_STATUS_DELETED;

        if (cb(data, &row) != 0) {
            PQclear(res);
            projkey_store_set_errmsg(st, "stopped by the caller");
            return PROJKEY_STORE_ERROR;
        }
    }

    PQclear(res);

    return PROJKEY_STORE_OK;
}


static projkey_store_rc_e
projkey_pg_delete(projkey_store_t *st, const char *project,
    size_t project_len, const char *id, size_t id_len,
    const projkey_actor_t *actor, projkey_row_pt cb, void *data)
{
    PGresult            *res, *key;
    projkey_store_rc_e   rc;
    projkey_pg_params_t  p;
    projkey_pg_after_t   a;

    key = NULL;
    memset(&a, 0, sizeof(projkey_pg_after_t));

    rc = projkey_pg_begin(st, 1);
    if (rc != PROJKEY_STORE_OK) {
        return rc;
    }

    /* the row as it was, for cb: read after the writers' lock */
    rc = projkey_pg_command(st, "SELECT projkey.lock_writers()");
    if (rc != PROJKEY_STORE_OK) {
        goto failed;
    }

    rc = projkey_pg_key(st, project, project_len, id, id_len, " FOR UPDATE",
                        projkey_pg_after, &a, &key);
    if (rc != PROJKEY_STORE_OK) {
        goto failed;
    }

    memset(&p, 0, sizeof(projkey_pg_params_t));
    projkey_pg_text(&p, project, project_len);
    projkey_pg_text(&p, id, id_len);
    projkey_pg_int(&p, time(NULL));
    projkey_pg_text(&p, actor->user, actor->user_len);
    projkey_pg_text(&p, actor->addr, actor->addr_len);

    res = projkey_pg_exec(st, "SELECT projkey.delete_key($1, $2, $3, $4, $5)",
                          &p, &rc);
    if (res == NULL) {
        goto failed;
    }

    a.r.row.seq = projkey_pg_int64(res, 0, 0);
    PQclear(res);

    rc = projkey_pg_commit(st);

    if (rc == PROJKEY_STORE_OK && cb != NULL && cb(data, &a.r.row) != 0) {
        projkey_store_set_errmsg(st, "stopped by the caller");
        rc = PROJKEY_STORE_ERROR;
    }

    PQclear(key);
    return rc;

failed:

    projkey_pg_rollback(st);
    PQclear(key);
    return rc;
}


/* PostgreSQL checkpoints by itself */

static projkey_store_rc_e
projkey_pg_checkpoint(projkey_store_t *st, int full, int *complete)
{
    *complete = 1;
    return PROJKEY_STORE_OK;
}


/* libpq's socket is non-blocking: this read only takes what is there */

static int
projkey_pg_alive(projkey_store_t *st)
{
    if (st->pg == NULL || st->pg->conn == NULL) {
        return 0;
    }

    /* twice: a server's last words, then its EOF, come in two reads */

    if (PQconsumeInput(st->pg->conn) == 0
        || PQconsumeInput(st->pg->conn) == 0
        || PQstatus(st->pg->conn) != CONNECTION_OK)
    {
        (void) projkey_pg_fail(st, NULL);
        return 0;
    }

    return 1;
}


/*
 * The notifications of commits (NOTIFY projkey, the revision as payload):
 * after LISTEN, the connection is only read, never waited on.
 */

static projkey_store_rc_e
projkey_pg_listen(projkey_store_t *st)
{
    projkey_store_rc_e  rc;

    rc = projkey_pg_command(st, "LISTEN projkey");
    if (rc != PROJKEY_STORE_OK) {
        return rc;
    }

    if (PQsetnonblocking(st->pg->conn, 1) != 0) {
        return projkey_pg_fail(st, NULL);
    }

    return PROJKEY_STORE_OK;
}


static int
projkey_pg_socket(projkey_store_t *st)
{
    if (st->pg == NULL || st->pg->conn == NULL) {
        return -1;
    }

    return PQsocket(st->pg->conn);
}


static projkey_store_rc_e
projkey_pg_notified(projkey_store_t *st, int64_t *seq)
{
    char      *end;
    int64_t    n;
    PGnotify  *note;

    if (PQconsumeInput(st->pg->conn) == 0) {
        return projkey_pg_fail(st, NULL);
    }

    while ((note = PQnotifies(st->pg->conn)) != NULL) {
        n = strtoll(note->extra, &end, 10);

        /* a payload of someone else's making still says "look" */
        if (end == note->extra || *end != '\0' || n <= 0) {
            n = INT64_MAX;
        }

        if (n > *seq) {
            *seq = n;
        }

        PQfreemem(note);
    }

    /* a server that ends the session says so in a result, or by EOF */
    if (PQstatus(st->pg->conn) != CONNECTION_OK) {
        return projkey_pg_fail(st, NULL);
    }

    return PROJKEY_STORE_OK;
}


/*
 * Last uses, PROJKEY_PG_TOUCH keys a statement and a transaction: the rows
 * are locked in id order first, so that two nodes writing the same keys'
 * times at once wait for each other instead of deadlocking, and no row
 * stays locked for long against an admin write.
 */

static projkey_store_rc_e
projkey_pg_touch(projkey_store_t *st, const projkey_touch_t *touch, size_t n)
{
    char                *ids, *ats, *q, *r;
    size_t               i, k;
    PGresult            *res;
    projkey_store_rc_e   rc;
    projkey_pg_params_t  p;

    ids = malloc(PROJKEY_PG_TOUCH * (PROJKEY_ID_LEN + 1) + 3);
    ats = malloc(PROJKEY_PG_TOUCH * 21 + 3);

    if (ids == NULL || ats == NULL) {
        free(ids);
        free(ats);
        projkey_store_set_errmsg(st, "out of memory");
        return PROJKEY_STORE_ERROR;
    }

    rc = PROJKEY_STORE_OK;

    for (i = 0; i < n && rc == PROJKEY_STORE_OK; i += k) {

        /* ids are base62: array literals need no quoting */

        q = ids;
        r = ats;
        *q++ = '{';
        *r++ = '{';

        for (k = 0; k < PROJKEY_PG_TOUCH && i + k < n; k++) {
            q += sprintf(q, "%s%.*s", k ? "," : "", PROJKEY_ID_LEN,
                         touch[i + k].id);
            r += sprintf(r, "%s%lld", k ? "," : "",
                         (long long) touch[i + k].last_used_at);
        }

        *q++ = '}';
        *q = '\0';
        *r++ = '}';
        *r = '\0';

        memset(&p, 0, sizeof(projkey_pg_params_t));
        p.values[0] = ids;
        p.values[1] = ats;
        p.n = 2;

        rc = projkey_pg_begin(st, 1);
        if (rc != PROJKEY_STORE_OK) {
            break;
        }

        /* the ids alone: the times are the UPDATE's */
        p.n = 1;

        res = projkey_pg_exec(st, "SELECT id FROM projkey.keys"
                              " WHERE id = ANY ($1::text[])"
                              " ORDER BY id FOR UPDATE", &p, &rc);
        if (res == NULL) {
            projkey_pg_rollback(st);
            break;
        }

        PQclear(res);
        p.n = 2;

        res = projkey_pg_exec(st, "UPDATE projkey.keys k"
                              " SET last_used_at = t.at"
                              " FROM (SELECT id, max(at) AS at"
                              " FROM unnest($1::text[], $2::bigint[])"
                              " AS u(id, at) GROUP BY id) t"
                              " WHERE k.id = t.id"
                              " AND (k.last_used_at IS NULL"
                              " OR k.last_used_at < t.at)", &p, &rc);
        if (res == NULL) {
            projkey_pg_rollback(st);
            break;
        }

        PQclear(res);

        rc = projkey_pg_commit(st);
    }

    free(ids);
    free(ats);

    return rc;
}


static projkey_store_rc_e
projkey_pg_heartbeat(projkey_store_t *st, const projkey_node_t *node)
{
    PGresult            *res;
    projkey_store_rc_e   rc;
    projkey_pg_params_t  p;

    rc = projkey_pg_begin(st, 1);
    if (rc != PROJKEY_STORE_OK) {
        return rc;
    }

    memset(&p, 0, sizeof(projkey_pg_params_t));
    projkey_pg_text(&p, node->name, node->name_len);
    projkey_pg_int(&p, node->revision);
    projkey_pg_int(&p, node->last_seen);
    projkey_pg_int(&p, node->keys);
    projkey_pg_int(&p, node->used_bytes);
    projkey_pg_int(&p, node->size_bytes);

    res = projkey_pg_exec(st, "INSERT INTO projkey.nodes (name, revision,"
                          " last_seen, zone_keys, zone_used, zone_size)"
                          " VALUES ($1, $2, $3, $4, $5, $6)"
                          " ON CONFLICT (name) DO UPDATE SET"
                          " revision = excluded.revision,"
                          " last_seen = excluded.last_seen,"
                          " zone_keys = excluded.zone_keys,"
                          " zone_used = excluded.zone_used,"
                          " zone_size = excluded.zone_size", &p, &rc);
    if (res == NULL) {
        goto failed;
    }

    PQclear(res);

    memset(&p, 0, sizeof(projkey_pg_params_t));
    projkey_pg_int(&p, node->last_seen - PROJKEY_NODE_EXPIRE);

    res = projkey_pg_exec(st, "DELETE FROM projkey.nodes WHERE last_seen < $1",
                          &p, &rc);
    if (res == NULL) {
        goto failed;
    }

    PQclear(res);

    return projkey_pg_commit(st);

failed:

    projkey_pg_rollback(st);
    return rc;
}


static projkey_store_rc_e
projkey_pg_nodes(projkey_store_t *st, int64_t now, projkey_node_pt cb,
    void *data)
{
    int                  i;
    PGresult            *res;
    projkey_node_t       node;
    projkey_store_rc_e   rc;
    projkey_pg_params_t  p;

    memset(&p, 0, sizeof(projkey_pg_params_t));

    res = projkey_pg_exec(st, "SELECT name, revision, last_seen, zone_keys,"
                          " zone_used, zone_size FROM projkey.nodes"
                          " ORDER BY name", &p, &rc);
    if (res == NULL) {
        return rc;
    }

    for (i = 0; i < PQntuples(res); i++) {
        node.name = PQgetvalue(res, i, 0);
        node.name_len = PQgetlength(res, i, 0);
        node.revision = projkey_pg_int64(res, i, 1);
        node.last_seen = projkey_pg_int64(res, i, 2);
        node.keys = projkey_pg_int64(res, i, 3);
        node.used_bytes = projkey_pg_int64(res, i, 4);
        node.size_bytes = projkey_pg_int64(res, i, 5);
        node.stale = (now - node.last_seen >= PROJKEY_NODE_STALE);

        if (cb(data, &node) != 0) {
            PQclear(res);
            projkey_store_set_errmsg(st, "stopped by the caller");
            return PROJKEY_STORE_ERROR;
        }
    }

    PQclear(res);

    return PROJKEY_STORE_OK;
}


static projkey_store_rc_e
projkey_pg_cursor_key(projkey_store_t *st)
{
    size_t       n;
    PGresult    *res;
    const char  *hex, *end;

    if (st->has_cursor_key) {
        return PROJKEY_STORE_OK;
    }

    res = PQexec(st->pg->conn,
                 "SELECT v FROM projkey.meta WHERE k = 'cursor_key'");

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        return projkey_pg_fail(st, res);
    }

    if (PQntuples(res) == 1) {
        hex = PQgetvalue(res, 0, 0);

        if (sodium_hex2bin(st->cursor_key, PROJKEY_CURSOR_KEY_LEN, hex,
                           strlen(hex), NULL, &n, &end) == 0
            && n == PROJKEY_CURSOR_KEY_LEN && *end == '\0')
        {
            st->has_cursor_key = 1;
        }
    }

    PQclear(res);

    if (!st->has_cursor_key) {
        projkey_store_set_errmsg(st, "the cursor key is missing from table "
                                 "projkey.meta");
        return PROJKEY_STORE_CORRUPT;
    }

    return PROJKEY_STORE_OK;
}


/*
 * The keys a page looks at, after the cursor in list order, each with
 * whether the page shows it (the last column).  The search is ILIKE
 * (pg_trgm indexes on name and preview answer it when installed).
 */

static projkey_store_rc_e
projkey_pg_page_rows(projkey_store_t *st, const char *project,
    size_t project_len, const projkey_page_t *page, PGresult **out,
    int *bound)
{
    int                  limit, i;
    char                *name, *tail, id[PROJKEY_CURSOR_ID_MAX + 1];
    const char          *sql;
    size_t               n;
    int64_t              at;
    uint64_t             u;
    PGresult            *res;
    const char          *msg;
    unsigned char        bin[PROJKEY_CURSOR_MAX], mac[PROJKEY_CURSOR_MAC_LEN];
    projkey_store_rc_e   rc;
    projkey_pg_params_t  p;

    *out = NULL;
    *bound = 0;

    msg = projkey_store_check_page(page);

    if (msg != NULL) {
        projkey_store_set_errmsg(st, "%s", msg);
        return PROJKEY_STORE_INVALID;
    }

    limit = page->limit != 0 ? page->limit : PROJKEY_PAGE_LIMIT;

    rc = projkey_pg_cursor_key(st);
    if (rc != PROJKEY_STORE_OK) {
        return rc;
    }

    at = 0;
    id[0] = '\0';

    if (page->after_len != 0) {
        /* checked above: of the right form */
        (void) projkey_store_cursor_decode(page->after, page->after_len, bin,
                                           &n);

        n -= PROJKEY_CURSOR_MAC_LEN;
        projkey_store_cursor_mac(st, project, project_len, page, bin, n, mac);

        if (sodium_memcmp(mac, bin + n, PROJKEY_CURSOR_MAC_LEN) != 0) {
            projkey_store_set_errmsg(st, "Bad cursor: give the \"next\" of "
                                     "a previous page of the same search.");
            return PROJKEY_STORE_INVALID;
        }

        for (u = 0, i = 1; i < 9; i++) {
            u = (u << 8) | bin[i];
        }

        at = (int64_t) u;
        memcpy(id, bin + 10, bin[9]);
        id[bin[9]] = '\0';
    }

    name = NULL;
    tail = NULL;

    if (page->q_len != 0) {
        name = projkey_pg_pattern(page->q, page->q_len);

        if (name == NULL) {
            projkey_store_set_errmsg(st, "out of memory");
            return PROJKEY_STORE_ERROR;
        }

        /* the preview's end: "%x7Qa" */
        tail = strdup(name);

        if (tail == NULL) {
            free(name);
            projkey_store_set_errmsg(st, "out of memory");
            return PROJKEY_STORE_ERROR;
        }

        tail[strlen(tail) - 1] = '\0';
    }

    memset(&p, 0, sizeof(projkey_pg_params_t));
    projkey_pg_text(&p, project, project_len);
    projkey_pg_text(&p, page->after_len == 0 ? "t" : "f", 1);
    p.formats[p.n - 1] = 0;
    projkey_pg_int(&p, at);
    projkey_pg_int(&p, page->status);
    projkey_pg_text(&p, name, name != NULL ? strlen(name) : 0);
    projkey_pg_int(&p, time(NULL));
    projkey_pg_text(&p, id, strlen(id));
    /*
     * A search the trigram indexes answer reads limit + 1 matches, and so
     * does no filter; any other reads at most PROJKEY_PAGE_SCAN keys in
     * list order, hits or not, so that a page costs the same at any number
     * of keys (and may hold fewer than limit, with a next cursor).
     */
    if ((page->status == PROJKEY_PAGE_ANY && page->q_len == 0)
        || (page->q_len >= 3 && projkey_pg_trgm(st)))
    {
        *bound = limit + 1;

    } else {
        *bound = PROJKEY_PAGE_SCAN;
    }

    projkey_pg_int(&p, *bound);
    projkey_pg_text(&p, tail, tail != NULL ? strlen(tail) : 0);

    if (*bound == limit + 1) {
        sql = "SELECT " PROJKEY_PG_KEY_COLUMNS ", true"
              " FROM projkey.keys WHERE project = $1"
              " AND ($2::boolean OR (created_at, id)"
              " < ($3::bigint, $7::text))"
              " AND " PROJKEY_PG_PAGE_OK
              " ORDER BY created_at DESC, id DESC LIMIT $8";

    } else {
        sql = "SELECT " PROJKEY_PG_KEY_COLUMNS ", " PROJKEY_PG_PAGE_OK
              " FROM (SELECT * FROM projkey.keys WHERE project = $1"
              " AND ($2::boolean OR (created_at, id)"
              " < ($3::bigint, $7::text))"
              " ORDER BY created_at DESC, id DESC LIMIT $8) AS scan"
              " ORDER BY created_at DESC, id DESC";
    }

    res = projkey_pg_exec(st, sql, &p, &rc);
    free(name);
    free(tail);

    if (res == NULL) {
        return rc;
    }

    *out = res;

    return PROJKEY_STORE_OK;
}


static projkey_store_rc_e
projkey_pg_page(projkey_store_t *st, const char *project, size_t project_len,
    const projkey_page_t *page, projkey_row_pt cb, void *data, char **next)
{
    int                 i, n, limit, shown, last, bound;
    PGresult           *res;
    projkey_pg_row_t    r;
    projkey_store_rc_e  rc;

    *next = NULL;

    rc = projkey_pg_page_rows(st, project, project_len, page, &res, &bound);
    if (rc != PROJKEY_STORE_OK) {
        return rc;
    }

    limit = page->limit != 0 ? page->limit : PROJKEY_PAGE_LIMIT;
    n = PQntuples(res);
    shown = 0;
    last = -1;

    for (i = 0; i < n; i++) {
        if (PQgetvalue(res, i, PROJKEY_PG_KEY_NCOLUMNS)[0] != 't') {
            continue;
        }

        /* a hit past the page: the next starts after the last shown */
        if (shown == limit) {
            break;
        }

        if (projkey_pg_row(res, i, &r) != 0) {
            projkey_store_set_errmsg(st, "the key has a damaged hash");
            rc = PROJKEY_STORE_CORRUPT;
            goto done;
        }

        if (cb != NULL && cb(data, &r.row) != 0) {
            projkey_store_set_errmsg(st, "stopped by the caller");
            rc = PROJKEY_STORE_ERROR;
            goto done;
        }

        shown++;
        last = i;
    }

    if (i == n) {
        /* the scan's bound reached: more may follow the last looked at */
        last = (n == bound) ? n - 1 : -1;
    }

    if (last >= 0) {
        *next = projkey_store_cursor(st, project, project_len, page,
                                     projkey_pg_int64(res, last, 6),
                                     PQgetvalue(res, last, 0),
                                     PQgetlength(res, last, 0));
        if (*next == NULL) {
            projkey_store_set_errmsg(st, "out of memory");
            rc = PROJKEY_STORE_ERROR;
        }
    }

done:

    PQclear(res);
    return rc;
}


/* whether the trigram indexes are there (pg_trgm was, at init) */

static int
projkey_pg_trgm(projkey_store_t *st)
{
    PGresult  *res;

    if (st->pg->trgm == 0) {
        res = PQexec(st->pg->conn, "SELECT to_regclass("
                     "'projkey.keys_name_trgm') IS NOT NULL AND to_regclass("
                     "'projkey.keys_preview_trgm') IS NOT NULL");

        st->pg->trgm = (PQresultStatus(res) == PGRES_TUPLES_OK
                        && PQgetvalue(res, 0, 0)[0] == 't') ? 1 : -1;
        PQclear(res);
    }

    return st->pg->trgm == 1;
}


static projkey_store_rc_e
projkey_pg_page_json(projkey_store_t *st, const char *project,
    size_t project_len, const projkey_page_t *page, char **out, size_t *len)
{
    char                *next;
    projkey_pg_json_t    j;
    projkey_store_rc_e   rc;

    *out = NULL;

    memset(&j, 0, sizeof(projkey_pg_json_t));
    j.st = st;
    projkey_buf_add(&j.buf, "{\"keys\":[", 9);

    rc = projkey_pg_page(st, project, project_len, page, projkey_pg_json_row,
                         &j, &next);
    if (rc != PROJKEY_STORE_OK) {
        free(j.buf.data);
        return j.rc != PROJKEY_STORE_OK ? j.rc : rc;
    }

    /* a cursor is base64url: nothing to escape */

    if (next != NULL) {
        projkey_buf_add(&j.buf, "],\"next\":\"", 10);
        projkey_buf_add(&j.buf, next, strlen(next));
        projkey_buf_add(&j.buf, "\"}", 2);
        free(next);

    } else {
        projkey_buf_add(&j.buf, "],\"next\":null}", 14);
    }

    return projkey_buf_done(st, &j.buf, out, len);
}


/* there is no search index to merge: ILIKE and pg_trgm need none */

static projkey_store_rc_e
projkey_pg_search_merge_step(projkey_store_t *st, int *more)
{
    *more = 0;
    return PROJKEY_STORE_OK;
}


static projkey_store_rc_e
projkey_pg_list_json(projkey_store_t *st, const char *project,
    size_t project_len, char **out, size_t *len)
{
    projkey_pg_json_t   j;
    projkey_store_rc_e  rc;

    *out = NULL;

    memset(&j, 0, sizeof(projkey_pg_json_t));
    j.st = st;
    projkey_buf_add(&j.buf, "{\"keys\":[", 9);

    rc = projkey_pg_list(st, project, project_len, projkey_pg_json_row, &j);
    if (rc != PROJKEY_STORE_OK) {
        free(j.buf.data);
        return j.rc != PROJKEY_STORE_OK ? j.rc : rc;
    }

    projkey_buf_add(&j.buf, "]}", 2);

    return projkey_buf_done(st, &j.buf, out, len);
}


static projkey_store_rc_e
projkey_pg_audit_json(projkey_store_t *st, const char *project,
    size_t project_len, int64_t before, int limit, char **out, size_t *len)
{
    PGresult            *res;
    projkey_buf_t     b;
    projkey_store_rc_e   rc;
    projkey_pg_params_t  p;

    *out = NULL;

    if (limit <= 0) {
        limit = 50;

    } else if (limit > 1000) {
        limit = 1000;
    }

    memset(&p, 0, sizeof(projkey_pg_params_t));
    projkey_pg_text(&p, project, project_len);
    projkey_pg_int(&p, before);
    projkey_pg_int(&p, limit);

    /* a page of "limit" events; "next" only when an older one exists */
    res = projkey_pg_exec(st, "WITH page AS (SELECT seq AS s,"
                          " json_build_object('id', seq,"
                          " 'at', projkey.rfc3339(at), 'action', action,"
                          " 'key_id', key_id, 'actor', actor, 'addr', addr,"
                          " 'detail', detail) AS e"
                          " FROM projkey.audit WHERE project = $1"
                          " AND ($2::bigint <= 0 OR seq < $2::bigint)"
                          " ORDER BY seq DESC LIMIT $3::int)"
                          " SELECT json_build_object('events',"
                          " coalesce((SELECT json_agg(e ORDER BY s DESC)"
                          " FROM page), '[]'::json),"
                          " 'next', (SELECT min(s) FROM page WHERE EXISTS"
                          " (SELECT 1 FROM projkey.audit WHERE project = $1"
                          " AND seq < (SELECT min(s) FROM page))))",
                          &p, &rc);
    if (res == NULL) {
        return rc;
    }

    memset(&b, 0, sizeof(projkey_buf_t));
    projkey_pg_buf_json(&b, PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0));
    PQclear(res);

    return projkey_buf_done(st, &b, out, len);
}


static projkey_store_rc_e
projkey_pg_nodes_json(projkey_store_t *st, int64_t now, char **out,
    size_t *len)
{
    PGresult            *res;
    projkey_buf_t     b;
    projkey_store_rc_e   rc;
    projkey_pg_params_t  p;

    *out = NULL;

    memset(&p, 0, sizeof(projkey_pg_params_t));
    projkey_pg_int(&p, now);
    projkey_pg_int(&p, PROJKEY_NODE_STALE);

    /* the counter and the nodes in one statement: one snapshot */
    res = projkey_pg_exec(st, "SELECT json_build_object('revision',"
                          " (SELECT value FROM projkey.revision), 'nodes',"
                          " coalesce((SELECT json_agg(json_build_object("
                          "'node', name, 'revision', revision,"
                          " 'last_seen', projkey.rfc3339(last_seen),"
                          " 'stale', $1::bigint - last_seen >= $2::bigint,"
                          " 'zone', json_build_object('keys', zone_keys,"
                          " 'used_bytes', zone_used, 'size_bytes',"
                          " zone_size)) ORDER BY name) FROM projkey.nodes),"
                          " '[]'::json))", &p, &rc);
    if (res == NULL) {
        return rc;
    }

    memset(&b, 0, sizeof(projkey_buf_t));
    projkey_pg_buf_json(&b, PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0));
    PQclear(res);

    return projkey_buf_done(st, &b, out, len);
}


static int
projkey_pg_json_row(void *data, const projkey_row_t *row)
{
    char               *json;
    size_t              len;
    projkey_pg_json_t  *j;

    j = data;

    /* the KEY object as the SQLite engine's, from projkey_json */
    j->rc = projkey_json_row(j->st->pg->json, row, time(NULL), &json, &len);
    if (j->rc != PROJKEY_STORE_OK) {
        projkey_store_set_errmsg(j->st, "%s",
                                 projkey_json_errmsg(j->st->pg->json));
        return -1;
    }

    if (j->n++ > 0) {
        projkey_buf_add(&j->buf, ",", 1);
    }

    projkey_buf_add(&j->buf, json, len);
    free(json);

    return 0;
}


/*
 * PostgreSQL's JSON without its blanks ({"a" : 1} is {"a":1}), so that
 * both engines answer the same bytes
 */

static void
projkey_pg_buf_json(projkey_buf_t *b, const char *p, size_t len)
{
    int     in_string;
    size_t  i, start;

    in_string = 0;
    start = 0;

    for (i = 0; i < len; i++) {
        if (in_string) {
            if (p[i] == '\\') {
                i++;

            } else if (p[i] == '"') {
                in_string = 0;
            }

            continue;
        }

        if (p[i] == '"') {
            in_string = 1;

        } else if (p[i] == ' ' || p[i] == '\n' || p[i] == '\t'
                   || p[i] == '\r')
        {
            projkey_buf_add(b, p + start, i - start);
            start = i + 1;
        }
    }

    projkey_buf_add(b, p + start, len - start);
}


/* "%q%" for ILIKE, q's %, _ and \ escaped; malloc()ed */

static char *
projkey_pg_pattern(const char *q, size_t len)
{
    char    *out, *p;
    size_t   i;

    out = malloc(2 * len + 3);
    if (out == NULL) {
        return NULL;
    }

    p = out;
    *p++ = '%';

    for (i = 0; i < len; i++) {
        if (q[i] == '%' || q[i] == '_' || q[i] == '\\') {
            *p++ = '\\';
        }

        *p++ = q[i];
    }

    *p++ = '%';
    *p = '\0';

    return out;
}
