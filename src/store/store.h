/*
 * store.h - persistent state in SQLite: SIP accounts, registrations
 * (bindings), alarm history. The registrar keeps bindings in memory and
 * writes them here in batches; this module never sits on the SIP hot path.
 */
#ifndef PINHOLE_STORE_H
#define PINHOLE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* Open (creating folders, file and schema as needed). */
int store_open(struct store **storep, const char *path);
void store_close(struct store *store);

/* Accounts. HA1 values are hex strings: MD5 (32 chars) and SHA-256 (64),
 * computed from user:realm:password (RFC 2617 / RFC 8760). */
struct store_user {
	char name[64];
	char realm[128];
	char ha1_md5[33];
	char ha1_sha256[65];
};
/* Add or replace (EEXIST is not an error: password change). */
int store_user_put(struct store *store, const struct store_user *user);
int store_user_del(struct store *store, const char *name); /* ENOENT */
int store_user_get(struct store *store, const char *name,
		   struct store_user *user);	/* ENOENT */
/* Calls fn for each user, ordered by name. */
int store_user_foreach(struct store *store,
		       void (*fn)(const struct store_user *user, void *arg),
		       void *arg);

/* A registration binding as persisted. Text fields are NUL-terminated.
 * uid is the row's key, chosen by the registrar (1 .. INT64_MAX): one
 * user may have several bindings with the same Contact (phones behind
 * different NATs), so (aor, contact) is not unique. */
struct store_binding {
	uint64_t uid;
	char aor[256];		/* "user@domain" */
	char contact[512];	/* Contact URI as sent by the phone */
	char instance[128];	/* +sip.instance, may be empty */
	char call_id[256];
	uint32_t cseq;
	int64_t expires_at;	/* unix seconds */
	uint32_t q1000;		/* q-value x1000 */
	char path[1024];	/* Path header values, comma-joined, may be empty */
	char user_agent[256];
	char transport[8];	/* "udp" / "tcp" */
	char remote[64];	/* public (source) address "ip:port" */
	char local[64];		/* local socket "ip:port" */
	char verdict[16];	/* local | public | behind-nat | nonat-suspect */
	char node[64];
};

/* Batch: begin, put/delete any number, commit. */
int store_begin(struct store *store);
int store_commit(struct store *store);
/* Insert, or replace the row with the same uid. */
int store_binding_put(struct store *store, const struct store_binding *b);
int store_binding_del(struct store *store, uint64_t uid);	/* ENOENT */
int store_binding_foreach(struct store *store,
			  void (*fn)(const struct store_binding *b, void *arg),
			  void *arg);

/* Alarm history. */
struct store_alarm {
	int64_t id;
	int64_t time;		/* unix seconds */
	char severity[16];	/* critical | major | minor | warning | info */
	char code[64];		/* e.g. "nonat-suspect" */
	char subject[256];	/* what it is about: an AOR, an address */
	char text[1024];	/* what happened and the fix */
};
int store_alarm_add(struct store *store, struct store_alarm *alarm);
/* Newest first, at most limit. */
int store_alarm_foreach(struct store *store, unsigned limit,
			void (*fn)(const struct store_alarm *a, void *arg),
			void *arg);

/* Telephony settings: key/value pairs per subject (a user name, or
 * "group:NUMBER" for a hunt group). An empty value deletes the key. */
int store_feature_set(struct store *store, const char *subject,
		      const char *key, const char *value);
int store_feature_get(struct store *store, const char *subject,
		      const char *key, char *value, size_t cap); /* ENOENT */
/* subject NULL: every subject. */
int store_feature_foreach(struct store *store, const char *subject,
			  void (*fn)(const char *subject, const char *key,
				     const char *value, void *arg),
			  void *arg);

/* Nodes sharing this store (HA on one store file, later Redis): each
 * daemon records what it must not share with another, as the subject
 * "node:<node_id>" of the features table (keys sip, rtp_min, rtp_max,
 * seen). */
struct store_node {
	char id[64];
	char sip[96];		/* "listen:port" */
	unsigned rtp_min, rtp_max;
	int64_t seen;		/* unix time of the last start or reload */
};
int store_node_put(struct store *store, const struct store_node *node);
/* Every node recorded (up to max); returns how many. */
unsigned store_nodes(struct store *store, struct store_node *out,
		     unsigned max);

#endif
