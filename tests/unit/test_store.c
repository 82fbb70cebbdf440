/*
 * test_store.c - the SQLite store: accounts, bindings in batches,
 * persistence across reopen, alarm history order and limit, bounded
 * copies of over-long text, and migrations from older schemas.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/log.h"
#include "store/store.h"

struct fixture {
	char dir[64];
	char path[128];
	struct store *store;
};

static void rm_rf(const char *dir)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	log_set_level(LOG_WARNING);
	snprintf(f->dir, sizeof(f->dir), "/tmp/pinhole-store-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	/* Nested folders that do not exist yet: store_open makes them. */
	snprintf(f->path, sizeof(f->path), "%s/var/db/pinhole.db", f->dir);
	if (store_open(&f->store, f->path) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->store);
	rm_rf(f->dir);
	free(f);
	return 0;
}

static struct store_user make_user(const char *name, const char *md5)
{
	struct store_user u;

	memset(&u, 0, sizeof(u));
	snprintf(u.name, sizeof(u.name), "%s", name);
	snprintf(u.realm, sizeof(u.realm), "example.com");
	snprintf(u.ha1_md5, sizeof(u.ha1_md5), "%s", md5);
	memset(u.ha1_sha256, 'b', 64);
	return u;
}

struct name_list {
	char names[8][64];
	unsigned n;
};

static void collect_user(const struct store_user *u, void *arg)
{
	struct name_list *l = arg;

	if (l->n < 8)
		snprintf(l->names[l->n++], 64, "%s", u->name);
}

static void test_open_creates_dirs_and_wal(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	sqlite3 *db;
	sqlite3_stmt *q;

	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1,
					    &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
	sqlite3_finalize(q);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1,
					    &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(q, 0), 3);
	sqlite3_finalize(q);
	sqlite3_close(db);
}

static void test_users(void **state)
{
	struct fixture *f = *state;
	struct store_user u, got;
	struct name_list list = { 0 };
	char md5[33];

	memset(md5, 'a', 32);
	md5[32] = '\0';
	u = make_user("carol", md5);
	assert_int_equal(store_user_put(f->store, &u), 0);
	u = make_user("alice", md5);
	assert_int_equal(store_user_put(f->store, &u), 0);
	u = make_user("bob", md5);
	assert_int_equal(store_user_put(f->store, &u), 0);

	assert_int_equal(store_user_get(f->store, "alice", &got), 0);
	assert_string_equal(got.name, "alice");
	assert_string_equal(got.realm, "example.com");
	assert_string_equal(got.ha1_md5, md5);
	assert_int_equal(strlen(got.ha1_sha256), 64);

	/* Put again = password change, not an error. */
	u = make_user("alice", "0123456789abcdef0123456789abcdef");
	assert_int_equal(store_user_put(f->store, &u), 0);
	assert_int_equal(store_user_get(f->store, "alice", &got), 0);
	assert_string_equal(got.ha1_md5, "0123456789abcdef0123456789abcdef");

	assert_int_equal(store_user_foreach(f->store, collect_user, &list), 0);
	assert_int_equal(list.n, 3);
	assert_string_equal(list.names[0], "alice");
	assert_string_equal(list.names[1], "bob");
	assert_string_equal(list.names[2], "carol");

	assert_int_equal(store_user_del(f->store, "bob"), 0);
	assert_int_equal(store_user_del(f->store, "bob"), ENOENT);
	assert_int_equal(store_user_get(f->store, "bob", &got), ENOENT);
	assert_int_equal(store_user_get(f->store, "nobody", &got), ENOENT);
	u = make_user("", md5);
	assert_int_equal(store_user_put(f->store, &u), EINVAL);
}

static struct store_binding *make_binding(uint64_t uid, const char *aor,
					  const char *contact, uint32_t cseq)
{
	struct store_binding *b = calloc(1, sizeof(*b));

	b->uid = uid;
	snprintf(b->aor, sizeof(b->aor), "%s", aor);
	snprintf(b->contact, sizeof(b->contact), "%s", contact);
	snprintf(b->call_id, sizeof(b->call_id), "cid-%u@phone", cseq);
	b->cseq = cseq;
	b->expires_at = 1700000000 + cseq;
	b->q1000 = 500;
	snprintf(b->path, sizeof(b->path), "<sip:edge;lr>");
	snprintf(b->user_agent, sizeof(b->user_agent), "Yealink T46");
	snprintf(b->transport, sizeof(b->transport), "udp");
	snprintf(b->remote, sizeof(b->remote), "203.0.113.7:40000");
	snprintf(b->local, sizeof(b->local), "192.0.2.1:5060");
	snprintf(b->verdict, sizeof(b->verdict), "behind-nat");
	snprintf(b->node, sizeof(b->node), "node1");
	return b;
}

struct binding_list {
	struct store_binding b[8];
	unsigned n;
};

static void collect_binding(const struct store_binding *b, void *arg)
{
	struct binding_list *l = arg;

	if (l->n < 8)
		l->b[l->n++] = *b;
}

static void put_and_free(struct store *store, struct store_binding *b)
{
	assert_int_equal(store_binding_put(store, b), 0);
	free(b);
}

static void test_bindings_batch_and_reopen(void **state)
{
	struct fixture *f = *state;
	struct binding_list *list = calloc(1, sizeof(*list));

	assert_int_equal(store_begin(f->store), 0);
	assert_int_equal(store_begin(f->store), EALREADY);
	put_and_free(f->store, make_binding(1, "alice@example.com",
					    "sip:alice@10.0.0.5:5060", 1));
	put_and_free(f->store, make_binding(2, "alice@example.com",
					    "sip:alice@10.0.0.6:5060", 2));
	put_and_free(f->store, make_binding(3, "bob@example.com",
					    "sip:bob@10.0.0.9:5060", 3));
	/* Upsert: same uid, new cseq and expiry. */
	put_and_free(f->store, make_binding(1, "alice@example.com",
					    "sip:alice@10.0.0.5:5060", 7));
	assert_int_equal(store_binding_del(f->store, 3), 0);
	assert_int_equal(store_binding_del(f->store, 3), ENOENT);
	/* No uid: refused. */
	{
		struct store_binding *nouid = make_binding(0, "bob@example.com",
							   "sip:bob@x", 1);
		assert_int_equal(store_binding_put(f->store, nouid), EINVAL);
		free(nouid);
	}
	assert_int_equal(store_commit(f->store), 0);
	assert_int_equal(store_commit(f->store), EINVAL);

	/* Reopen the file: the batch is on disk. */
	store_close(f->store);
	f->store = NULL;
	assert_int_equal(store_open(&f->store, f->path), 0);
	assert_int_equal(store_binding_foreach(f->store, collect_binding,
					       list), 0);
	assert_int_equal(list->n, 2);
	assert_string_equal(list->b[0].contact, "sip:alice@10.0.0.5:5060");
	assert_int_equal(list->b[0].uid, 1);
	assert_int_equal(list->b[0].cseq, 7);
	assert_int_equal(list->b[0].expires_at, 1700000007);
	assert_string_equal(list->b[0].call_id, "cid-7@phone");
	assert_int_equal(list->b[0].q1000, 500);
	assert_string_equal(list->b[0].path, "<sip:edge;lr>");
	assert_string_equal(list->b[0].user_agent, "Yealink T46");
	assert_string_equal(list->b[0].transport, "udp");
	assert_string_equal(list->b[0].remote, "203.0.113.7:40000");
	assert_string_equal(list->b[0].local, "192.0.2.1:5060");
	assert_string_equal(list->b[0].verdict, "behind-nat");
	assert_string_equal(list->b[0].node, "node1");
	assert_string_equal(list->b[0].instance, "");
	assert_string_equal(list->b[1].contact, "sip:alice@10.0.0.6:5060");
	assert_int_equal(list->b[1].uid, 2);
	assert_int_equal(list->b[1].cseq, 2);
	free(list);
}

/* Two homes, one private Contact: two rows, each deleted on its own. */
static void test_bindings_same_contact_two_rows(void **state)
{
	struct fixture *f = *state;
	struct binding_list *list = calloc(1, sizeof(*list));
	struct store_binding *b;

	b = make_binding(10, "alice@example.com", "sip:alice@192.168.1.10", 1);
	put_and_free(f->store, b);
	b = make_binding(11, "alice@example.com", "sip:alice@192.168.1.10", 2);
	snprintf(b->remote, sizeof(b->remote), "198.51.100.9:1024");
	put_and_free(f->store, b);
	assert_int_equal(store_binding_foreach(f->store, collect_binding,
					       list), 0);
	assert_int_equal(list->n, 2);
	assert_string_equal(list->b[0].remote, "203.0.113.7:40000");
	assert_string_equal(list->b[1].remote, "198.51.100.9:1024");
	assert_int_equal(store_binding_del(f->store, 11), 0);
	list->n = 0;
	assert_int_equal(store_binding_foreach(f->store, collect_binding,
					       list), 0);
	assert_int_equal(list->n, 1);
	assert_int_equal(list->b[0].uid, 10);
	free(list);
}

static void test_close_commits_open_batch(void **state)
{
	struct fixture *f = *state;
	struct binding_list *list = calloc(1, sizeof(*list));

	assert_int_equal(store_begin(f->store), 0);
	put_and_free(f->store, make_binding(1, "carol@example.com",
					    "sip:carol@10.0.0.1", 1));
	store_close(f->store);
	f->store = NULL;
	assert_int_equal(store_open(&f->store, f->path), 0);
	assert_int_equal(store_binding_foreach(f->store, collect_binding,
					       list), 0);
	assert_int_equal(list->n, 1);
	free(list);
}

struct alarm_list {
	int64_t ids[16];
	char codes[16][64];
	unsigned n;
};

static void collect_alarm(const struct store_alarm *a, void *arg)
{
	struct alarm_list *l = arg;

	if (l->n < 16) {
		l->ids[l->n] = a->id;
		snprintf(l->codes[l->n], 64, "%s", a->code);
		l->n++;
	}
}

static void test_alarms_newest_first(void **state)
{
	struct fixture *f = *state;
	struct alarm_list *list = calloc(1, sizeof(*list));
	struct store_alarm *a = calloc(1, sizeof(*a));
	int64_t last = 0;

	for (int i = 0; i < 5; i++) {
		memset(a, 0, sizeof(*a));
		a->time = 1700000000 + i;
		snprintf(a->severity, sizeof(a->severity), "major");
		snprintf(a->code, sizeof(a->code), "code-%d", i);
		snprintf(a->subject, sizeof(a->subject), "alice@example.com");
		snprintf(a->text, sizeof(a->text), "fix it");
		assert_int_equal(store_alarm_add(f->store, a), 0);
		assert_true(a->id > last);
		last = a->id;
	}
	/* time 0 = now */
	memset(a, 0, sizeof(*a));
	snprintf(a->code, sizeof(a->code), "now");
	assert_int_equal(store_alarm_add(f->store, a), 0);
	assert_true(a->time > 1700000000);

	assert_int_equal(store_alarm_foreach(f->store, 3, collect_alarm,
					     list), 0);
	assert_int_equal(list->n, 3);
	assert_string_equal(list->codes[0], "now");
	assert_string_equal(list->codes[1], "code-4");
	assert_string_equal(list->codes[2], "code-3");
	assert_true(list->ids[0] > list->ids[1]);

	list->n = 0;
	assert_int_equal(store_alarm_foreach(f->store, 100, collect_alarm,
					     list), 0);
	assert_int_equal(list->n, 6);
	assert_string_equal(list->codes[5], "code-0");
	free(list);
	free(a);
}

static void count_alarm(const struct store_alarm *a, void *arg)
{
	(*(unsigned *)arg)++;
}

/* History is capped (10000 rows): nothing grows without bound. */
static void test_alarms_pruned(void **state)
{
	struct fixture *f = *state;
	struct store_alarm *a = calloc(1, sizeof(*a));
	struct alarm_list *list = calloc(1, sizeof(*list));
	unsigned count = 0;

	assert_int_equal(store_begin(f->store), 0);
	for (int i = 0; i < 10010; i++) {
		a->id = 0;
		a->time = 1700000000 + i;
		snprintf(a->code, sizeof(a->code), "code-%d", i);
		assert_int_equal(store_alarm_add(f->store, a), 0);
	}
	assert_int_equal(store_commit(f->store), 0);
	assert_int_equal(store_alarm_foreach(f->store, 20000, count_alarm,
					     &count), 0);
	assert_int_equal(count, 10000);
	assert_int_equal(store_alarm_foreach(f->store, 1, collect_alarm,
					     list), 0);
	assert_string_equal(list->codes[0], "code-10009");
	free(a);
	free(list);
}

static void test_truncation(void **state)
{
	struct fixture *f = *state;
	struct store_binding *b = calloc(1, sizeof(*b));
	struct binding_list *list = calloc(1, sizeof(*list));
	struct store_user got;
	char sql[1024], longname[300];
	sqlite3 *db;

	/* Fields filled to the brim, without a NUL: bounded on the way in. */
	memset(b, 'x', sizeof(*b));
	b->uid = 1;
	b->cseq = 1;
	b->expires_at = 1;
	b->q1000 = 1000;
	assert_int_equal(store_binding_put(f->store, b), 0);
	assert_int_equal(store_binding_foreach(f->store, collect_binding,
					       list), 0);
	assert_int_equal(list->n, 1);
	assert_int_equal(strlen(list->b[0].aor), sizeof(b->aor) - 1);
	assert_int_equal(strlen(list->b[0].contact), sizeof(b->contact) - 1);
	assert_int_equal(strlen(list->b[0].path), sizeof(b->path) - 1);
	assert_int_equal(strlen(list->b[0].transport),
			 sizeof(b->transport) - 1);
	assert_int_equal(strlen(list->b[0].node), sizeof(b->node) - 1);

	/* A row written by another tool with over-long text: bounded on the
	 * way out. */
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 2000);
	snprintf(sql, sizeof(sql), "INSERT INTO users VALUES ('%s', "
		 "'realm', 'short', '%s')", longname, longname);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_user_get(f->store, longname, &got), 0);
	assert_int_equal(strlen(got.name), sizeof(got.name) - 1);
	assert_int_equal(strlen(got.ha1_sha256), sizeof(got.ha1_sha256) - 1);
	assert_string_equal(got.ha1_md5, "short");
	free(b);
	free(list);
}

static void test_newer_schema_refused(void **state)
{
	struct fixture *f = *state;
	struct store *other = NULL;
	sqlite3 *db;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL,
				      NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(&other, f->path), ENOTSUP);
	assert_null(other);
}

struct feature_seen {
	unsigned n;
	char last[128];
};

static void on_feature(const char *subject, const char *key,
		       const char *value, void *arg)
{
	struct feature_seen *seen = arg;

	seen->n++;
	snprintf(seen->last, sizeof(seen->last), "%s/%s=%s", subject, key,
		 value);
}

static void test_features(void **state)
{
	struct fixture *f = *state;
	char v[64];
	struct feature_seen seen = { 0 };

	assert_int_equal(store_feature_get(f->store, "alice", "forward_busy",
					   v, sizeof(v)), ENOENT);
	assert_int_equal(store_feature_set(f->store, "alice", "forward_busy",
					   "voicemail"), 0);
	assert_int_equal(store_feature_set(f->store, "alice", "forward_busy",
					   "bob"), 0);	/* replace */
	assert_int_equal(store_feature_set(f->store, "group:600", "members",
					   "alice,bob"), 0);
	assert_int_equal(store_feature_get(f->store, "alice", "forward_busy",
					   v, sizeof(v)), 0);
	assert_string_equal(v, "bob");
	assert_int_equal(store_feature_foreach(f->store, "alice", on_feature,
					       &seen), 0);
	assert_int_equal(seen.n, 1);
	assert_string_equal(seen.last, "alice/forward_busy=bob");
	seen.n = 0;
	assert_int_equal(store_feature_foreach(f->store, NULL, on_feature,
					       &seen), 0);
	assert_int_equal(seen.n, 2);
	assert_int_equal(store_feature_set(f->store, "alice", "forward_busy",
					   ""), 0);	/* delete */
	assert_int_equal(store_feature_get(f->store, "alice", "forward_busy",
					   v, sizeof(v)), ENOENT);
}

/* A version 1 file (before features) is migrated, its data kept. */
static void test_migrate_v1(void **state)
{
	struct fixture *f = *state;
	struct store *again = NULL;
	struct store_user u = make_user("erin", "e"), got;
	sqlite3 *db;

	assert_int_equal(store_user_put(f->store, &u), 0);
	store_close(f->store);
	f->store = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE features; "
				      "PRAGMA user_version = 1", NULL, NULL,
				      NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(&again, f->path), 0);
	assert_int_equal(store_user_get(again, "erin", &got), 0);
	assert_int_equal(store_feature_set(again, "erin", "k", "v"), 0);
	f->store = again;
}

/* A version 2 file (bindings keyed by aor+contact) keeps its bindings,
 * each given a uid; features and accounts are untouched. */
static void test_migrate_v2(void **state)
{
	struct fixture *f = *state;
	struct binding_list *list = calloc(1, sizeof(*list));
	struct store_binding *b;
	sqlite3 *db;

	store_close(f->store);
	f->store = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
		"DROP TABLE bindings;"
		"CREATE TABLE bindings (aor TEXT NOT NULL, contact TEXT NOT NULL,"
		" instance TEXT NOT NULL DEFAULT '', call_id TEXT NOT NULL DEFAULT '',"
		" cseq INTEGER NOT NULL DEFAULT 0, expires_at INTEGER NOT NULL DEFAULT 0,"
		" q1000 INTEGER NOT NULL DEFAULT 1000, path TEXT NOT NULL DEFAULT '',"
		" user_agent TEXT NOT NULL DEFAULT '', transport TEXT NOT NULL DEFAULT '',"
		" remote TEXT NOT NULL DEFAULT '', local TEXT NOT NULL DEFAULT '',"
		" verdict TEXT NOT NULL DEFAULT '', node TEXT NOT NULL DEFAULT '',"
		" PRIMARY KEY (aor, contact));"
		"INSERT INTO bindings (aor, contact, cseq, remote, verdict) VALUES"
		" ('alice@example.com', 'sip:alice@192.168.1.10', 4,"
		"  '203.0.113.7:40000', 'behind-nat'),"
		" ('bob@example.com', 'sip:bob@10.0.0.9', 5, '10.0.0.9:5060',"
		"  'local');"
		"INSERT INTO features VALUES ('alice', 'forward_busy', 'bob');"
		"PRAGMA user_version = 2", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(store_open(&f->store, f->path), 0);
	assert_int_equal(store_binding_foreach(f->store, collect_binding,
					       list), 0);
	assert_int_equal(list->n, 2);
	assert_string_equal(list->b[0].contact, "sip:alice@192.168.1.10");
	assert_int_equal(list->b[0].cseq, 4);
	assert_string_equal(list->b[0].verdict, "behind-nat");
	assert_string_equal(list->b[1].remote, "10.0.0.9:5060");
	assert_true(list->b[0].uid > 0 && list->b[1].uid > 0);
	assert_true(list->b[0].uid != list->b[1].uid);
	/* The same Contact from another home now fits next to it. */
	b = make_binding(list->b[0].uid + list->b[1].uid, "alice@example.com",
			 "sip:alice@192.168.1.10", 9);
	put_and_free(f->store, b);
	list->n = 0;
	assert_int_equal(store_binding_foreach(f->store, collect_binding,
					       list), 0);
	assert_int_equal(list->n, 3);
	{
		char v[16];
		assert_int_equal(store_feature_get(f->store, "alice",
						   "forward_busy", v,
						   sizeof(v)), 0);
		assert_string_equal(v, "bob");
	}
	/* Opened again: nothing more to migrate. */
	store_close(f->store);
	f->store = NULL;
	assert_int_equal(store_open(&f->store, f->path), 0);
	list->n = 0;
	assert_int_equal(store_binding_foreach(f->store, collect_binding,
					       list), 0);
	assert_int_equal(list->n, 3);
	free(list);
}

static void test_memory_db(void **state)
{
	struct store *mem = NULL;
	struct store_user u = make_user("dave", "d");
	struct store_user got;

	assert_int_equal(store_open(&mem, ":memory:"), 0);
	assert_int_equal(store_user_put(mem, &u), 0);
	assert_int_equal(store_user_get(mem, "dave", &got), 0);
	store_close(mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_creates_dirs_and_wal,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_users, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bindings_batch_and_reopen,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_commits_open_batch,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_alarms_newest_first,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_alarms_pruned, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_truncation, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused,
						setup, teardown),
		cmocka_unit_test(test_memory_db),
		cmocka_unit_test_setup_teardown(test_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v1, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v2, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_bindings_same_contact_two_rows, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
