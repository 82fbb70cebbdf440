/*
 * txn.c - proxy transactions (see txn.h).
 *
 * One record holds the server side and its branches, like a SER/Kamailio
 * "cell": a proxy never needs a client transaction without its server
 * transaction, and keeping them together makes CANCEL, best-response
 * selection and cleanup local. Branch ids are TXN_BRANCH_PREFIX + 8 hex
 * loop hash + '.' + txn id (hex) + '.' + branch index, so a response finds
 * its branch with one hash lookup by id, no string table.
 *
 * Memory: the request and the last response are copied once into malloc'd
 * buffers per txn (they must outlive the receive buffer); the number of
 * live txns is capped (max_txns) so that a flood yields 503s, not growth.
 *
 * RFC 6026: after a 2xx the INVITE server side stays "Accepted" for 64*T1,
 * absorbing retransmitted INVITEs; retransmitted 2xx from downstream are
 * forwarded by the proxy (it sees them via on_response).
 */
#include "txn/txn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "util/addr.h"

static struct {
	struct loop *loop;
	struct transport *tp;
	struct hash by_key;
	struct hash by_id;
	uint32_t next_id;
	unsigned max;
	struct txn_stats stats;
} T;

static void txn_maybe_free(struct txn *txn);
/* Stored requests re-parsed to build CANCEL and ACK (one thread). */
static struct sip_msg scratch_msg;
static void uas_end(void *arg);
static void uas_retrans(void *arg);
static void branch_done(struct txn_branch *br);

const struct txn_stats *txn_stats(void)
{
	return &T.stats;
}

int txn_init(struct loop *loop, struct transport *tp, unsigned max_txns)
{
	T.loop = loop;
	T.tp = tp;
	T.max = max_txns;
	T.next_id = (uint32_t)rand();
	if (hash_init(&T.by_key, 4096) || hash_init(&T.by_id, 4096))
		return ENOMEM;
	return 0;
}

static struct txn *find_by_id(uint32_t id)
{
	uint64_t h = hash_bytes(HASH_SEED, &id, sizeof(id));

	for (struct hash_node *n = hash_bucket(&T.by_id, h); n; n = n->next) {
		struct txn *t = container_of(n, struct txn, by_id);
		if (n->hash == h && t->id == id)
			return t;
	}
	return NULL;
}

static void free_txn(struct txn *txn)
{
	if (txn->ops && txn->ops->on_free)
		txn->ops->on_free(txn);
	loop_timer_cancel(T.loop, &txn->uas_retrans);
	loop_timer_cancel(T.loop, &txn->uas_end);
	for (unsigned i = 0; i < txn->nbranches; i++) {
		struct txn_branch *br = txn->branch[i];
		loop_timer_cancel(T.loop, &br->retrans);
		loop_timer_cancel(T.loop, &br->timeout);
		loop_timer_cancel(T.loop, &br->timer_c);
		loop_timer_cancel(T.loop, &br->cancel_timer);
		free(br->req);
		free(br->cancel);
		free(br->ack);
		free(br);
	}
	hash_remove(&T.by_key, &txn->by_key);
	hash_remove(&T.by_id, &txn->by_id);
	free(txn->key);
	free(txn->req);
	free(txn->resp);
	free(txn);
	T.stats.freed++;
	T.stats.active--;
}

void txn_close(void)
{
	for (size_t i = 0; i < T.by_id.nbuckets; i++)
		while (T.by_id.buckets && T.by_id.buckets[i])
			free_txn(container_of(T.by_id.buckets[i], struct txn,
					      by_id));
	hash_free(&T.by_key);
	hash_free(&T.by_id);
}

/* Build the server-side matching key of msg for method m (RFC 3261
 * 17.2.3; the RFC 2543 fallback when the branch lacks the cookie). */
static size_t make_key(const struct sip_msg *msg, enum sip_method m,
		       char *buf, size_t cap)
{
	const struct sip_via *v = &msg->via;
	int n;

	/* Unknown methods have no name of their own in the enum: key them
	 * by the method token as received. */
	struct pl mname = m == SIP_METHOD_OTHER ? msg->method
						: pl_from_str(sip_method_name(m));

	if (v->branch.l > 7 && memcmp(v->branch.p, "z9hG4bK", 7) == 0)
		n = snprintf(buf, cap, "%.*s|%.*s|%.*s:%u", PL_FMT(mname),
			     PL_FMT(v->branch), PL_FMT(v->host), v->port);
	else
		n = snprintf(buf, cap, "%.*s|2543|%.*s|%u|%.*s|%.*s|%.*s",
			     PL_FMT(mname), PL_FMT(msg->call_id),
			     msg->cseq, PL_FMT(msg->from_tag),
			     PL_FMT(v->value), PL_FMT(msg->ruri_str));
	if (n < 0 || (size_t)n >= cap)
		return 0;
	return (size_t)n;
}

static struct txn *find_key(const char *key, size_t len)
{
	uint64_t h = hash_bytes(HASH_SEED, key, len);

	for (struct hash_node *n = hash_bucket(&T.by_key, h); n; n = n->next) {
		struct txn *t = container_of(n, struct txn, by_key);
		if (n->hash == h && t->key_len == len &&
		    memcmp(t->key, key, len) == 0)
			return t;
	}
	return NULL;
}

struct txn *txn_find_request(const struct sip_msg *msg)
{
	char key[1024];
	size_t len;
	struct txn *t;

	if (msg->method_id == SIP_ACK)
		return NULL;
	len = make_key(msg, msg->method_id, key, sizeof(key));
	if (!len)
		return NULL;
	t = find_key(key, len);
	if (t) {
		T.stats.retrans_absorbed++;
		if (t->resp && t->uas_state != TXN_UAS_TERMINATED)
			tp_send(T.tp, &t->uas_flow, t->resp, t->resp_len);
	}
	return t;
}

struct txn *txn_find_invite(const struct sip_msg *msg)
{
	char key[1024];
	size_t len = make_key(msg, SIP_INVITE, key, sizeof(key));

	return len ? find_key(key, len) : NULL;
}

struct txn *txn_create(const struct sip_msg *msg,
		       const struct tp_flow *resp_flow,
		       const struct txn_ops *ops, void *user)
{
	char key[1024];
	size_t len = make_key(msg, msg->method_id, key, sizeof(key));
	struct txn *txn;

	if (!len || T.stats.active >= T.max)
		return NULL;
	txn = calloc(1, sizeof(*txn));
	if (!txn)
		return NULL;
	txn->key = malloc(len);
	txn->req = malloc(msg->len);
	if (!txn->key || !txn->req) {
		free(txn->key);
		free(txn->req);
		free(txn);
		return NULL;
	}
	memcpy(txn->key, key, len);
	txn->key_len = len;
	memcpy(txn->req, msg->buf, msg->len);
	txn->req_len = msg->len;
	txn->method = msg->method_id;
	txn->uas_flow = *resp_flow;
	txn->ops = ops;
	txn->user = user;
	txn->created = loop_now();
	do {
		txn->id = ++T.next_id;
	} while (!txn->id || find_by_id(txn->id));
	snprintf(txn->to_tag, sizeof(txn->to_tag), "ph%08x%04x", txn->id,
		 (unsigned)(rand() & 0xffff));
	loop_timer_init(&txn->uas_retrans, uas_retrans, txn);
	loop_timer_init(&txn->uas_end, uas_end, txn);
	/* A safety net: no txn outlives this even if a peer never answers
	 * (each branch has its own B/C/F timers well inside it). */
	loop_timer_start(T.loop, &txn->uas_end,
			 msg->method_id == SIP_INVITE ? 3600 * 1000 : 120 * 1000);
	hash_insert(&T.by_key, &txn->by_key, hash_bytes(HASH_SEED, key, len));
	hash_insert(&T.by_id, &txn->by_id,
		    hash_bytes(HASH_SEED, &txn->id, sizeof(txn->id)));
	T.stats.created++;
	T.stats.active++;
	return txn;
}

/* ---- server side ---- */

static void uas_end(void *arg)
{
	struct txn *txn = arg;

	if (txn->uas_state == TXN_UAS_COMPLETED && txn->method == SIP_INVITE)
		log_info("txn", "no ACK for final response txn=%08x", txn->id);
	if (txn->uas_state < TXN_UAS_COMPLETED) {
		log_warn("txn", "txn=%08x expired without a final response",
			 txn->id);
		for (unsigned i = 0; i < txn->nbranches; i++)
			branch_done(txn->branch[i]);
	}
	txn->uas_state = TXN_UAS_TERMINATED;
	loop_timer_cancel(T.loop, &txn->uas_retrans);
	txn_maybe_free(txn);
}

static void uas_retrans(void *arg)
{
	struct txn *txn = arg;

	if (txn->uas_state != TXN_UAS_COMPLETED || !txn->resp)
		return;
	tp_send(T.tp, &txn->uas_flow, txn->resp, txn->resp_len);
	txn->interval = txn->interval * 2 < TXN_T2 ? txn->interval * 2 : TXN_T2;
	loop_timer_start(T.loop, &txn->uas_retrans, txn->interval);
}

int txn_respond(struct txn *txn, unsigned status, const char *buf,
		size_t len)
{
	char *copy;
	int err;

	if (txn->uas_state >= TXN_UAS_COMPLETED && status >= 200 &&
	    !(txn->uas_state == TXN_UAS_ACCEPTED && status < 300)) {
		return EALREADY;	/* one final response only */
	}
	copy = malloc(len);
	if (!copy)
		return ENOMEM;
	memcpy(copy, buf, len);
	free(txn->resp);
	txn->resp = copy;
	txn->resp_len = len;
	txn->resp_status = status;
	err = tp_send(T.tp, &txn->uas_flow, buf, len);

	if (status < 200) {
		txn->uas_state = TXN_UAS_PROCEEDING;
		return err;
	}
	if (txn->method == SIP_INVITE) {
		if (status < 300) {
			/* RFC 6026 Accepted: absorb INVITE retransmissions
			 * and let the 2xx retransmissions through. */
			txn->uas_state = TXN_UAS_ACCEPTED;
			loop_timer_start(T.loop, &txn->uas_end, 64 * TXN_T1);
		} else {
			txn->uas_state = TXN_UAS_COMPLETED;
			if (txn->uas_flow.proto == TP_UDP) {
				txn->interval = TXN_T1;
				loop_timer_start(T.loop, &txn->uas_retrans,
						 TXN_T1);
			}
			loop_timer_start(T.loop, &txn->uas_end, 64 * TXN_T1);
		}
	} else {
		txn->uas_state = TXN_UAS_COMPLETED;
		loop_timer_start(T.loop, &txn->uas_end,
				 txn->uas_flow.proto == TP_UDP ? 64 * TXN_T1 : 0);
	}
	return err;
}

void txn_ack(struct txn *txn)
{
	if (txn->uas_state != TXN_UAS_COMPLETED)
		return;
	txn->uas_state = TXN_UAS_CONFIRMED;
	loop_timer_cancel(T.loop, &txn->uas_retrans);
	/* Timer I: absorb ACK retransmissions for T4 (0 on TCP). */
	loop_timer_start(T.loop, &txn->uas_end,
			 txn->uas_flow.proto == TP_UDP ? TXN_T4 : 0);
}

/* ---- client side (branches) ---- */

static void branch_done(struct txn_branch *br)
{
	br->state = TXN_BR_TERMINATED;
	loop_timer_cancel(T.loop, &br->retrans);
	loop_timer_cancel(T.loop, &br->timeout);
	loop_timer_cancel(T.loop, &br->timer_c);
	loop_timer_cancel(T.loop, &br->cancel_timer);
}

static void br_retrans(void *arg)
{
	struct txn_branch *br = arg;
	uint64_t cap;

	if (br->state >= TXN_BR_COMPLETED)
		return;
	if (br->state == TXN_BR_PROCEEDING && br->txn->method == SIP_INVITE)
		return;	/* INVITE stops retransmitting on a provisional */
	tp_send(T.tp, &br->flow, br->req, br->req_len);
	cap = br->txn->method == SIP_INVITE ? UINT64_MAX : TXN_T2;
	if (br->state == TXN_BR_PROCEEDING)
		br->interval = TXN_T2;
	else
		br->interval = br->interval * 2 < cap ? br->interval * 2 : cap;
	loop_timer_start(T.loop, &br->retrans, br->interval);
}

static void br_timeout(void *arg)
{
	struct txn_branch *br = arg;
	struct txn *txn = br->txn;

	if (br->state == TXN_BR_COMPLETED) {
		branch_done(br);	/* Timer D / K fired */
		txn_maybe_free(txn);
		return;
	}
	if (br->state == TXN_BR_TERMINATED)
		return;
	T.stats.timeouts++;
	log_info("txn", "branch timeout txn=%08x branch=%u target=%s",
		 txn->id, br->idx, br->target);
	branch_done(br);
	br->silent = br->status == 0;
	br->status = 408;
	if (txn->ops && txn->ops->on_response)
		txn->ops->on_response(txn, br, NULL, 408);
	txn_maybe_free(txn);
}

static void br_timer_c(void *arg)
{
	struct txn_branch *br = arg;

	/* RFC 3261 16.8: no final response for 3 minutes: CANCEL if a
	 * provisional came, else behave as a 408. */
	if (br->state == TXN_BR_PROCEEDING) {
		txn_branch_cancel(br);
		loop_timer_start(T.loop, &br->timeout, 64 * TXN_T1);
	} else {
		br_timeout(br);
	}
}

static void br_cancel_retrans(void *arg)
{
	struct txn_branch *br = arg;

	if (!br->cancel || br->cancel_sends >= 11 ||
	    br->state >= TXN_BR_COMPLETED)
		return;
	tp_send(T.tp, &br->flow, br->cancel, br->cancel_len);
	br->cancel_sends++;
	if (br->flow.proto == TP_UDP)
		loop_timer_start(T.loop, &br->cancel_timer,
				 TXN_T1 << (br->cancel_sends < 4 ? br->cancel_sends : 3));
}

struct txn_branch *txn_branch_add(struct txn *txn, uint32_t loop_hash)
{
	struct txn_branch *br;

	if (txn->nbranches == TXN_MAX_BRANCHES)
		return NULL;
	br = calloc(1, sizeof(*br));
	if (!br)
		return NULL;
	txn->branch[txn->nbranches] = br;
	br->txn = txn;
	br->idx = txn->nbranches++;
	snprintf(br->branch_id, sizeof(br->branch_id), "%s%08x.%x.%u",
		 TXN_BRANCH_PREFIX, loop_hash, txn->id, br->idx);
	loop_timer_init(&br->retrans, br_retrans, br);
	loop_timer_init(&br->timeout, br_timeout, br);
	loop_timer_init(&br->timer_c, br_timer_c, br);
	loop_timer_init(&br->cancel_timer, br_cancel_retrans, br);
	return br;
}

int txn_branch_send(struct txn_branch *br, const struct tp_flow *flow,
		    const char *buf, size_t len)
{
	struct txn *txn = br->txn;

	br->req = malloc(len);
	if (!br->req)
		return ENOMEM;
	memcpy(br->req, buf, len);
	br->req_len = len;
	br->flow = *flow;
	br->state = TXN_BR_CALLING;
	if (tp_send(T.tp, &br->flow, buf, len)) {
		/* Immediate transport error: RFC 3261 8.1.3.1 -> 503. */
		branch_done(br);
		br->status = 503;
		return ECONNREFUSED;
	}
	if (flow->proto == TP_UDP) {
		br->interval = TXN_T1;
		loop_timer_start(T.loop, &br->retrans, TXN_T1);
	}
	loop_timer_start(T.loop, &br->timeout, 64 * TXN_T1);
	if (txn->method == SIP_INVITE)
		loop_timer_start(T.loop, &br->timer_c, TXN_TIMER_C);
	return 0;
}

bool txn_all_branches_done(const struct txn *txn)
{
	for (unsigned i = 0; i < txn->nbranches; i++)
		if (txn->branch[i]->state < TXN_BR_COMPLETED)
			return false;
	return true;
}

/*
 * A hop-by-hop request about the branch's INVITE, built from the request as
 * we sent it: CANCEL (RFC 3261 9.1) and the ACK for a non-2xx final
 * (17.1.1.3) both copy its Request-URI, top Via (our branch), Route set,
 * From, Call-ID and CSeq number. The ACK takes To from the response (it
 * carries the UAS tag), the CANCEL from the request. Result malloc'd.
 */
static int build_hop_request(struct txn_branch *br, const char *method,
			     const struct sip_msg *resp, char **out,
			     size_t *outlen)
{
	struct sip_msg *m = &scratch_msg;
	const struct sip_msg *to_src = resp ? resp : m;
	char buf[4096];
	int n, err = 0;
	size_t len;

	if (sip_msg_parse(m, br->req, br->req_len, false) ||
	    to_src->first[SIP_HDR_TO] < 0)
		return EINVAL;
	n = snprintf(buf, sizeof(buf),
		     "%s %.*s SIP/2.0\r\nVia: %.*s\r\nMax-Forwards: 70\r\n",
		     method, PL_FMT(m->ruri_str), PL_FMT(m->via.value));
	if (n < 0 || (size_t)n >= sizeof(buf))
		return ENOSPC;
	len = (size_t)n;
	for (int i = m->first[SIP_HDR_ROUTE]; !err && i >= 0;
	     i = sip_hdr_next(m, i, SIP_HDR_ROUTE)) {
		n = snprintf(buf + len, sizeof(buf) - len, "Route: %.*s\r\n",
			     PL_FMT(m->hdrs[i].value));
		if (n < 0 || (size_t)n >= sizeof(buf) - len)
			err = ENOSPC;
		else
			len += (size_t)n;
	}
	if (!err) {
		n = snprintf(buf + len, sizeof(buf) - len,
			     "From: %.*s\r\nTo: %.*s\r\nCall-ID: %.*s\r\n"
			     "CSeq: %u %s\r\nContent-Length: 0\r\n\r\n",
			     PL_FMT(m->hdrs[m->first[SIP_HDR_FROM]].value),
			     PL_FMT(to_src->hdrs[to_src->first[SIP_HDR_TO]].value),
			     PL_FMT(m->call_id), m->cseq, method);
		if (n < 0 || (size_t)n >= sizeof(buf) - len)
			err = ENOSPC;
		else
			len += (size_t)n;
	}
	if (err)
		return err;
	free(*out);
	*out = malloc(len);
	if (!*out)
		return ENOMEM;
	memcpy(*out, buf, len);
	*outlen = len;
	return 0;
}

static int build_cancel(struct txn_branch *br)
{
	return build_hop_request(br, "CANCEL", NULL, &br->cancel,
				 &br->cancel_len);
}

static int build_ack(struct txn_branch *br, const struct sip_msg *resp)
{
	return build_hop_request(br, "ACK", resp, &br->ack, &br->ack_len);
}

void txn_branch_cancel(struct txn_branch *br)
{
	if (br->txn->method != SIP_INVITE || br->cancelled ||
	    br->state >= TXN_BR_COMPLETED)
		return;
	if (br->state == TXN_BR_CALLING) {
		br->cancel_wanted = true;
		return;
	}
	br->cancelled = true;
	if (build_cancel(br)) {
		log_warn("txn", "cannot build CANCEL txn=%08x", br->txn->id);
		return;
	}
	T.stats.cancels_sent++;
	br->cancel_sends = 0;
	br_cancel_retrans(br);
	/* A UAS that never answers the CANCEL/INVITE: give up after 64*T1. */
	loop_timer_start(T.loop, &br->timeout, 64 * TXN_T1);
}

void txn_cancel_all(struct txn *txn)
{
	for (unsigned i = 0; i < txn->nbranches; i++)
		txn_branch_cancel(txn->branch[i]);
}

struct txn_branch *txn_match_response(const struct sip_msg *msg)
{
	struct pl b = msg->via.branch;
	const size_t plen = sizeof(TXN_BRANCH_PREFIX) - 1;
	char id_s[16];
	const char *dot1, *dot2;
	unsigned long id, idx;
	struct txn *txn;
	struct txn_branch *br;

	if (b.l <= plen + 9 || memcmp(b.p, TXN_BRANCH_PREFIX, plen) != 0)
		return NULL;
	b.p += plen + 9;	/* 8 hex + '.' */
	b.l -= plen + 9;
	dot1 = b.p;
	dot2 = pl_chr(b, '.');
	if (!dot2 || dot2 - dot1 > 8 || dot2 == dot1)
		return NULL;
	pl_strcpy(id_s, sizeof(id_s), (struct pl){ dot1, (size_t)(dot2 - dot1) });
	id = strtoul(id_s, NULL, 16);
	{
		uint64_t v;
		struct pl ix = { dot2 + 1, b.l - (size_t)(dot2 + 1 - b.p) };
		if (pl_u64(ix, TXN_MAX_BRANCHES - 1, &v))
			return NULL;
		idx = (unsigned long)v;
	}
	txn = find_by_id((uint32_t)id);
	if (!txn || idx >= txn->nbranches)
		return NULL;
	br = txn->branch[idx];
	/* CSeq method must match (a CANCEL's response shares the branch). */
	if (msg->cseq_method_id == SIP_CANCEL)
		return br;
	if (msg->cseq_method_id != txn->method &&
	    !(txn->method == SIP_METHOD_OTHER))
		return NULL;
	return br;
}

static void txn_maybe_free(struct txn *txn)
{
	if (txn->freeing)
		return;
	if (txn->uas_state != TXN_UAS_TERMINATED)
		return;
	for (unsigned i = 0; i < txn->nbranches; i++)
		if (txn->branch[i]->state != TXN_BR_TERMINATED)
			return;
	txn->freeing = true;
	free_txn(txn);
}

bool txn_branch_on_response(struct txn_branch *br, const struct sip_msg *msg)
{
	struct txn *txn = br->txn;
	unsigned status = msg->status;

	if (msg->cseq_method_id == SIP_CANCEL) {
		loop_timer_cancel(T.loop, &br->cancel_timer);
		return true;
	}
	if (status < 200) {
		if (br->state == TXN_BR_CALLING) {
			br->state = TXN_BR_PROCEEDING;
			if (txn->method == SIP_INVITE) {
				loop_timer_cancel(T.loop, &br->retrans);
				/* Timer B no longer applies; Timer C does. */
				loop_timer_cancel(T.loop, &br->timeout);
				if (br->cancel_wanted)
					txn_branch_cancel(br);
			}
		}
		if (txn->method == SIP_INVITE && br->state == TXN_BR_PROCEEDING &&
		    !br->cancelled)
			loop_timer_start(T.loop, &br->timer_c, TXN_TIMER_C);
		if (br->status < 200)
			br->status = status;
		return false;
	}
	if (br->state >= TXN_BR_COMPLETED) {
		/* Retransmitted final: our ACK was lost (17.1.1.2). */
		if (br->ack && status >= 300)
			tp_send(T.tp, &br->flow, br->ack, br->ack_len);
		return true;
	}
	br->status = status;
	loop_timer_cancel(T.loop, &br->retrans);
	loop_timer_cancel(T.loop, &br->timer_c);
	loop_timer_cancel(T.loop, &br->cancel_timer);
	loop_timer_cancel(T.loop, &br->timeout);
	br->state = TXN_BR_COMPLETED;
	if (txn->method == SIP_INVITE && status >= 300) {
		/* The hop-by-hop ACK is this layer's job (17.1.1.3). */
		if (build_ack(br, msg) == 0)
			tp_send(T.tp, &br->flow, br->ack, br->ack_len);
		/* Timer D absorbs retransmissions of the final. */
		loop_timer_start(T.loop, &br->timeout,
				 br->flow.proto == TP_UDP ? 32000 : 0);
	} else if (br->flow.proto == TP_UDP && txn->method != SIP_INVITE) {
		loop_timer_start(T.loop, &br->timeout, TXN_T4);	/* K */
	} else {
		loop_timer_start(T.loop, &br->timeout, 0);
	}
	return false;
}

void txn_check_free(struct txn *txn)
{
	txn_maybe_free(txn);
}
