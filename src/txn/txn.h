/*
 * txn.h - the proxy transaction layer (RFC 3261 17, RFC 6026): one txn
 * record per request we proxy or answer, holding the server side (what we
 * owe upstream) and up to TXN_MAX_BRANCHES client sides (what we asked
 * downstream). Owns retransmissions, timers A-L and C, matching of
 * retransmitted requests, ACKs and responses, and CANCEL sending.
 * Routing decisions belong to proxy/; this layer only keeps promises.
 */
#ifndef PINHOLE_TXN_H
#define PINHOLE_TXN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/loop.h"
#include "util/hash.h"
#include "sip/msg.h"
#include "transport/transport.h"

#define TXN_MAX_BRANCHES 16
#define TXN_T1 500
#define TXN_T2 4000
#define TXN_T4 5000
#define TXN_TIMER_C (180 * 1000)

struct txn;

enum txn_uas_state {
	TXN_UAS_TRYING = 0,	/* no response sent yet */
	TXN_UAS_PROCEEDING,	/* provisional sent */
	TXN_UAS_COMPLETED,	/* final non-2xx sent; INVITE waits for ACK */
	TXN_UAS_CONFIRMED,	/* ACK received (INVITE) */
	TXN_UAS_ACCEPTED,	/* 2xx sent (INVITE, RFC 6026) */
	TXN_UAS_TERMINATED,
};

enum txn_branch_state {
	TXN_BR_CALLING = 0,	/* sent, no response */
	TXN_BR_PROCEEDING,	/* provisional received */
	TXN_BR_COMPLETED,	/* final received */
	TXN_BR_TERMINATED,
};

struct txn_branch {
	struct txn *txn;
	unsigned idx;
	enum txn_branch_state state;
	struct tp_flow flow;
	char *req;
	size_t req_len;
	char branch_id[64];
	unsigned status;	/* last response status, 0 none */
	bool silent;		/* timed out without any response */
	bool cancel_wanted;	/* cancel once a provisional arrives */
	bool cancelled;
	char *cancel;
	size_t cancel_len;
	char *ack;		/* hop-by-hop ACK for a non-2xx final */
	size_t ack_len;
	uint64_t interval;
	struct loop_timer retrans;	/* A / E */
	struct loop_timer timeout;	/* B / F */
	struct loop_timer timer_c;
	struct loop_timer cancel_timer;
	unsigned cancel_sends;
	char target[256];	/* for logs and the call view */
	int verdict;		/* proxy: where the target is (nat_verdict) */
	struct sockaddr_storage local;	/* proxy: our address facing it */
};

struct txn_ops {
	/* A response for a branch (msg), or a local timeout (msg NULL,
	 * status 408). The branch's state has been updated already. */
	void (*on_response)(struct txn *txn, struct txn_branch *br,
			    struct sip_msg *msg, unsigned status);
	/* The txn is about to be freed. */
	void (*on_free)(struct txn *txn);
};

struct txn {
	struct hash_node by_key;
	struct hash_node by_id;
	uint32_t id;
	enum sip_method method;
	char *key;
	size_t key_len;
	enum txn_uas_state uas_state;
	struct tp_flow uas_flow;	/* responses go here */
	char *req;			/* copy of the request as received */
	size_t req_len;
	char *resp;			/* last response sent upstream */
	size_t resp_len;
	unsigned resp_status;
	char to_tag[24];		/* for responses we generate */
	uint64_t interval;
	struct loop_timer uas_retrans;	/* G */
	struct loop_timer uas_end;	/* H / I / J / L */
	unsigned nbranches;
	struct txn_branch *branch[TXN_MAX_BRANCHES];	/* allocated per branch */
	uint64_t created;
	const struct txn_ops *ops;
	void *user;
	bool freeing;
};

struct txn_stats {
	uint64_t created, freed, retrans_absorbed, resp_unmatched;
	uint64_t timeouts, cancels_sent;
	unsigned active;
};

int txn_init(struct loop *loop, struct transport *tp, unsigned max_txns);
void txn_close(void);
const struct txn_stats *txn_stats(void);

/* A retransmission of a request we already have a txn for? (ACK and
 * CANCEL never match their INVITE here.) Re-sends the last response. */
struct txn *txn_find_request(const struct sip_msg *msg);
/* The INVITE txn that a CANCEL (or a non-2xx ACK) refers to. */
struct txn *txn_find_invite(const struct sip_msg *msg);

/* New server-side txn for msg (copied). NULL when too many (answer 503). */
struct txn *txn_create(const struct sip_msg *msg, const struct tp_flow *resp_flow,
		       const struct txn_ops *ops, void *user);

/* Send a response upstream (the txn keeps a copy for retransmission). */
int txn_respond(struct txn *txn, unsigned status, const char *buf,
		size_t len);
/* A non-2xx ACK arrived for this INVITE txn. */
void txn_ack(struct txn *txn);

/* Add a branch; fills br->branch_id (our Via branch, unique, carrying a
 * loop-detection hash). Then the caller builds the request with that
 * branch and calls txn_branch_send. NULL when the branch table is full. */
struct txn_branch *txn_branch_add(struct txn *txn, uint32_t loop_hash);
int txn_branch_send(struct txn_branch *br, const struct tp_flow *flow,
		    const char *buf, size_t len);
/* Cancel a pending INVITE branch (now if it is proceeding, else once a
 * provisional arrives, RFC 3261 9.1). */
void txn_branch_cancel(struct txn_branch *br);
void txn_cancel_all(struct txn *txn);
bool txn_all_branches_done(const struct txn *txn);

/* Match a response to its branch by our top Via branch. NULL if none. */
struct txn_branch *txn_match_response(const struct sip_msg *msg);
/* Update a branch with a matched response: provisional, final (sends the
 * ACK for a non-2xx INVITE final), or response to our CANCEL. Returns true
 * when the response must not be passed up (CANCEL response, retransmitted
 * final). */
bool txn_branch_on_response(struct txn_branch *br, const struct sip_msg *msg);
/* Free the txn if its server side and all branches are terminated. */
void txn_check_free(struct txn *txn);

/* Our branch ids start with this; the 8 hex digits after it are the
 * loop-detection hash. */
#define TXN_BRANCH_PREFIX "z9hG4bKph"

#endif
