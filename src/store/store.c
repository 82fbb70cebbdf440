/*
 * store.c - SQLite persistence for accounts, bindings and alarm history.
 *
 * Why it looks like this:
 * - One connection, owned by the signalling thread, with every statement
 *   prepared once at open. The registrar writes bindings in batches
 *   (store_begin ... store_commit), so a burst of REGISTERs costs one fsync
 *   rather than one per binding.
 * - WAL journal with synchronous=NORMAL: readers (the CLI's `user list`)
 *   never block the daemon's writer, and a commit is one append to the WAL.
 *   NORMAL may lose the last batch on power loss (never corrupts); the
 *   bindings are refreshed by the phones within one registration interval,
 *   so we trade that window for not fsyncing on the signalling thread.
 * - Batches use BEGIN IMMEDIATE so the write lock is taken up front: a
 *   concurrent `pinhole user add` waits on busy_timeout instead of the two
 *   deadlocking on a read-to-write lock upgrade.
 * - The schema carries PRAGMA user_version. Version 0 means a fresh file:
 *   the schema is created and stamped. Older files are migrated one
 *   version at a time, keeping their data. A file from a newer pinhole is
 *   refused rather than guessed at.
 * - A binding row is keyed by a uid the registrar gives it, not by
 *   (aor, contact): two phones of one user behind two NATs may send the
 *   same private Contact, and a binding's Contact may change under it
 *   (matched by +sip.instance). The registrar owns binding identity; the
 *   store only remembers rows.
 * - Alarm history is capped at STORE_ALARMS_KEEP rows (oldest pruned on
 *   insert, cheap since the id is the rowid): nothing grows without bound.
 *   Bindings are pruned by the registrar, which knows their expiry.
 * - Strings crossing the boundary are bounded both ways: we bind at most
 *   sizeof(field) - 1 bytes of a struct field (even if the caller forgot
 *   the NUL), and copy column text back with truncation, so a row written
 *   by another tool can never overflow a fixed array.
 *
 * Errors: EIO for any SQLite failure (the SQLite message is logged),
 * ENOENT for a missing row, ENOMEM, ENOTSUP for a newer schema.
 */
#include "store/store.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log/log.h"

#define STORE_SCHEMA_VERSION 3
#define STORE_BUSY_TIMEOUT_MS 2000
#define STORE_ALARMS_KEEP 10000

enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_USER_PUT,
	ST_USER_DEL,
	ST_USER_GET,
	ST_USER_LIST,
	ST_BINDING_PUT,
	ST_BINDING_DEL,
	ST_BINDING_LIST,
	ST_ALARM_ADD,
	ST_ALARM_PRUNE,
	ST_ALARM_LIST,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_USER_PUT] =
		"INSERT INTO users (name, realm, ha1_md5, ha1_sha256) "
		"VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET "
		"realm = excluded.realm, ha1_md5 = excluded.ha1_md5, "
		"ha1_sha256 = excluded.ha1_sha256",
	[ST_USER_DEL] = "DELETE FROM users WHERE name = ?1",
	[ST_USER_GET] =
		"SELECT name, realm, ha1_md5, ha1_sha256 FROM users "
		"WHERE name = ?1",
	[ST_USER_LIST] =
		"SELECT name, realm, ha1_md5, ha1_sha256 FROM users "
		"ORDER BY name",
	[ST_BINDING_PUT] =
		"INSERT INTO bindings (aor, contact, instance, call_id, cseq, "
		"expires_at, q1000, path, user_agent, transport, remote, local, "
		"verdict, node, uid) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
		"?10, ?11, ?12, ?13, ?14, ?15) ON CONFLICT (uid) DO UPDATE "
		"SET aor = excluded.aor, contact = excluded.contact, "
		"instance = excluded.instance, call_id = excluded.call_id, "
		"cseq = excluded.cseq, expires_at = excluded.expires_at, "
		"q1000 = excluded.q1000, path = excluded.path, "
		"user_agent = excluded.user_agent, "
		"transport = excluded.transport, remote = excluded.remote, "
		"local = excluded.local, verdict = excluded.verdict, "
		"node = excluded.node",
	[ST_BINDING_DEL] = "DELETE FROM bindings WHERE uid = ?1",
	[ST_BINDING_LIST] =
		"SELECT aor, contact, instance, call_id, cseq, expires_at, "
		"q1000, path, user_agent, transport, remote, local, verdict, "
		"node, uid FROM bindings ORDER BY aor, contact, uid",
	[ST_ALARM_ADD] =
		"INSERT INTO alarms (time, severity, code, subject, text) "
		"VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_ALARM_PRUNE] = "DELETE FROM alarms WHERE id <= ?1",
	[ST_ALARM_LIST] =
		"SELECT id, time, severity, code, subject, text FROM alarms "
		"ORDER BY id DESC LIMIT ?1",
};

/* Version 2: per-user and per-group telephony settings. */
#define FEATURES_SQL \
	"CREATE TABLE IF NOT EXISTS features (" \
	" subject TEXT NOT NULL," \
	" key TEXT NOT NULL," \
	" value TEXT NOT NULL DEFAULT ''," \
	" PRIMARY KEY (subject, key));"

/* Version 3: bindings keyed by uid (was PRIMARY KEY (aor, contact)). */
#define BINDINGS_SQL(name) \
	"CREATE TABLE IF NOT EXISTS " name " (" \
	" uid INTEGER PRIMARY KEY," \
	" aor TEXT NOT NULL," \
	" contact TEXT NOT NULL," \
	" instance TEXT NOT NULL DEFAULT ''," \
	" call_id TEXT NOT NULL DEFAULT ''," \
	" cseq INTEGER NOT NULL DEFAULT 0," \
	" expires_at INTEGER NOT NULL DEFAULT 0," \
	" q1000 INTEGER NOT NULL DEFAULT 1000," \
	" path TEXT NOT NULL DEFAULT ''," \
	" user_agent TEXT NOT NULL DEFAULT ''," \
	" transport TEXT NOT NULL DEFAULT ''," \
	" remote TEXT NOT NULL DEFAULT ''," \
	" local TEXT NOT NULL DEFAULT ''," \
	" verdict TEXT NOT NULL DEFAULT ''," \
	" node TEXT NOT NULL DEFAULT '');"

#define BINDING_COLUMNS \
	"aor, contact, instance, call_id, cseq, expires_at, q1000, path, " \
	"user_agent, transport, remote, local, verdict, node"

/* 2 -> 3: copy the rows into the new table (each gets a fresh uid). */
static const char migrate_v3_sql[] =
	BINDINGS_SQL("bindings_v3")
	"INSERT INTO bindings_v3 (" BINDING_COLUMNS ") "
	"SELECT " BINDING_COLUMNS " FROM bindings;"
	"DROP TABLE bindings;"
	"ALTER TABLE bindings_v3 RENAME TO bindings;";

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS users ("
	" name TEXT PRIMARY KEY NOT NULL,"
	" realm TEXT NOT NULL DEFAULT '',"
	" ha1_md5 TEXT NOT NULL DEFAULT '',"
	" ha1_sha256 TEXT NOT NULL DEFAULT '');"
	BINDINGS_SQL("bindings")
	"CREATE TABLE IF NOT EXISTS alarms ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" time INTEGER NOT NULL,"
	" severity TEXT NOT NULL DEFAULT '',"
	" code TEXT NOT NULL DEFAULT '',"
	" subject TEXT NOT NULL DEFAULT '',"
	" text TEXT NOT NULL DEFAULT '');"
	FEATURES_SQL;

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[ST_COUNT];
	bool in_batch;
	char path[512];
};

static int db_fail(struct store *store, const char *what)
{
	log_err("store", "%s failed: %s path=%s", what,
		sqlite3_errmsg(store->db), store->path);
	return EIO;
}

/* Bind a fixed-size struct field: at most cap - 1 bytes, stopping at NUL. */
static int bind_field(sqlite3_stmt *st, int idx, const char *s, size_t cap)
{
	return sqlite3_bind_text(st, idx, s, (int)strnlen(s, cap - 1),
				 SQLITE_STATIC);
}
#define BIND_FIELD(st, idx, field) bind_field(st, idx, field, sizeof(field))

/* Copy a text column into a fixed array, truncating. */
static void column_field(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
	const unsigned char *s = sqlite3_column_text(st, col);
	size_t n = s ? (size_t)sqlite3_column_bytes(st, col) : 0;

	if (n > cap - 1)
		n = cap - 1;
	if (n)
		memcpy(dst, s, n);
	dst[n] = '\0';
}
#define COLUMN_FIELD(st, col, field) column_field(st, col, field, sizeof(field))

/* mkdir -p for every parent directory of path. */
static int make_parents(const char *path)
{
	char dir[512];
	size_t len = strlen(path);

	if (len >= sizeof(dir))
		return ENAMETOOLONG;
	memcpy(dir, path, len + 1);
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
			int err = errno;
			log_err("store", "cannot create directory %s: %s", dir,
				strerror(err));
			return err;
		}
		*p = '/';
	}
	return 0;
}

static int exec_sql(struct store *store, const char *sql, const char *what)
{
	char *msg = NULL;

	if (sqlite3_exec(store->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_err("store", "%s failed: %s path=%s", what,
			msg ? msg : sqlite3_errmsg(store->db), store->path);
		sqlite3_free(msg);
		return EIO;
	}
	return 0;
}

static int user_version(struct store *store, int *version)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(store->db, "PRAGMA user_version", -1, &st,
			       NULL) != SQLITE_OK)
		return db_fail(store, "user_version");
	rc = sqlite3_step(st);
	*version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : db_fail(store, "user_version");
}

/* Bring the file to STORE_SCHEMA_VERSION in one transaction. */
static int migrate(struct store *store)
{
	char sql[64];
	int version, err;

	err = exec_sql(store, "BEGIN IMMEDIATE", "schema begin");
	if (err)
		return err;
	/* Another process (the CLI, a second start) may have migrated while
	 * we waited for the write lock: look again under it. */
	err = user_version(store, &version);
	if (!err && version == STORE_SCHEMA_VERSION)
		return exec_sql(store, "COMMIT", "schema commit");
	if (!err && version > STORE_SCHEMA_VERSION)
		err = ENOTSUP;
	else if (!err && version == 0)
		err = exec_sql(store, schema_sql, "schema create");
	/* One step per version; everything not named is kept. */
	if (!err && version == 1)
		err = exec_sql(store, FEATURES_SQL, "migrate 1->2");
	if (!err && version >= 1 && version < 3)
		err = exec_sql(store, migrate_v3_sql, "migrate 2->3");
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
		 STORE_SCHEMA_VERSION);
	if (!err)
		err = exec_sql(store, sql, "schema version");
	if (!err)
		err = exec_sql(store, "COMMIT", "schema commit");
	if (err) {
		exec_sql(store, "ROLLBACK", "schema rollback");
		return err;
	}
	log_info("store", "schema %s path=%s from=%d version=%d",
		 version ? "migrated" : "created", store->path, version,
		 STORE_SCHEMA_VERSION);
	return 0;
}

static int setup_schema(struct store *store)
{
	int version, err;

	err = user_version(store, &version);
	if (err)
		return err;
	if (version == STORE_SCHEMA_VERSION)
		return 0;
	if (version > STORE_SCHEMA_VERSION) {
		log_err("store", "database schema is newer than this pinhole "
			"path=%s version=%d supported=%d: upgrade pinhole",
			store->path, version, STORE_SCHEMA_VERSION);
		return ENOTSUP;
	}
	return migrate(store);
}

int store_open(struct store **storep, const char *path)
{
	struct store *store;
	int err;

	if (!storep || !path || !*path)
		return EINVAL;
	if (strlen(path) >= sizeof(store->path))
		return ENAMETOOLONG;
	store = calloc(1, sizeof(*store));
	if (!store)
		return ENOMEM;
	snprintf(store->path, sizeof(store->path), "%s", path);

	if (strcmp(path, ":memory:") != 0) {
		err = make_parents(path);
		if (err)
			goto fail;
	}
	if (sqlite3_open_v2(path, &store->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		err = store->db ? db_fail(store, "open") : ENOMEM;
		goto fail;
	}
	sqlite3_busy_timeout(store->db, STORE_BUSY_TIMEOUT_MS);
	/* journal_mode returns a row; exec ignores it. In-memory databases
	 * stay "memory", which is fine. */
	err = exec_sql(store, "PRAGMA journal_mode = WAL", "journal_mode");
	if (!err)
		err = exec_sql(store, "PRAGMA synchronous = NORMAL",
			       "synchronous");
	if (!err)
		err = setup_schema(store);
	if (err)
		goto fail;

	for (int i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(store->db, stmt_sql[i], -1,
				       SQLITE_PREPARE_PERSISTENT,
				       &store->stmt[i], NULL) != SQLITE_OK) {
			err = db_fail(store, "prepare");
			goto fail;
		}
	}
	log_info("store", "opened path=%s", path);
	*storep = store;
	return 0;

fail:
	store_close(store);
	return err;
}

void store_close(struct store *store)
{
	if (!store)
		return;
	if (store->in_batch) {
		/* The registrar's writes are facts, not speculation: a batch
		 * left open at shutdown is kept rather than rolled back. */
		log_warn("store", "batch open at close, committing path=%s",
			 store->path);
		store_commit(store);
	}
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(store->stmt[i]);
	if (store->db && sqlite3_close(store->db) != SQLITE_OK)
		log_err("store", "close failed: %s path=%s",
			sqlite3_errmsg(store->db), store->path);
	free(store);
}

/* Step a statement that returns no rows, then reset it. */
static int step_done(struct store *store, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	int err = rc == SQLITE_DONE ? 0 : db_fail(store, what);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return err;
}

int store_begin(struct store *store)
{
	int err;

	if (store->in_batch)
		return EALREADY;
	err = step_done(store, store->stmt[ST_BEGIN], "begin");
	if (!err)
		store->in_batch = true;
	return err;
}

int store_commit(struct store *store)
{
	int err;

	if (!store->in_batch)
		return EINVAL;
	err = step_done(store, store->stmt[ST_COMMIT], "commit");
	/* A failed COMMIT (busy) leaves the transaction open; SQLite rolls
	 * back on other errors. Ask SQLite rather than guess. */
	store->in_batch = !sqlite3_get_autocommit(store->db);
	return err;
}

/* Accounts */

int store_user_put(struct store *store, const struct store_user *user)
{
	sqlite3_stmt *st = store->stmt[ST_USER_PUT];

	if (!user->name[0])
		return EINVAL;
	BIND_FIELD(st, 1, user->name);
	BIND_FIELD(st, 2, user->realm);
	BIND_FIELD(st, 3, user->ha1_md5);
	BIND_FIELD(st, 4, user->ha1_sha256);
	return step_done(store, st, "user put");
}

int store_user_del(struct store *store, const char *name)
{
	sqlite3_stmt *st = store->stmt[ST_USER_DEL];
	int err;

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	err = step_done(store, st, "user del");
	if (!err && sqlite3_changes(store->db) == 0)
		return ENOENT;
	return err;
}

static void row_user(sqlite3_stmt *st, struct store_user *user)
{
	COLUMN_FIELD(st, 0, user->name);
	COLUMN_FIELD(st, 1, user->realm);
	COLUMN_FIELD(st, 2, user->ha1_md5);
	COLUMN_FIELD(st, 3, user->ha1_sha256);
}

int store_user_get(struct store *store, const char *name,
		   struct store_user *user)
{
	sqlite3_stmt *st = store->stmt[ST_USER_GET];
	int rc, err = 0;

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		row_user(st, user);
	else if (rc == SQLITE_DONE)
		err = ENOENT;
	else
		err = db_fail(store, "user get");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return err;
}

/*
 * The foreach functions step a prepared statement while calling fn: fn may
 * use any other store function, but not the same foreach (the statement is
 * busy).
 */
int store_user_foreach(struct store *store,
		       void (*fn)(const struct store_user *user, void *arg),
		       void *arg)
{
	sqlite3_stmt *st = store->stmt[ST_USER_LIST];
	struct store_user user;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_user(st, &user);
		fn(&user, arg);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : db_fail(store, "user list");
}

/* Bindings */

int store_binding_put(struct store *store, const struct store_binding *b)
{
	sqlite3_stmt *st = store->stmt[ST_BINDING_PUT];

	if (!b->aor[0] || !b->contact[0] || !b->uid ||
	    b->uid > (uint64_t)INT64_MAX)
		return EINVAL;
	BIND_FIELD(st, 1, b->aor);
	BIND_FIELD(st, 2, b->contact);
	BIND_FIELD(st, 3, b->instance);
	BIND_FIELD(st, 4, b->call_id);
	sqlite3_bind_int64(st, 5, b->cseq);
	sqlite3_bind_int64(st, 6, b->expires_at);
	sqlite3_bind_int64(st, 7, b->q1000);
	BIND_FIELD(st, 8, b->path);
	BIND_FIELD(st, 9, b->user_agent);
	BIND_FIELD(st, 10, b->transport);
	BIND_FIELD(st, 11, b->remote);
	BIND_FIELD(st, 12, b->local);
	BIND_FIELD(st, 13, b->verdict);
	BIND_FIELD(st, 14, b->node);
	sqlite3_bind_int64(st, 15, (sqlite3_int64)b->uid);
	return step_done(store, st, "binding put");
}

int store_binding_del(struct store *store, uint64_t uid)
{
	sqlite3_stmt *st = store->stmt[ST_BINDING_DEL];
	int err;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)uid);
	err = step_done(store, st, "binding del");
	if (!err && sqlite3_changes(store->db) == 0)
		return ENOENT;
	return err;
}

static uint32_t column_u32(sqlite3_stmt *st, int col)
{
	sqlite3_int64 v = sqlite3_column_int64(st, col);

	return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

int store_binding_foreach(struct store *store,
			  void (*fn)(const struct store_binding *b, void *arg),
			  void *arg)
{
	sqlite3_stmt *st = store->stmt[ST_BINDING_LIST];
	struct store_binding *b;
	int rc;

	/* 3 KB: keep it off the signalling thread's stack. */
	b = malloc(sizeof(*b));
	if (!b)
		return ENOMEM;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		COLUMN_FIELD(st, 0, b->aor);
		COLUMN_FIELD(st, 1, b->contact);
		COLUMN_FIELD(st, 2, b->instance);
		COLUMN_FIELD(st, 3, b->call_id);
		b->cseq = column_u32(st, 4);
		b->expires_at = sqlite3_column_int64(st, 5);
		b->q1000 = column_u32(st, 6);
		COLUMN_FIELD(st, 7, b->path);
		COLUMN_FIELD(st, 8, b->user_agent);
		COLUMN_FIELD(st, 9, b->transport);
		COLUMN_FIELD(st, 10, b->remote);
		COLUMN_FIELD(st, 11, b->local);
		COLUMN_FIELD(st, 12, b->verdict);
		COLUMN_FIELD(st, 13, b->node);
		b->uid = (uint64_t)sqlite3_column_int64(st, 14);
		fn(b, arg);
	}
	free(b);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : db_fail(store, "binding list");
}

/* Alarms */

/* Fills alarm->id; alarm->time 0 means now. */
int store_alarm_add(struct store *store, struct store_alarm *alarm)
{
	sqlite3_stmt *st = store->stmt[ST_ALARM_ADD];
	int64_t id;
	int err;

	if (!alarm->time)
		alarm->time = (int64_t)time(NULL);
	sqlite3_bind_int64(st, 1, alarm->time);
	BIND_FIELD(st, 2, alarm->severity);
	BIND_FIELD(st, 3, alarm->code);
	BIND_FIELD(st, 4, alarm->subject);
	BIND_FIELD(st, 5, alarm->text);
	err = step_done(store, st, "alarm add");
	if (err)
		return err;
	id = sqlite3_last_insert_rowid(store->db);
	alarm->id = id;
	if (id > STORE_ALARMS_KEEP) {
		st = store->stmt[ST_ALARM_PRUNE];
		sqlite3_bind_int64(st, 1, id - STORE_ALARMS_KEEP);
		err = step_done(store, st, "alarm prune");
	}
	return err;
}

int store_alarm_foreach(struct store *store, unsigned limit,
			void (*fn)(const struct store_alarm *a, void *arg),
			void *arg)
{
	sqlite3_stmt *st = store->stmt[ST_ALARM_LIST];
	struct store_alarm *a;
	int rc;

	a = malloc(sizeof(*a));
	if (!a)
		return ENOMEM;
	sqlite3_bind_int64(st, 1, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		a->id = sqlite3_column_int64(st, 0);
		a->time = sqlite3_column_int64(st, 1);
		COLUMN_FIELD(st, 2, a->severity);
		COLUMN_FIELD(st, 3, a->code);
		COLUMN_FIELD(st, 4, a->subject);
		COLUMN_FIELD(st, 5, a->text);
		fn(a, arg);
	}
	free(a);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : db_fail(store, "alarm list");
}

/* Telephony settings (features): small key/value pairs per subject, read
 * when a call is set up. Statements are prepared per call: these are rare
 * next to REGISTERs and lookups of bindings. */

int store_feature_set(struct store *store, const char *subject,
		      const char *key, const char *value)
{
	sqlite3_stmt *st;
	int rc;
	bool del = !value || !value[0];

	if (sqlite3_prepare_v2(store->db, del ?
			       "DELETE FROM features WHERE subject=?1 AND key=?2" :
			       "INSERT OR REPLACE INTO features (subject, key, value) "
			       "VALUES (?1, ?2, ?3)", -1, &st, NULL) != SQLITE_OK)
		return db_fail(store, "feature set");
	sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	if (!del)
		sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_fail(store, "feature set");
}

int store_feature_get(struct store *store, const char *subject,
		      const char *key, char *value, size_t cap)
{
	sqlite3_stmt *st;
	int rc, err = 0;

	if (sqlite3_prepare_v2(store->db, "SELECT value FROM features "
			       "WHERE subject=?1 AND key=?2", -1, &st,
			       NULL) != SQLITE_OK)
		return db_fail(store, "feature get");
	sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		column_field(st, 0, value, cap);
	else if (rc == SQLITE_DONE)
		err = ENOENT;
	else
		err = db_fail(store, "feature get");
	sqlite3_finalize(st);
	return err;
}

int store_feature_foreach(struct store *store, const char *subject,
			  void (*fn)(const char *subject, const char *key,
				     const char *value, void *arg),
			  void *arg)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(store->db, subject ?
			       "SELECT subject, key, value FROM features "
			       "WHERE subject=?1 ORDER BY key" :
			       "SELECT subject, key, value FROM features "
			       "ORDER BY subject, key", -1, &st, NULL) != SQLITE_OK)
		return db_fail(store, "feature list");
	if (subject)
		sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn((const char *)sqlite3_column_text(st, 0),
		   (const char *)sqlite3_column_text(st, 1),
		   (const char *)sqlite3_column_text(st, 2), arg);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_fail(store, "feature list");
}

#define NODE_PREFIX "node:"

int store_node_put(struct store *store, const struct store_node *node)
{
	char subject[80], v[32];
	int err;

	snprintf(subject, sizeof(subject), NODE_PREFIX "%s", node->id);
	err = store_feature_set(store, subject, "sip", node->sip);
	snprintf(v, sizeof(v), "%u", node->rtp_min);
	err = err ? err : store_feature_set(store, subject, "rtp_min", v);
	snprintf(v, sizeof(v), "%u", node->rtp_max);
	err = err ? err : store_feature_set(store, subject, "rtp_max", v);
	snprintf(v, sizeof(v), "%lld", (long long)node->seen);
	return err ? err : store_feature_set(store, subject, "seen", v);
}

struct node_walk {
	struct store_node *out;
	unsigned max, n;
};

static void node_visit(const char *subject, const char *key,
		       const char *value, void *arg)
{
	struct node_walk *w = arg;
	struct store_node *nd = NULL;
	const char *id = subject + sizeof(NODE_PREFIX) - 1;

	if (strncmp(subject, NODE_PREFIX, sizeof(NODE_PREFIX) - 1) != 0)
		return;
	for (unsigned i = 0; i < w->n; i++)
		if (strcmp(w->out[i].id, id) == 0)
			nd = &w->out[i];
	if (!nd) {
		if (w->n >= w->max)
			return;
		nd = &w->out[w->n++];
		memset(nd, 0, sizeof(*nd));
		snprintf(nd->id, sizeof(nd->id), "%s", id);
	}
	if (strcmp(key, "sip") == 0)
		snprintf(nd->sip, sizeof(nd->sip), "%s", value);
	else if (strcmp(key, "rtp_min") == 0)
		nd->rtp_min = (unsigned)strtoul(value, NULL, 10);
	else if (strcmp(key, "rtp_max") == 0)
		nd->rtp_max = (unsigned)strtoul(value, NULL, 10);
	else if (strcmp(key, "seen") == 0)
		nd->seen = strtoll(value, NULL, 10);
}

unsigned store_nodes(struct store *store, struct store_node *out,
		     unsigned max)
{
	struct node_walk w = { out, max, 0 };

	store_feature_foreach(store, NULL, node_visit, &w);
	return w.n;
}
