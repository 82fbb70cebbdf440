/*
 * registrar.h - the registrar and location service (RFC 3261 10, RFC 3327
 * Path): bindings per AOR in memory, each with the flow the phone
 * registered on, persisted to the store in batches off the hot path and
 * reloaded at start. Owns bindings and their expiry.
 */
#ifndef PINHOLE_REGISTRAR_H
#define PINHOLE_REGISTRAR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "sip/msg.h"
#include "transport/transport.h"
#include "util/hash.h"

struct loop;
struct store;
struct conf;

#define REG_MAX_CONTACTS_PER_AOR 16

struct reg_binding {
	struct hash_node by_contact;	/* index: Contact URI -> bindings
					   (several when NAT'ed phones in
					   different homes send one URI) */
	struct hash_node by_id;		/* index: id -> binding */
	struct reg_binding *next;
	struct reg_aor *aor;
	char *contact;		/* the Contact URI as sent by the phone */
	char *call_id;
	char *path;		/* Path values comma-joined, or NULL */
	char *user_agent;
	char instance[128];
	uint32_t cseq;
	uint32_t q1000;
	int64_t expires_at;	/* unix seconds */
	int64_t registered_at;
	struct tp_flow flow;	/* where the REGISTER came from */
	struct sockaddr_storage local;	/* the address it reached */
	char verdict[16];	/* local | public | behind-nat | nonat-suspect */
	bool ip_counted;	/* flow.remote counted in the IP index */
	uint32_t id;		/* unique while registered (keepalive branch) */
	uint64_t uid;		/* its row in the store, kept across restarts */
	/* keepalive state (nat/keepalive.c) */
	uint64_t ka_next_ms;	/* next ping, loop clock */
	uint64_t ka_sent_ms;	/* last ping not yet answered, 0 = none */
	int64_t ka_answered;	/* unix time of the last answer, 0 never */
	unsigned ka_failures;	/* consecutive unanswered pings */
	bool unreachable;
	char nat_reason[160];	/* the evidence behind the verdict */
	uint8_t probe;		/* enum reg_probe: the active NAT check */
};

/* The active NAT check of a binding that looked public (nat/probe.c). */
enum reg_probe {
	REG_PROBE_NONE = 0,	/* not checked (not public, TCP, off) */
	REG_PROBE_PENDING,	/* OPTIONS from another port under way */
	REG_PROBE_ANSWERED,	/* answered: reachable as it claims */
	REG_PROBE_FILTERED,	/* silence or ICMP: a NAT filters it */
};

struct reg_aor {
	struct hash_node node;
	char *aor;		/* "user@domain" */
	struct reg_binding *bindings;
	unsigned count;
};

struct reg_stats {
	uint64_t registers, refreshes, removals, expired, rejected;
	unsigned aors, bindings;
};

int reg_init(struct loop *loop, struct store *store, const struct conf *conf);
void reg_close(void);	/* flushes pending writes */
void reg_set_conf(const struct conf *conf);
const struct reg_stats *reg_stats(void);

/*
 * Handle an authenticated REGISTER for aor ("user@domain").
 * Returns the status to answer; on 200 (and 423) `extra` receives the
 * header lines to add (Contact list with expires, Min-Expires, Path).
 * `reason` may be set to a specific reason phrase.
 */
unsigned reg_register(const struct sip_msg *msg, const char *aor,
		      const struct tp_flow *flow,
		      const struct sockaddr_storage *local,
		      char *extra, size_t cap, const char **reason);

/* The AOR record, or NULL when nothing is registered. */
struct reg_aor *reg_lookup(const char *aor);
/* The binding whose Contact URI is exactly uri (in-dialog requests to a
 * registered phone use its flow), or NULL. Also NULL when phones in two
 * homes (two public IPs) registered that same URI: it names neither. */
struct reg_binding *reg_find_contact(struct pl uri);

/* Is ip (port ignored) the public address of a registered phone? Used to
 * let in-dialog requests reach phones while refusing to relay elsewhere. */
bool reg_knows_ip(const struct sockaddr_storage *ip);

/* Visit every binding (keepalives, diagnostics). fn must not remove. */
void reg_foreach(void (*fn)(struct reg_binding *b, void *arg), void *arg);
/* The binding with this id, or NULL. */
struct reg_binding *reg_find_id(uint32_t id);
/* The active check of binding id, registered from remote, is over:
 * answered keeps it public, otherwise it becomes nonat-suspect (with an
 * alarm). why: the evidence in plain words. */
void reg_probe_result(uint32_t id, const struct sockaddr_storage *remote,
		      bool answered, const char *why);

/* JSON array of all bindings for the admin API. */
json_t *reg_to_json(void);

#endif
