
/*
 * projkey: snapshot=PATH of a PostgreSQL zone.  Worker 0 writes what the
 * zone holds to a local file (projkey_snapshot.c), from its flush task in
 * the thread pool, when the revision moved since the last one: the zone is
 * copied under its lock, the file written without it.  A start that cannot
 * reach the database loads the zone from the file instead of refusing to
 * start, and catches up once the database answers.
 */


#include "ngx_http_projkey.h"
#include "projkey_snapshot.h"


typedef struct {
    projkey_snapshot_node_t   *nodes;
    size_t                     n;
    size_t                     size;
    u_char                    *text;           /* projects and names */
    size_t                     text_len;
    size_t                     text_size;
} ngx_http_projkey_snap_t;


static ngx_int_t ngx_http_projkey_snapshot_copy_locked(
    ngx_http_projkey_zone_t *zone, ngx_http_projkey_snap_t *snap);
static ngx_int_t ngx_http_projkey_snapshot_add(ngx_http_projkey_snap_t *snap,
    ngx_http_projkey_node_t *node);


void
ngx_http_projkey_snapshot_take(ngx_http_projkey_zone_t *zone, ngx_log_t *log)
{
    char                      err[512];
    u_char                    instance[33];
    size_t                    i;
    time_t                    contact;
    int64_t                   seq;
    ngx_int_t                 rc;
    ngx_http_projkey_snap_t   snap;

    if (zone->snapshot.len == 0) {
        return;
    }

    ngx_memzero(&snap, sizeof(ngx_http_projkey_snap_t));

    ngx_shmtx_lock(&zone->shpool->mutex);

    seq = zone->sh->seq;
    contact = zone->sh->store_contact;
    ngx_memcpy(instance, zone->sh->instance, sizeof(instance));

    /* keys left out for want of room: not a state to keep */

    if (zone->sh->missing || instance[0] == '\0') {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return;
    }

    if (seq == zone->snapshot_seq
        && ngx_strcmp(instance, zone->snapshot_instance) == 0)
    {
        ngx_shmtx_unlock(&zone->shpool->mutex);

        /* the same state, seen later: a start counts max_stale= from then */

        if (contact > zone->snapshot_contact) {
            if (projkey_snapshot_touch((char *) zone->snapshot.data,
                                       (int64_t) contact, err, sizeof(err))
                == 0)
            {
                zone->snapshot_contact = contact;
            }
        }

        return;
    }

    rc = ngx_http_projkey_snapshot_copy_locked(zone, &snap);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, log, 0, "projkey_zone \"%V\": no "
                      "memory for a snapshot", &zone->name);
        goto done;
    }

    /* the copy's strings moved as it grew: pointed at once it is whole */

    for (i = 0; i < snap.n; i++) {
        snap.nodes[i].project = (char *) snap.text
                                + (uintptr_t) snap.nodes[i].project;
        snap.nodes[i].name = (char *) snap.text
                             + (uintptr_t) snap.nodes[i].name;
    }

    if (projkey_snapshot_write((char *) zone->snapshot.data,
                               (char *) instance, seq, (int64_t) contact,
                               snap.nodes, snap.n, err, sizeof(err))
        != 0)
    {
        ngx_log_error(NGX_LOG_WARN, log, 0, "projkey_zone \"%V\": the "
                      "snapshot is not written: %s; will retry",
                      &zone->name, err);
        goto done;
    }

    zone->snapshot_seq = seq;
    zone->snapshot_contact = contact;
    ngx_memcpy(zone->snapshot_instance, instance, sizeof(instance));

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                   "projkey snapshot: %uz nodes at revision %L", snap.n, seq);

done:

    free(snap.nodes);
    free(snap.text);
}


static ngx_int_t
ngx_http_projkey_snapshot_copy_locked(ngx_http_projkey_zone_t *zone,
    ngx_http_projkey_snap_t *snap)
{
    ngx_uint_t                 i;
    ngx_http_projkey_node_t   *node;
    ngx_http_projkey_shctx_t  *sh;

    sh = zone->sh;

    for (i = 0; i <= sh->mask; i++) {
        for (node = sh->buckets[i]; node; node = node->next) {

            if ((node->status & NGX_HTTP_PROJKEY_STATUS_MASK)
                == NGX_HTTP_PROJKEY_DEAD)
            {
                continue;
            }

            if (ngx_http_projkey_snapshot_add(snap, node) != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


/* malloc(), not the pool: a thread, and up to millions of nodes */

static ngx_int_t
ngx_http_projkey_snapshot_add(ngx_http_projkey_snap_t *snap,
    ngx_http_projkey_node_t *node)
{
    void                     *p;
    size_t                    len, size;
    projkey_snapshot_node_t  *nd;

    if (snap->n == snap->size) {
        size = snap->size ? snap->size * 2 : 1024;

        p = realloc(snap->nodes, size * sizeof(projkey_snapshot_node_t));
        if (p == NULL) {
            return NGX_ERROR;
        }

        snap->nodes = p;
        snap->size = size;
    }

    len = node->project_len + node->name_len;

    if (snap->text_len + len > snap->text_size) {
        size = ngx_max(snap->text_size * 2, snap->text_len + len + 4096);

        p = realloc(snap->text, size);
        if (p == NULL) {
            return NGX_ERROR;
        }

        snap->text = p;
        snap->text_size = size;
    }

    nd = &snap->nodes[snap->n++];

    ngx_memcpy(nd->hash, node->hash, PROJKEY_SNAPSHOT_HASH_LEN);
    ngx_memcpy(nd->id, node->data, PROJKEY_ID_LEN);

    /* offsets into text for now */
    nd->project = (char *) (uintptr_t) snap->text_len;
    nd->project_len = node->project_len;
    nd->name = (char *) (uintptr_t) (snap->text_len + node->project_len);
    nd->name_len = node->name_len;

    ngx_memcpy(snap->text + snap->text_len, node->data + PROJKEY_ID_LEN, len);
    snap->text_len += len;

    nd->status = node->status & NGX_HTTP_PROJKEY_STATUS_MASK;
    nd->previous = (node->status & NGX_HTTP_PROJKEY_PREVIOUS) != 0;
    nd->expires_at = ngx_http_projkey_node_expires(node);
    nd->last_used_at = node->last_used;

    return NGX_OK;
}


/*
 * The master, at start, the database out of reach: NGX_OK loaded,
 * NGX_DECLINED no snapshot (or none configured), NGX_ERROR.
 */

ngx_int_t
ngx_http_projkey_snapshot_load(ngx_http_projkey_zone_t *zone,
    ngx_http_projkey_load_t *load, ngx_log_t *log)
{
    int      rc;
    char     err[512];
    u_char   instance[33];
    int64_t  seq, contact;

    if (zone->snapshot.len == 0) {
        return NGX_DECLINED;
    }

    rc = projkey_snapshot_read((char *) zone->snapshot.data, (char *) instance,
                               &seq, &contact, ngx_http_projkey_zone_load_row,
                               load, err, sizeof(err));

    if (rc == 1) {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "projkey_zone \"%V\": no snapshot \"%V\" to start "
                      "from either", &zone->name, &zone->snapshot);
        return NGX_DECLINED;
    }

    if (rc != 0) {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "projkey_zone \"%V\": the snapshot cannot be read: %s",
                      &zone->name, err);
        return NGX_ERROR;
    }

    zone->sh->seq = seq;
    ngx_memcpy(zone->sh->instance, instance, sizeof(instance));

    /* max_stale= counts from the last contact the file records */
    zone->sh->store_contact = (time_t) contact;

    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "projkey_zone \"%V\": started from snapshot \"%V\" of "
                  "revision %L, in touch with the database %T s before: "
                  "database \"%V\" is out of reach, followed once it "
                  "answers", &zone->name, &zone->snapshot, seq,
                  (time_t) (ngx_time() - contact), &zone->db);

    return NGX_OK;
}

