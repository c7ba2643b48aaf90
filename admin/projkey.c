
/*
 * projkey: the operator's command line for the key store (see docs/cli.md).
 *
 *     projkey --db PATH [--project P] [--json] COMMAND ...
 *
 * It works on the SQLite file directly; a running nginx applies the change
 * to its zone within the zone's sync interval.
 */


#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "projkey_key.h"
#include "projkey_store.h"
#include "projkey_json.h"


#define PROJKEY_EXIT_OK        0
#define PROJKEY_EXIT_ERROR     1
#define PROJKEY_EXIT_USAGE     2
#define PROJKEY_EXIT_NOTFOUND  3
#define PROJKEY_EXIT_INVALID   4
#define PROJKEY_EXIT_BUSY      5

#define PROJKEY_BUSY_TIMEOUT   5000
#define PROJKEY_BATCH          10000
#define PROJKEY_COUNT_MAX      10000000

#define PROJKEY_UPDATED        "The API key has been updated."


typedef struct {
    const char          *db;
    const char          *project;
    const char          *by;
    const char          *secrets;
    const char          *expires;
    const char          *previous;
    const char          *search;
    const char          *status;
    const char          *after;
    const char          *command;
    const char          *arg[2];
    long                 count;
    int64_t              count_expires;
    long                 limit;
    int                  nargs;
    int                  json;
    projkey_store_t     *st;
    projkey_json_t      *keys_json;     /* the KEY objects, as the API's */
    projkey_actor_t      actor;
} projkey_cli_t;


typedef struct {
    const char          *name;
    int                  nargs;
    int                (*handler)(projkey_cli_t *cli);
} projkey_command_t;


/* a key copied for printing after the store's callback has returned */
typedef struct {
    char                *id;
    char                *name;
    char                *preview;
    char                *status;
    char                *created_by;
    char                *created_at;
    char                *last_used;
    char                *expires;
    char                *previous;
} projkey_line_t;


typedef struct {
    projkey_cli_t       *cli;
    projkey_line_t      *lines;
    size_t               n;
    size_t               size;
    char                *json;
    char                 id[PROJKEY_ID_LEN + 1];
    int                  failed;
} projkey_out_t;


static int projkey_parse_args(projkey_cli_t *cli, int argc, char **argv);
static int projkey_usage(const char *fmt, ...);
static int projkey_fail(projkey_cli_t *cli, int rc);
static int projkey_not_found(projkey_cli_t *cli, const char *id);
static int projkey_create(projkey_cli_t *cli);
static int projkey_create_many(projkey_cli_t *cli, const char *name,
    size_t name_len);
static int projkey_init_db(projkey_cli_t *cli);
static int projkey_is_uri(const char *db);
static int projkey_list(projkey_cli_t *cli);
static int projkey_show(projkey_cli_t *cli);
static int projkey_rename(projkey_cli_t *cli);
static int projkey_disable(projkey_cli_t *cli);
static int projkey_enable(projkey_cli_t *cli);
static int projkey_delete(projkey_cli_t *cli);
static int projkey_nodes(projkey_cli_t *cli);
static int projkey_node_width(void *data, const projkey_node_t *node);
static int projkey_node_line(void *data, const projkey_node_t *node);
static int projkey_roll(projkey_cli_t *cli);
static int projkey_expire(projkey_cli_t *cli);
static int projkey_cli_time(projkey_cli_t *cli, const char *text,
    int64_t *t);
static int projkey_update(projkey_cli_t *cli, const char *name,
    size_t name_len, int status);
static int projkey_change(projkey_cli_t *cli,
    const projkey_change_t *change);
static int projkey_row_json(void *data, const projkey_row_t *row);
static int projkey_row_line(void *data, const projkey_row_t *row);
static char *projkey_time(int64_t t);
static char *projkey_strndup(const char *s, size_t len);
static size_t projkey_width(const char *s);
static void projkey_pad(const char *s, size_t width);
static void projkey_free_lines(projkey_out_t *out);


static const projkey_command_t  projkey_commands[] = {
    { "init", 0, projkey_init_db },
    { "migrate", 0, projkey_init_db },
    { "create", 1, projkey_create },
    { "list", 0, projkey_list },
    { "show", 1, projkey_show },
    { "rename", 2, projkey_rename },
    { "disable", 1, projkey_disable },
    { "enable", 1, projkey_enable },
    { "delete", 1, projkey_delete },
    { "nodes", 0, projkey_nodes },
    { "roll", 1, projkey_roll },
    { "expire", 2, projkey_expire },
    { NULL, 0, NULL }
};


static const char  projkey_usage_text[] =
    "usage: projkey --db PATH|URI [--project P] [--json] COMMAND ...\n"
    "\n"
    "commands:\n"
    "  init                 create the database with its schema\n"
    "  migrate              bring an existing database's schema up to date\n"
    "  create NAME [--by WHO] [--count N] [--secrets FILE] [--expires TIME]\n"
    "  list [--search TEXT] [--status active|disabled|expired] [--limit N]\n"
    "       [--after CURSOR]\n"
    "  show ID\n"
    "  rename ID NAME\n"
    "  disable ID\n"
    "  enable ID\n"
    "  expire ID TIME|never\n"
    "  roll ID [--previous-expires TIME]\n"
    "  delete ID\n"
    "  nodes                the nginx instances following the database\n"
    "\n"
    "PATH is an SQLite file, URI a PostgreSQL database (postgresql://...),\n"
    "whose schema only init and migrate create or change.\n"
    "TIME is RFC 3339 in UTC, e.g. 2026-11-27T05:35:01Z.\n"
    "options may come before or after the command; --db defaults to\n"
    "$PROJKEY_DB, --project to \"default\", --by to $SUDO_USER, $USER or\n"
    "\"cli\".  Exit codes: 0 done, 1 database or I/O error, 2 usage error,\n"
    "3 no such key, 4 invalid input, 5 database busy.\n";


int
main(int argc, char **argv)
{
    int                       rc, flags;
    const projkey_command_t  *cmd;
    projkey_cli_t             cli;
    projkey_store_rc_e        src;

    memset(&cli, 0, sizeof(projkey_cli_t));

    rc = projkey_parse_args(&cli, argc, argv);
    if (rc != PROJKEY_EXIT_OK) {
        return rc == -1 ? PROJKEY_EXIT_OK : rc;
    }

    for (cmd = projkey_commands; cmd->name != NULL; cmd++) {
        if (strcmp(cmd->name, cli.command) == 0) {
            break;
        }
    }

    if (cmd->name == NULL) {
        return projkey_usage("unknown command \"%s\"", cli.command);
    }

    if (cli.nargs != cmd->nargs) {
        return projkey_usage("%s takes %d argument%s, not %d", cmd->name,
                             cmd->nargs, cmd->nargs == 1 ? "" : "s",
                             cli.nargs);
    }

    if (cmd->handler != projkey_create
        && (cli.count != 0 || cli.secrets != NULL))
    {
        return projkey_usage("--count and --secrets are for create only");
    }

    if (cli.count != 0 && cli.json && cli.secrets == NULL) {
        return projkey_usage("--json with --count needs --secrets FILE");
    }

    if (cli.secrets != NULL && cli.count == 0) {
        return projkey_usage("--secrets goes with --count");
    }

    if (cli.expires != NULL && cmd->handler != projkey_create) {
        return projkey_usage("--expires is for create only");
    }

    if (cli.previous != NULL && cmd->handler != projkey_roll) {
        return projkey_usage("--previous-expires is for roll only");
    }

    if (cmd->handler != projkey_list
        && (cli.search != NULL || cli.status != NULL || cli.limit != 0
            || cli.after != NULL))
    {
        return projkey_usage("--search, --status, --limit and --after are "
                             "for list only");
    }

    if (cli.status != NULL && strcmp(cli.status, "active") != 0
        && strcmp(cli.status, "disabled") != 0
        && strcmp(cli.status, "expired") != 0)
    {
        return projkey_usage("--status must be active, disabled or expired");
    }

    if (projkey_init() != 0) {
        fprintf(stderr, "projkey: no random number generator available\n");
        return PROJKEY_EXIT_ERROR;
    }

    cli.actor.user = cli.by;
    cli.actor.user_len = strlen(cli.by);
    cli.actor.addr = NULL;
    cli.actor.addr_len = 0;

    /*
     * Every command creates a missing database; only init and migrate
     * change an older schema, which a running older nginx may still use.
     */

    flags = PROJKEY_STORE_CREATE;

    if (cmd->handler == projkey_init_db) {
        flags |= PROJKEY_STORE_MIGRATE;

        /* migrate makes no PostgreSQL schema (nor a file, below) */
        if (strcmp(cmd->name, "migrate") == 0 && projkey_is_uri(cli.db)) {
            flags &= ~PROJKEY_STORE_CREATE;
        }

        if (strcmp(cmd->name, "migrate") == 0 && !projkey_is_uri(cli.db)
            && access(cli.db, F_OK) == -1)
        {
            fprintf(stderr, "projkey: cannot migrate \"%s\": %s (\"init\" "
                    "creates a database)\n", cli.db, strerror(errno));
            return PROJKEY_EXIT_ERROR;
        }
    }

    if (projkey_json_open(&cli.keys_json) != PROJKEY_STORE_OK) {
        fprintf(stderr, "projkey: %s\n", projkey_json_errmsg(cli.keys_json));
        projkey_json_close(cli.keys_json);
        return PROJKEY_EXIT_ERROR;
    }

    src = projkey_store_open(cli.db, flags, PROJKEY_BUSY_TIMEOUT, &cli.st);

    if (src != PROJKEY_STORE_OK) {
        rc = projkey_fail(&cli, src);

    } else {
        rc = cmd->handler(&cli);
    }

    projkey_store_close(cli.st);
    projkey_json_close(cli.keys_json);

    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "projkey: cannot write the output: %s\n",
                strerror(errno));
        return PROJKEY_EXIT_ERROR;
    }

    return rc;
}


/* a PostgreSQL URI, which may hold a password: never printed */

static int
projkey_is_uri(const char *db)
{
    return strncmp(db, "postgresql://", 13) == 0
           || strncmp(db, "postgres://", 11) == 0;
}


/* returns 0, -1 after --help, or an exit code */

static int
projkey_parse_args(projkey_cli_t *cli, int argc, char **argv)
{
    int          i, options;
    char        *end;
    long         number;
    size_t       n;
    const char  *arg, *value, **slot;

    options = 1;

    for (i = 1; i < argc; i++) {
        arg = argv[i];

        if (!options || arg[0] != '-' || arg[1] == '\0') {
            if (cli->command == NULL) {
                cli->command = arg;

            } else if (cli->nargs < 2) {
                cli->arg[cli->nargs++] = arg;

            } else {
                return projkey_usage("too many arguments");
            }

            continue;
        }

        if (strcmp(arg, "--") == 0) {
            options = 0;
            continue;
        }

        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(projkey_usage_text, stdout);
            return -1;
        }

        if (strcmp(arg, "--json") == 0) {
            cli->json = 1;
            continue;
        }

        /* the options with a value: "--opt VALUE" or "--opt=VALUE" */

        value = strchr(arg, '=');
        n = value != NULL ? (size_t) (value - arg) : strlen(arg);

        if (n == 4 && strncmp(arg, "--db", n) == 0) {
            slot = &cli->db;

        } else if (n == 9 && strncmp(arg, "--project", n) == 0) {
            slot = &cli->project;

        } else if (n == 4 && strncmp(arg, "--by", n) == 0) {
            slot = &cli->by;

        } else if (n == 9 && strncmp(arg, "--secrets", n) == 0) {
            slot = &cli->secrets;

        } else if (n == 9 && strncmp(arg, "--expires", n) == 0) {
            slot = &cli->expires;

        } else if (n == 18 && strncmp(arg, "--previous-expires", n) == 0) {
            slot = &cli->previous;
        } else if (n == 8 && strncmp(arg, "--search", n) == 0) {
            slot = &cli->search;

        } else if (n == 8 && strncmp(arg, "--status", n) == 0) {
            slot = &cli->status;

        } else if (n == 7 && strncmp(arg, "--after", n) == 0) {
            slot = &cli->after;

        } else if (n == 7 && strncmp(arg, "--count", n) == 0) {
            slot = NULL;

        } else if (n == 7 && strncmp(arg, "--limit", n) == 0) {
            slot = NULL;

        } else {
            return projkey_usage("unknown option \"%.*s\"", (int) n, arg);
        }

        if (value != NULL) {
            value++;

        } else if (i + 1 < argc) {
            value = argv[++i];

        } else {
            return projkey_usage("%s needs a value", arg);
        }

        if (slot != NULL) {
            *slot = value;
            continue;
        }

        errno = 0;
        number = strtol(value, &end, 10);

        if (arg[2] == 'l') {
            if (errno != 0 || end == value || *end != '\0' || number < 1
                || number > PROJKEY_PAGE_LIMIT_MAX)
            {
                return projkey_usage("--limit must be a number from 1 to "
                                     "%d", PROJKEY_PAGE_LIMIT_MAX);
            }

            cli->limit = number;
            continue;
        }

        cli->count = number;

        if (errno != 0 || end == value || *end != '\0' || cli->count < 1
            || cli->count > PROJKEY_COUNT_MAX)
        {
            return projkey_usage("--count must be a number from 1 to %d",
                                 PROJKEY_COUNT_MAX);
        }
    }

    if (cli->command == NULL) {
        fputs(projkey_usage_text, stderr);
        return PROJKEY_EXIT_USAGE;
    }

    if (cli->db == NULL) {
        cli->db = getenv("PROJKEY_DB");
    }

    if (cli->db == NULL || cli->db[0] == '\0') {
        return projkey_usage("--db PATH is required");
    }

    if (cli->project == NULL) {
        cli->project = "default";
    }

    if (cli->project[0] == '\0') {
        return projkey_usage("--project must not be empty");
    }

    if (cli->by == NULL) {
        cli->by = getenv("SUDO_USER");

        if (cli->by == NULL || cli->by[0] == '\0') {
            cli->by = getenv("USER");
        }

        if (cli->by == NULL || cli->by[0] == '\0') {
            cli->by = "cli";
        }
    }

    if (cli->by[0] == '\0') {
        return projkey_usage("--by must not be empty");
    }

    return PROJKEY_EXIT_OK;
}


static int
projkey_usage(const char *fmt, ...)
{
    va_list  args;

    fputs("projkey: ", stderr);
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fputs(" (see projkey --help)\n", stderr);

    return PROJKEY_EXIT_USAGE;
}


static int
projkey_fail(projkey_cli_t *cli, int rc)
{
    fprintf(stderr, "projkey: %s\n", projkey_store_errmsg(cli->st));

    switch (rc) {

    case PROJKEY_STORE_NOTFOUND:
        return PROJKEY_EXIT_NOTFOUND;

    case PROJKEY_STORE_INVALID:
        return PROJKEY_EXIT_INVALID;

    case PROJKEY_STORE_BUSY:
        return PROJKEY_EXIT_BUSY;

    default:
        return PROJKEY_EXIT_ERROR;
    }
}


/* a value the contract's rules refuse, msg saying why */

static int
projkey_invalid(projkey_cli_t *cli, const char *msg)
{
    fprintf(stderr, "projkey: %s\n", msg);
    return PROJKEY_EXIT_INVALID;
}


static int
projkey_not_found(projkey_cli_t *cli, const char *id)
{
    fprintf(stderr, "projkey: no API key \"%s\" in project \"%s\"\n", id,
            cli->project);

    return PROJKEY_EXIT_NOTFOUND;
}


static int
projkey_create(projkey_cli_t *cli)
{
    int                 rc;
    char                id[PROJKEY_ID_LEN + 1];
    size_t              name_len;
    int64_t             expires;
    const char         *name, *msg;
    projkey_out_t       out;
    projkey_new_t       key;
    unsigned char       secret[PROJKEY_LEN], hash[PROJKEY_HASH_LEN];
    unsigned char       preview[PROJKEY_PREVIEW_LEN];
    projkey_store_rc_e  src;

    msg = projkey_text_check_name(cli->arg[0], strlen(cli->arg[0]),
                                  &name, &name_len);
    if (msg != NULL) {
        return projkey_invalid(cli, msg);
    }

    expires = 0;

    if (cli->expires != NULL) {
        rc = projkey_cli_time(cli, cli->expires, &expires);
        if (rc != PROJKEY_EXIT_OK) {
            return rc;
        }

        msg = projkey_text_check_expires(expires, time(NULL));
        if (msg != NULL) {
            return projkey_invalid(cli, msg);
        }
    }

    if (cli->count != 0) {
        cli->count_expires = expires;
        return projkey_create_many(cli, name, name_len);
    }

    projkey_generate(secret);
    projkey_hash(secret, PROJKEY_LEN, hash);
    projkey_preview(secret, PROJKEY_LEN, preview);
    projkey_generate_id((unsigned char *) id);
    id[PROJKEY_ID_LEN] = '\0';

    memset(&key, 0, sizeof(projkey_new_t));
    key.id = id;
    key.project = cli->project;
    key.project_len = strlen(cli->project);
    key.name = name;
    key.name_len = name_len;
    key.hash = hash;
    key.preview = preview;
    key.status = PROJKEY_STATUS_ACTIVE;
    key.expires_at = expires;

    memset(&out, 0, sizeof(projkey_out_t));
    out.cli = cli;

    src = projkey_store_create(cli->st, &key, &cli->actor,
                               projkey_row_json, &out);

    if (src != PROJKEY_STORE_OK) {
        projkey_wipe(secret, sizeof(secret));
        free(out.json);
        return projkey_fail(cli, src);
    }

    /* the only place the secret is ever shown */

    if (cli->json) {
        printf("{\"key\":%s,\"secret\":\"%.*s\"}\n", out.json,
               (int) PROJKEY_LEN, secret);

    } else {
        printf("Created API key %s \"%.*s\" (%.*s).\n"
               "Secret: %.*s\n"
               "Copy it now: it will not be shown again.\n",
               id, (int) name_len, name, (int) PROJKEY_PREVIEW_LEN, preview,
               (int) PROJKEY_LEN, secret);
    }

    fflush(stdout);
    projkey_wipe(secret, sizeof(secret));

    rc = PROJKEY_EXIT_OK;
    projkey_store_free(out.json);

    return rc;
}


/*
 * create --count N: keys NAME-1 .. NAME-N, a transaction per PROJKEY_BATCH.
 * With --secrets, a batch's secrets are on disk before it is committed (and
 * cut off again if the commit fails), so that no key exists whose secret
 * was lost; on stdout they are printed after the commit.
 */

static int
projkey_create_many(projkey_cli_t *cli, const char *name, size_t name_len)
{
    int                 fd, rc;
    char               *names, *p, last[PROJKEY_NAME_MAX * 4 + 16];
    long                i, j, n;
    FILE               *f;
    off_t               off;
    size_t              size, len, done;
    const char         *checked, *msg;
    unsigned char      *secrets, *hashes, *previews, *ids, *s;
    projkey_new_t      *keys;
    projkey_store_rc_e  src;

    /* the longest name of the series must pass the name rules too */

    len = snprintf(last, sizeof(last), "%.*s-%ld", (int) name_len, name,
                   cli->count);

    msg = projkey_text_check_name(last, len, &checked, &size);
    if (msg != NULL) {
        return projkey_invalid(cli, msg);
    }

    f = stdout;
    fd = -1;

    if (cli->secrets != NULL) {
        fd = open(cli->secrets, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                  0600);

        if (fd == -1) {
            fprintf(stderr, "projkey: cannot create \"%s\": %s\n",
                    cli->secrets, strerror(errno));
            return PROJKEY_EXIT_ERROR;
        }

        f = fdopen(fd, "w");

        if (f == NULL) {
            fprintf(stderr, "projkey: %s: %s\n", cli->secrets,
                    strerror(errno));
            close(fd);
            return PROJKEY_EXIT_ERROR;
        }
    }

    size = name_len + 24;

    secrets = malloc(PROJKEY_BATCH * (PROJKEY_LEN + 1));
    hashes = malloc(PROJKEY_BATCH * PROJKEY_HASH_LEN);
    previews = malloc(PROJKEY_BATCH * PROJKEY_PREVIEW_LEN);
    ids = malloc(PROJKEY_BATCH * PROJKEY_ID_LEN);
    names = malloc(PROJKEY_BATCH * size);
    keys = malloc(PROJKEY_BATCH * sizeof(projkey_new_t));

    rc = PROJKEY_EXIT_OK;
    done = 0;

    if (secrets == NULL || hashes == NULL || previews == NULL || ids == NULL
        || names == NULL || keys == NULL)
    {
        fprintf(stderr, "projkey: out of memory\n");
        rc = PROJKEY_EXIT_ERROR;
        goto done;
    }

    for (i = 0; i < cli->count; i += n) {
        n = cli->count - i < PROJKEY_BATCH ? cli->count - i : PROJKEY_BATCH;

        for (j = 0; j < n; j++) {
            s = secrets + j * (PROJKEY_LEN + 1);
            projkey_generate(s);
            s[PROJKEY_LEN] = '\n';

            projkey_hash(s, PROJKEY_LEN, hashes + j * PROJKEY_HASH_LEN);
            projkey_preview(s, PROJKEY_LEN,
                            previews + j * PROJKEY_PREVIEW_LEN);
            projkey_generate_id(ids + j * PROJKEY_ID_LEN);

            p = names + j * size;
            len = snprintf(p, size, "%.*s-%ld", (int) name_len, name,
                           i + j + 1);

            keys[j].id = (const char *) ids + j * PROJKEY_ID_LEN;
            keys[j].project = cli->project;
            keys[j].project_len = strlen(cli->project);
            keys[j].name = p;
            keys[j].name_len = len;
            keys[j].hash = hashes + j * PROJKEY_HASH_LEN;
            keys[j].preview = previews + j * PROJKEY_PREVIEW_LEN;
            keys[j].status = PROJKEY_STATUS_ACTIVE;
            keys[j].expires_at = cli->count_expires;
        }

        off = 0;

        if (fd != -1) {
            off = ftello(f);

            if (fwrite(secrets, PROJKEY_LEN + 1, n, f) != (size_t) n
                || fflush(f) != 0 || fsync(fd) != 0)
            {
                fprintf(stderr, "projkey: cannot write \"%s\": %s\n",
                        cli->secrets, strerror(errno));
                rc = PROJKEY_EXIT_ERROR;
                break;
            }
        }

        src = projkey_store_create_batch(cli->st, keys, n, &cli->actor);

        if (src != PROJKEY_STORE_OK) {
            if (fd != -1 && ftruncate(fd, off) == -1) {
                fprintf(stderr, "projkey: cannot cut \"%s\" back to the "
                        "keys created: %s\n", cli->secrets, strerror(errno));
            }

            rc = projkey_fail(cli, src);
            break;
        }

        if (fd == -1
            && fwrite(secrets, PROJKEY_LEN + 1, n, f) != (size_t) n)
        {
            fprintf(stderr, "projkey: cannot write the secrets: %s\n",
                    strerror(errno));
            rc = PROJKEY_EXIT_ERROR;
            done += n;
            break;
        }

        done += n;
    }

done:

    if (secrets != NULL) {
        projkey_wipe(secrets, PROJKEY_BATCH * (PROJKEY_LEN + 1));
    }

    free(secrets);
    free(hashes);
    free(previews);
    free(ids);
    free(names);
    free(keys);

    if (fd != -1 && fclose(f) != 0 && rc == PROJKEY_EXIT_OK) {
        fprintf(stderr, "projkey: cannot write \"%s\": %s\n", cli->secrets,
                strerror(errno));
        rc = PROJKEY_EXIT_ERROR;
    }

    if (rc != PROJKEY_EXIT_OK) {
        if (done != 0) {
            fprintf(stderr, "projkey: %zu of %ld keys were created\n", done,
                    cli->count);
        }

        return rc;
    }

    /* the keys are created: a search index left unmerged is only slower */

    src = projkey_store_search_merge(cli->st);

    if (src != PROJKEY_STORE_OK) {
        fprintf(stderr, "projkey: the keys are created, but the search "
                "index was not merged: %s\n", projkey_store_errmsg(cli->st));
    }

    if (cli->json) {
        printf("{\"created\":%zu}\n", done);

    } else if (fd != -1) {
        printf("Created %zu API keys (%.*s-1 to %.*s-%ld); their secrets "
               "are in %s, one a line.\n", done, (int) name_len, name,
               (int) name_len, name, cli->count, cli->secrets);

    } else {
        fprintf(stderr, "Created %zu API keys (%.*s-1 to %.*s-%ld). Copy "
                "their secrets now: they will not be shown again.\n", done,
                (int) name_len, name, (int) name_len, name, cli->count);
    }

    return PROJKEY_EXIT_OK;
}


/* one page, as GET keys answers it: newest first, 100 keys by default */

static int
projkey_list(projkey_cli_t *cli)
{
    int                 rc;
    char               *next;
    size_t              i, w[7];
    projkey_out_t       out;
    projkey_page_t      page;
    projkey_line_t     *l;
    projkey_store_rc_e  src;
    static const char  *head[7] = { "ID", "NAME", "PREVIEW", "STATUS",
                                    "CREATED BY", "CREATED AT", "LAST USED" };

    memset(&page, 0, sizeof(projkey_page_t));

    if (cli->search != NULL) {
        page.q = cli->search;
        page.q_len = strlen(cli->search);
    }

    if (cli->after != NULL) {
        page.after = cli->after;
        page.after_len = strlen(cli->after);
    }

    if (cli->status != NULL) {
        page.status = strcmp(cli->status, "active") == 0
                      ? PROJKEY_PAGE_ACTIVE
                      : strcmp(cli->status, "disabled") == 0
                        ? PROJKEY_PAGE_DISABLED : PROJKEY_PAGE_EXPIRED;
    }

    page.limit = (int) cli->limit;

    if (cli->json) {
        src = projkey_store_page_json(cli->st, cli->project,
                                      strlen(cli->project), &page, &out.json,
                                      NULL);
        if (src != PROJKEY_STORE_OK) {
            return projkey_fail(cli, src);
        }

        printf("%s\n", out.json);
        projkey_store_free(out.json);

        return PROJKEY_EXIT_OK;
    }

    memset(&out, 0, sizeof(projkey_out_t));
    out.cli = cli;
    next = NULL;

    src = projkey_store_page(cli->st, cli->project, strlen(cli->project),
                             &page, projkey_row_line, &out, &next);

    if (out.failed) {
        fprintf(stderr, "projkey: out of memory\n");
        projkey_free_lines(&out);
        return PROJKEY_EXIT_ERROR;
    }

    if (src != PROJKEY_STORE_OK) {
        projkey_free_lines(&out);
        return projkey_fail(cli, src);
    }

    if (out.n == 0) {
        if (cli->search == NULL && cli->status == NULL && cli->after == NULL)
        {
            printf("No API key has been created on this project.\n");

        } else {
            printf("No API key matches.\n");
        }

        goto next;
    }

    for (i = 0; i < 7; i++) {
        w[i] = strlen(head[i]);
    }

    for (i = 0; i < out.n; i++) {
        l = &out.lines[i];

#define projkey_max(k, s)                                                     \
        if (projkey_width(s) > w[k]) { w[k] = projkey_width(s); }

        projkey_max(0, l->id);
        projkey_max(1, l->name);
        projkey_max(2, l->preview);
        projkey_max(3, l->status);
        projkey_max(4, l->created_by);
        projkey_max(5, l->created_at);
        projkey_max(6, l->last_used);

#undef projkey_max
    }

    for (i = 0; i < 6; i++) {
        projkey_pad(head[i], w[i] + 2);
    }

    printf("%s\n", head[6]);

    for (i = 0; i < out.n; i++) {
        l = &out.lines[i];

        projkey_pad(l->id, w[0] + 2);
        projkey_pad(l->name, w[1] + 2);
        projkey_pad(l->preview, w[2] + 2);
        projkey_pad(l->status, w[3] + 2);
        projkey_pad(l->created_by, w[4] + 2);
        projkey_pad(l->created_at, w[5] + 2);
        printf("%s\n", l->last_used);
    }

next:

    /* the same command with --after CURSOR shows the next page */

    if (next != NULL) {
        printf("Next page: --after %s\n", next);
        projkey_store_free(next);
    }

    rc = PROJKEY_EXIT_OK;
    projkey_free_lines(&out);

    return rc;
}


/* init and migrate: the work is the open's, in main() */

static int
projkey_init_db(projkey_cli_t *cli)
{
    if (cli->json) {
        printf("{\"schema\":%d}\n", projkey_store_schema(cli->st));

    } else {
        printf("Database %s is ready (schema version %d).\n",
               projkey_is_uri(cli->db) ? "(PostgreSQL)" : cli->db,
               projkey_store_schema(cli->st));
    }

    return PROJKEY_EXIT_OK;
}


static int
projkey_show(projkey_cli_t *cli)
{
    projkey_out_t       out;
    projkey_line_t     *l;
    projkey_store_rc_e  src;

    memset(&out, 0, sizeof(projkey_out_t));
    out.cli = cli;

    src = projkey_store_get(cli->st, cli->project, strlen(cli->project),
                            cli->arg[0], strlen(cli->arg[0]),
                            cli->json ? projkey_row_json : projkey_row_line,
                            &out);

    if (out.failed) {
        fprintf(stderr, "projkey: out of memory\n");
        projkey_free_lines(&out);
        projkey_store_free(out.json);
        return PROJKEY_EXIT_ERROR;
    }

    if (src == PROJKEY_STORE_NOTFOUND) {
        return projkey_not_found(cli, cli->arg[0]);
    }

    if (src != PROJKEY_STORE_OK) {
        projkey_free_lines(&out);
        projkey_store_free(out.json);
        return projkey_fail(cli, src);
    }

    if (cli->json) {
        printf("{\"key\":%s}\n", out.json);
        projkey_store_free(out.json);
        return PROJKEY_EXIT_OK;
    }

    l = &out.lines[0];

    printf("ID:          %s\n"
           "Name:        %s\n"
           "Preview:     %s\n"
           "Status:      %s\n"
           "Project:     %s\n"
           "Created by:  %s\n"
           "Created at:  %s\n"
           "Last used:   %s\n"
           "Expires:     %s\n"
           "Previous:    %s\n",
           l->id, l->name, l->preview, l->status, cli->project,
           l->created_by, l->created_at, l->last_used, l->expires,
           l->previous);

    projkey_free_lines(&out);

    return PROJKEY_EXIT_OK;
}


static int
projkey_rename(projkey_cli_t *cli)
{
    size_t              len;
    const char         *name, *msg;

    msg = projkey_text_check_name(cli->arg[1], strlen(cli->arg[1]),
                                  &name, &len);
    if (msg != NULL) {
        return projkey_invalid(cli, msg);
    }

    return projkey_update(cli, name, len, 0);
}


static int
projkey_disable(projkey_cli_t *cli)
{
    return projkey_update(cli, NULL, 0, PROJKEY_STATUS_DISABLED);
}


static int
projkey_enable(projkey_cli_t *cli)
{
    return projkey_update(cli, NULL, 0, PROJKEY_STATUS_ACTIVE);
}


static int
projkey_update(projkey_cli_t *cli, const char *name, size_t name_len,
    int status)
{
    projkey_change_t  change;

    memset(&change, 0, sizeof(projkey_change_t));
    change.name = name;
    change.name_len = name_len;
    change.status = status;

    return projkey_change(cli, &change);
}


/* a change of the key cli->arg[0], said as the admin API's PATCH says it */

static int
projkey_change(projkey_cli_t *cli, const projkey_change_t *change)
{
    projkey_out_t       out;
    projkey_store_rc_e  src;

    memset(&out, 0, sizeof(projkey_out_t));
    out.cli = cli;

    src = projkey_store_change(cli->st, cli->project, strlen(cli->project),
                               cli->arg[0], strlen(cli->arg[0]), change,
                               &cli->actor, NULL,
                               cli->json ? projkey_row_json : NULL, &out);

    if (src == PROJKEY_STORE_NOTFOUND) {
        return projkey_not_found(cli, cli->arg[0]);
    }

    if (src != PROJKEY_STORE_OK) {
        projkey_store_free(out.json);
        return projkey_fail(cli, src);
    }

    if (cli->json) {
        printf("{\"key\":%s,\"message\":\"" PROJKEY_UPDATED "\"}\n",
               out.json);
        projkey_store_free(out.json);

    } else {
        printf(PROJKEY_UPDATED "\n");
    }

    return PROJKEY_EXIT_OK;
}


/* expire ID TIME|never */

static int
projkey_expire(projkey_cli_t *cli)
{
    int                 rc;
    projkey_change_t    change;
    const char         *msg;

    memset(&change, 0, sizeof(projkey_change_t));
    change.set_expires = 1;

    if (strcmp(cli->arg[1], "never") != 0) {
        rc = projkey_cli_time(cli, cli->arg[1], &change.expires_at);
        if (rc != PROJKEY_EXIT_OK) {
            return rc;
        }

        msg = projkey_text_check_expires(change.expires_at, time(NULL));
        if (msg != NULL) {
            return projkey_invalid(cli, msg);
        }
    }

    return projkey_change(cli, &change);
}


/* roll ID [--previous-expires TIME]: a new secret, shown once */

static int
projkey_roll(projkey_cli_t *cli)
{
    int                 rc;
    int64_t             until;
    const char         *msg;
    projkey_out_t       out, lines;
    projkey_line_t     *l;
    unsigned char       secret[PROJKEY_LEN], hash[PROJKEY_HASH_LEN];
    unsigned char       preview[PROJKEY_PREVIEW_LEN];
    projkey_store_rc_e  src;

    until = 0;

    if (cli->previous != NULL) {
        rc = projkey_cli_time(cli, cli->previous, &until);
        if (rc != PROJKEY_EXIT_OK) {
            return rc;
        }

        msg = projkey_text_check_previous(&until, time(NULL));
        if (msg != NULL) {
            return projkey_invalid(cli, msg);
        }
    }

    projkey_generate(secret);
    projkey_hash(secret, PROJKEY_LEN, hash);
    projkey_preview(secret, PROJKEY_LEN, preview);

    memset(&out, 0, sizeof(projkey_out_t));
    out.cli = cli;
    memset(&lines, 0, sizeof(projkey_out_t));
    lines.cli = cli;

    src = projkey_store_roll(cli->st, cli->project, strlen(cli->project),
                             cli->arg[0], strlen(cli->arg[0]), hash, preview,
                             until, &cli->actor, NULL,
                             cli->json ? projkey_row_json : projkey_row_line,
                             cli->json ? &out : &lines);

    if (src != PROJKEY_STORE_OK || out.failed || lines.failed) {
        projkey_wipe(secret, sizeof(secret));
        projkey_store_free(out.json);
        projkey_free_lines(&lines);

        if (src == PROJKEY_STORE_NOTFOUND) {
            return projkey_not_found(cli, cli->arg[0]);
        }

        if (src == PROJKEY_STORE_OK) {
            fprintf(stderr, "projkey: out of memory (the key was rolled)\n");
            return PROJKEY_EXIT_ERROR;
        }

        return projkey_fail(cli, src);
    }

    /* the only place the new secret is ever shown */

    if (cli->json) {
        printf("{\"key\":%s,\"secret\":\"%.*s\"}\n", out.json,
               (int) PROJKEY_LEN, secret);
        projkey_store_free(out.json);

    } else {
        l = &lines.lines[0];
        printf("Rolled API key %s \"%s\" (%s).\n"
               "Secret: %.*s\n"
               "Copy it now: it will not be shown again.\n"
               "Previous secret: %s.\n",
               l->id, l->name, l->preview, (int) PROJKEY_LEN, secret,
               l->previous);
        projkey_free_lines(&lines);
    }

    fflush(stdout);
    projkey_wipe(secret, sizeof(secret));

    return PROJKEY_EXIT_OK;
}


/* a TIME argument; a bad one is invalid input */

static int
projkey_cli_time(projkey_cli_t *cli, const char *text, int64_t *t)
{
    const char  *msg;

    msg = projkey_text_parse_time(text, strlen(text), t);

    if (msg != NULL) {
        fprintf(stderr, "projkey: \"%s\": %s\n", text, msg);
        return PROJKEY_EXIT_INVALID;
    }

    return PROJKEY_EXIT_OK;
}


static int
projkey_delete(projkey_cli_t *cli)
{
    projkey_out_t       out;
    projkey_store_rc_e  src;

    memset(&out, 0, sizeof(projkey_out_t));
    out.cli = cli;

    src = projkey_store_delete(cli->st, cli->project, strlen(cli->project),
                               cli->arg[0], strlen(cli->arg[0]), &cli->actor,
                               projkey_row_json, &out);

    if (src == PROJKEY_STORE_NOTFOUND) {
        return projkey_not_found(cli, cli->arg[0]);
    }

    projkey_store_free(out.json);

    if (src != PROJKEY_STORE_OK) {
        return projkey_fail(cli, src);
    }

    /* the id from the store: base62, nothing to escape in JSON */

    if (cli->json) {
        printf("{\"deleted\":\"%s\"}\n", out.id);

    } else {
        printf("Deleted API key %s.\n", out.id);
    }

    return PROJKEY_EXIT_OK;
}


static int
projkey_row_json(void *data, const projkey_row_t *row)
{
    projkey_out_t  *out;

    out = data;

    snprintf(out->id, sizeof(out->id), "%s", row->id);

    /* in memory: only out of memory fails, as the callers say */

    if (projkey_json_row(out->cli->keys_json, row, time(NULL), &out->json,
                         NULL)
        != PROJKEY_STORE_OK)
    {
        out->failed = 1;
        return 1;
    }

    return 0;
}


static int
projkey_row_line(void *data, const projkey_row_t *row)
{
    char            *prev;
    size_t           size, n;
    projkey_out_t   *out;
    projkey_line_t  *l, *lines;

    out = data;

    if (out->n == out->size) {
        size = out->size ? out->size * 2 : 64;
        lines = realloc(out->lines, size * sizeof(projkey_line_t));

        if (lines == NULL) {
            out->failed = 1;
            return 1;
        }

        out->lines = lines;
        out->size = size;
    }

    l = &out->lines[out->n++];
    memset(l, 0, sizeof(projkey_line_t));

    l->id = projkey_strndup(row->id, strlen(row->id));
    l->name = projkey_strndup(row->name, row->name_len);
    l->preview = projkey_strndup(row->preview, strlen(row->preview));
    if (row->expires_at > 0 && row->expires_at <= (int64_t) time(NULL)) {
        l->status = projkey_strndup("expired", 7);

    } else {
        l->status = projkey_strndup(row->status == PROJKEY_STATUS_ACTIVE
                                    ? "active" : "disabled",
                                    row->status == PROJKEY_STATUS_ACTIVE
                                    ? 6 : 8);
    }
    l->created_by = projkey_strndup(row->created_by, strlen(row->created_by));
    l->created_at = projkey_time(row->created_at);
    l->last_used = row->last_used_at > 0 ? projkey_time(row->last_used_at)
                                         : projkey_strndup("never", 5);
    l->expires = row->expires_at > 0 ? projkey_time(row->expires_at)
                                     : projkey_strndup("never", 5);

    if (row->prev_hash != NULL && row->prev_preview != NULL) {
        prev = projkey_time(row->prev_expires_at);
        l->previous = NULL;

        if (prev != NULL) {
            n = strlen(row->prev_preview) + strlen(prev) + 16;
            l->previous = malloc(n);

            if (l->previous != NULL) {
                snprintf(l->previous, n, "%s until %s", row->prev_preview,
                         prev);
            }

            free(prev);
        }

    } else {
        l->previous = projkey_strndup("none", 4);
    }

    if (l->id == NULL || l->name == NULL || l->preview == NULL
        || l->status == NULL || l->created_by == NULL || l->created_at == NULL
        || l->last_used == NULL || l->expires == NULL || l->previous == NULL)
    {
        out->failed = 1;
        return 1;
    }

    return 0;
}


static void
projkey_free_lines(projkey_out_t *out)
{
    size_t           i;
    projkey_line_t  *l;

    for (i = 0; i < out->n; i++) {
        l = &out->lines[i];

        free(l->id);
        free(l->name);
        free(l->preview);
        free(l->status);
        free(l->created_by);
        free(l->created_at);
        free(l->last_used);
        free(l->expires);
        free(l->previous);
    }

    free(out->lines);

    out->lines = NULL;
    out->n = 0;
    out->size = 0;
}


/* the column widths of the nodes table: name, revision, keys, used, size */
typedef struct {
    size_t               w[5];
    size_t               n;
} projkey_node_cols_t;


static int
projkey_nodes(projkey_cli_t *cli)
{
    char                 *json;
    int64_t               now, seq;
    projkey_store_rc_e    src;
    projkey_node_cols_t   cols;

    now = (int64_t) time(NULL);

    if (cli->json) {
        src = projkey_store_nodes_json(cli->st, now, &json, NULL);
        if (src != PROJKEY_STORE_OK) {
            return projkey_fail(cli, src);
        }

        printf("%s\n", json);
        projkey_store_free(json);

        return PROJKEY_EXIT_OK;
    }

    src = projkey_store_revision(cli->st, &seq);
    if (src != PROJKEY_STORE_OK) {
        return projkey_fail(cli, src);
    }

    cols.w[0] = strlen("NODE");
    cols.w[1] = strlen("REVISION");
    cols.w[2] = strlen("KEYS");
    cols.w[3] = strlen("USED");
    cols.w[4] = strlen("SIZE");
    cols.n = 0;

    src = projkey_store_nodes(cli->st, now, projkey_node_width, &cols);
    if (src != PROJKEY_STORE_OK) {
        return projkey_fail(cli, src);
    }

    printf("Database revision %lld.\n", (long long) seq);

    if (cols.n == 0) {
        printf("No nginx node has recorded a heartbeat in this database.\n");
        return PROJKEY_EXIT_OK;
    }

    printf("%-*s  %-*s  %-20s  %-*s  %-*s  %-*s  STATE\n",
           (int) cols.w[0], "NODE", (int) cols.w[1], "REVISION", "LAST SEEN",
           (int) cols.w[2], "KEYS", (int) cols.w[3], "USED",
           (int) cols.w[4], "SIZE");

    src = projkey_store_nodes(cli->st, now, projkey_node_line, &cols);
    if (src != PROJKEY_STORE_OK) {
        return projkey_fail(cli, src);
    }

    return PROJKEY_EXIT_OK;
}


static int
projkey_node_width(void *data, const projkey_node_t *node)
{
    projkey_node_cols_t *cols = data;

    char     buf[32];
    size_t   i, len;
    int64_t  v[4];

    if (node->name_len > cols->w[0]) {
        cols->w[0] = node->name_len;
    }

    v[0] = node->revision;
    v[1] = node->keys;
    v[2] = node->used_bytes;
    v[3] = node->size_bytes;

    for (i = 0; i < 4; i++) {
        len = snprintf(buf, sizeof(buf), "%lld", (long long) v[i]);

        if (len > cols->w[i + 1]) {
            cols->w[i + 1] = len;
        }
    }

    cols->n++;

    return 0;
}


static int
projkey_node_line(void *data, const projkey_node_t *node)
{
    projkey_node_cols_t *cols = data;

    char  *seen;

    seen = projkey_time(node->last_seen);
    if (seen == NULL) {
        return 1;
    }

    printf("%-*.*s  %-*lld  %-20s  %-*lld  %-*lld  %-*lld  %s\n",
           (int) cols->w[0], (int) node->name_len, node->name,
           (int) cols->w[1], (long long) node->revision, seen,
           (int) cols->w[2], (long long) node->keys,
           (int) cols->w[3], (long long) node->used_bytes,
           (int) cols->w[4], (long long) node->size_bytes,
           node->stale ? "stale" : "live");

    free(seen);

    return 0;
}


/* RFC 3339 UTC, as in the JSON */

static char *
projkey_time(int64_t t)
{
    char       buf[32];
    time_t     tt;
    struct tm  tm;

    tt = (time_t) t;

    if (gmtime_r(&tt, &tm) == NULL
        || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    {
        snprintf(buf, sizeof(buf), "%lld", (long long) t);
    }

    return projkey_strndup(buf, strlen(buf));
}


static char *
projkey_strndup(const char *s, size_t len)
{
    char  *p;

    p = malloc(len + 1);

    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }

    return p;
}


/* characters, not bytes, so that names in any script line up */

static size_t
projkey_width(const char *s)
{
    size_t  n;

    for (n = 0; *s != '\0'; s++) {
        if ((*s & 0xc0) != 0x80) {
            n++;
        }
    }

    return n;
}


static void
projkey_pad(const char *s, size_t width)
{
    size_t  n;

    fputs(s, stdout);

    for (n = projkey_width(s); n < width; n++) {
        putchar(' ');
    }
}
