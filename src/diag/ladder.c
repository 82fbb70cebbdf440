/*
 * ladder.c - per-call SIP ladders (see ladder.h).
 *
 * Why: "registers but cannot call" and "one-way audio" are answered by
 * reading the messages of one call as they crossed the wire: what the
 * phone sent, what we forwarded (with our Via, Record-Route, Contact and
 * SDP edits), what came back and from where. The debug log has all that
 * but only when debug was on before the call, and mixed with everything
 * else; a ladder is always there for the last calls.
 *
 * Shape. A ladder is one Call-ID: a fixed array of LADDER_MSGS_MAX message
 * pointers, each message one malloc holding its metadata and the text.
 * Ladders live in one hash by Call-ID (compared case-sensitively, RFC 3261
 * 20.8) and in one of two rings, oldest first:
 *   calls  - Call-IDs first seen with an INVITE; [admin] ladder_calls of
 *            them, LADDER_CALLS_BYTES of memory;
 *   other  - everything else (REGISTER, OPTIONS, SUBSCRIBE/NOTIFY, a BYE
 *            whose INVITE was evicted): a quarter as many, its own memory,
 *            so a thousand phones refreshing their registrations never
 *            push a call out, and "phone cannot register" still has its
 *            REGISTER/401/REGISTER/403 exchange to show.
 * A new Call-ID in a full ring evicts that ring's oldest ladder (oldest by
 * first message, not by last activity: a long call that is still up keeps
 * its place only as long as fewer than N calls started after it; the
 * live-calls view covers those).
 *
 * Bounds. A message keeps at most LADDER_TEXT_MAX bytes (cut on a UTF-8
 * boundary; its wire size is kept too). A ladder keeps the first
 * LADDER_KEEP_FIRST messages (the call set-up, where most failures are)
 * and the latest rest; messages in between are freed and counted, so a
 * long call with session refreshes or INFO DTMF shows its start and its
 * end. Worst case per ring is its byte budget; when a ring passes it, its
 * oldest ladders go first.
 *
 * Cost on the hot path, only when ladder_calls > 0: one hash lookup and
 * one malloc + memcpy per message (one more malloc per new Call-ID, one
 * free per evicted message). Received messages come parsed from the
 * transport; sent ones are parsed here once (the parser allocates
 * nothing) to find their Call-ID. Keepalive OPTIONS (our branch prefix)
 * and their answers are skipped, as are CRLF keepalives (the transport
 * does not hand those over) and messages without a Call-ID.
 *
 * Not optimised: the list for the API is built by walking both rings;
 * at a few hundred ladders that is nothing next to the JSON encoding.
 */
#include "diag/ladder.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log/log.h"
#include "util/addr.h"
#include "util/hash.h"

/* nat/keepalive.c's branch prefix for its OPTIONS pings. */
#define KEEPALIVE_BRANCH "z9hG4bKphka."
#define FIRST_LINE_MAX 512

struct ladder_msg {
	int64_t t_ms;			/* unix milliseconds */
	struct sockaddr_storage local, remote;
	uint32_t size;			/* bytes on the wire */
	uint32_t len;			/* bytes kept in text */
	uint32_t first_len;		/* first line, within text */
	bool sent;
	enum tp_proto proto;
	char text[];			/* len bytes + NUL */
};

struct ring;

struct ladder {
	struct hash_node node;
	struct ladder *older, *newer;	/* ring order, by first message */
	struct ring *ring;
	uint64_t seq;			/* creation order across rings */
	int64_t started, last;		/* unix ms of first and last message */
	size_t bytes;			/* this ladder's share of ring->bytes */
	uint32_t dropped;
	unsigned nmsgs;
	struct ladder_msg *msgs[LADDER_MSGS_MAX];
	size_t call_id_len;
	char call_id[];			/* call_id_len bytes + NUL */
};

struct ring {
	const char *kind;		/* "call" / "other" */
	struct ladder *oldest, *newest;
	unsigned count, max;
	size_t bytes, budget;
};

static struct {
	unsigned limit;			/* [admin] ladder_calls; 0 = off */
	struct hash by_id;
	struct ring calls, other;
	uint64_t next_seq;
	struct ladder_stats stats;
	struct sip_msg parsed;		/* sent messages are parsed here */
} L = {
	.calls = { .kind = "call", .budget = LADDER_CALLS_BYTES },
	.other = { .kind = "other", .budget = LADDER_OTHER_BYTES },
};

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t id_hash(const char *id, size_t len)
{
	return hash_bytes(HASH_SEED, id, len);
}

static struct ladder *find(const char *id, size_t len)
{
	uint64_t h;

	if (!L.by_id.buckets)
		return NULL;
	h = id_hash(id, len);
	for (struct hash_node *n = hash_bucket(&L.by_id, h); n; n = n->next) {
		struct ladder *ld = container_of(n, struct ladder, node);

		if (n->hash == h && ld->call_id_len == len &&
		    memcmp(ld->call_id, id, len) == 0)
			return ld;
	}
	return NULL;
}

static size_t msg_bytes(const struct ladder_msg *m)
{
	return sizeof(*m) + m->len + 1;
}

static void account(struct ladder *ld, size_t bytes, bool add)
{
	if (add) {
		ld->bytes += bytes;
		ld->ring->bytes += bytes;
		L.stats.bytes += bytes;
	} else {
		ld->bytes -= bytes;
		ld->ring->bytes -= bytes;
		L.stats.bytes -= bytes;
	}
}

static void ladder_free(struct ladder *ld)
{
	struct ring *r = ld->ring;

	for (unsigned i = 0; i < ld->nmsgs; i++)
		free(ld->msgs[i]);
	hash_remove(&L.by_id, &ld->node);
	if (ld->older)
		ld->older->newer = ld->newer;
	else
		r->oldest = ld->newer;
	if (ld->newer)
		ld->newer->older = ld->older;
	else
		r->newest = ld->older;
	r->count--;
	r->bytes -= ld->bytes;
	L.stats.bytes -= ld->bytes;
	if (r == &L.calls)
		L.stats.calls--;
	else
		L.stats.others--;
	free(ld);
}

/* Evict the oldest ladders of r (never keep) until it has room for one
 * more ladder and is within its byte budget. */
static void ring_trim(struct ring *r, const struct ladder *keep,
		      bool room_for_new)
{
	while (r->oldest && r->oldest != keep &&
	       (r->count > r->max || (room_for_new && r->count == r->max) ||
		r->bytes > r->budget)) {
		ladder_free(r->oldest);
		L.stats.evicted++;
	}
}

static struct ladder *ladder_new(const char *id, size_t len, bool is_call)
{
	struct ring *r = is_call ? &L.calls : &L.other;
	struct ladder *ld;

	ring_trim(r, NULL, true);
	ld = calloc(1, sizeof(*ld) + len + 1);
	if (!ld)
		return NULL;
	memcpy(ld->call_id, id, len);
	ld->call_id_len = len;
	ld->ring = r;
	ld->seq = L.next_seq++;
	ld->older = r->newest;
	if (r->newest)
		r->newest->newer = ld;
	else
		r->oldest = ld;
	r->newest = ld;
	r->count++;
	account(ld, sizeof(*ld) + len + 1, true);
	if (is_call)
		L.stats.calls++;
	else
		L.stats.others++;
	hash_insert(&L.by_id, &ld->node, id_hash(id, len));
	return ld;
}

/* Keep the first LADDER_KEEP_FIRST messages and the latest others. */
static void ladder_append(struct ladder *ld, struct ladder_msg *m)
{
	if (ld->nmsgs == LADDER_MSGS_MAX) {
		struct ladder_msg *gone = ld->msgs[LADDER_KEEP_FIRST];

		account(ld, msg_bytes(gone), false);
		free(gone);
		memmove(&ld->msgs[LADDER_KEEP_FIRST],
			&ld->msgs[LADDER_KEEP_FIRST + 1],
			(LADDER_MSGS_MAX - LADDER_KEEP_FIRST - 1) *
			sizeof(ld->msgs[0]));
		ld->nmsgs--;
		ld->dropped++;
		L.stats.dropped++;
	}
	ld->msgs[ld->nmsgs++] = m;
	account(ld, msg_bytes(m), true);
	ld->last = m->t_ms;
	if (ld->nmsgs == 1)
		ld->started = m->t_ms;
}

/* The length to keep of buf: at most LADDER_TEXT_MAX, not inside a UTF-8
 * sequence. */
static size_t keep_len(const char *buf, size_t len)
{
	size_t n = len;

	if (n <= LADDER_TEXT_MAX)
		return n;
	n = LADDER_TEXT_MAX;
	while (n > LADDER_TEXT_MAX - 4 && ((unsigned char)buf[n] & 0xc0) == 0x80)
		n--;
	return n;
}

static bool is_keepalive(const struct sip_msg *msg)
{
	struct pl b = msg->via.branch;

	return b.l >= sizeof(KEEPALIVE_BRANCH) - 1 &&
	       memcmp(b.p, KEEPALIVE_BRANCH, sizeof(KEEPALIVE_BRANCH) - 1) == 0;
}

void ladder_tap(void *arg, bool sent, enum tp_proto proto,
		const struct sockaddr_storage *local,
		const struct sockaddr_storage *remote, const char *buf,
		size_t len, const struct sip_msg *msg)
{
	struct ladder *ld;
	struct ladder_msg *m;
	size_t keep;
	const char *eol;

	(void)arg;
	if (!L.limit || !len)
		return;
	if (!msg) {
		if (sip_msg_parse(&L.parsed, buf, len, false) != 0) {
			L.stats.skipped++;
			return;
		}
		msg = &L.parsed;
	}
	if (!msg->call_id.p || !msg->call_id.l ||
	    msg->call_id.l > LADDER_CALL_ID_MAX || is_keepalive(msg)) {
		L.stats.skipped++;
		return;
	}
	ld = find(msg->call_id.p, msg->call_id.l);
	if (!ld) {
		bool is_call = msg->cseq_method_id == SIP_INVITE ||
			       (msg->is_request && msg->method_id == SIP_INVITE);

		ld = ladder_new(msg->call_id.p, msg->call_id.l, is_call);
		if (!ld)
			return;
	}
	keep = keep_len(buf, len);
	m = malloc(sizeof(*m) + keep + 1);
	if (!m)
		return;
	m->t_ms = wall_ms();
	m->local = *local;
	m->remote = *remote;
	m->size = (uint32_t)len;
	m->len = (uint32_t)keep;
	m->sent = sent;
	m->proto = proto;
	memcpy(m->text, buf, keep);
	m->text[keep] = '\0';
	eol = memchr(m->text, '\n', keep);
	m->first_len = (uint32_t)(eol ? (size_t)(eol - m->text) : keep);
	if (m->first_len && m->text[m->first_len - 1] == '\r')
		m->first_len--;
	if (m->first_len > FIRST_LINE_MAX)
		m->first_len = FIRST_LINE_MAX;
	ladder_append(ld, m);
	L.stats.recorded++;
	ring_trim(ld->ring, ld, false);
}

static void ring_set_max(struct ring *r, unsigned max)
{
	r->max = max;
	ring_trim(r, NULL, false);
}

void ladder_set_limit(unsigned calls)
{
	if (calls && !L.by_id.buckets && hash_init(&L.by_id, 256)) {
		log_warn("ladder", "out of memory: SIP ladders off");
		calls = 0;
	}
	L.limit = calls;
	ring_set_max(&L.calls, calls);
	ring_set_max(&L.other, calls ? (calls / 4 ? calls / 4 : 1) : 0);
}

void ladder_close(void)
{
	ladder_set_limit(0);
	hash_free(&L.by_id);
	memset(&L.by_id, 0, sizeof(L.by_id));
}

const struct ladder_stats *ladder_stats(void)
{
	return &L.stats;
}

/* JSON */

/* A JSON string from network bytes: jansson wants UTF-8, so bytes that
 * are not are shown as '?'. */
static json_t *json_text(const char *p, size_t n)
{
	json_t *s = json_stringn(p, n);
	char *copy;

	if (s)
		return s;
	copy = malloc(n + 1);
	if (!copy)
		return json_string("");
	for (size_t i = 0; i < n; i++)
		copy[i] = (unsigned char)p[i] >= 0x80 ? '?' : p[i];
	s = json_stringn(copy, n);
	free(copy);
	return s ? s : json_string("");
}

static json_t *json_addr(const struct sockaddr_storage *sa)
{
	char a[ADDR_STRLEN];

	return json_string(addr_str(sa, a, sizeof(a)));
}

static json_t *summary_json(const struct ladder *ld)
{
	const struct ladder_msg *first = ld->nmsgs ? ld->msgs[0] : NULL;
	json_t *o = json_object();

	json_object_set_new(o, "call_id", json_text(ld->call_id,
						    ld->call_id_len));
	json_object_set_new(o, "kind", json_string(ld->ring->kind));
	json_object_set_new(o, "first_line", first ?
			    json_text(first->text, first->first_len) :
			    json_string(""));
	json_object_set_new(o, "time", json_integer(ld->started));
	json_object_set_new(o, "last", json_integer(ld->last));
	json_object_set_new(o, "messages",
			    json_integer(ld->nmsgs + ld->dropped));
	json_object_set_new(o, "dropped", json_integer(ld->dropped));
	return o;
}

json_t *ladder_list_json(void)
{
	json_t *arr = json_array();
	const struct ladder *c = L.calls.newest, *o = L.other.newest;

	/* Merge the two rings, each newest first. */
	while (c || o) {
		const struct ladder **pick = !o || (c && c->seq > o->seq) ?
					     &c : &o;

		json_array_append_new(arr, summary_json(*pick));
		*pick = (*pick)->older;
	}
	return arr;
}

static json_t *msg_json(const struct ladder_msg *m)
{
	json_t *o = json_object();

	json_object_set_new(o, "t", json_integer(m->t_ms));
	json_object_set_new(o, "dir", json_string(m->sent ? "out" : "in"));
	json_object_set_new(o, "proto", json_string(tp_proto_name(m->proto)));
	json_object_set_new(o, "local", json_addr(&m->local));
	json_object_set_new(o, "remote", json_addr(&m->remote));
	json_object_set_new(o, "first_line", json_text(m->text, m->first_len));
	json_object_set_new(o, "text", json_text(m->text, m->len));
	json_object_set_new(o, "size", json_integer(m->size));
	json_object_set_new(o, "truncated", json_boolean(m->len < m->size));
	return o;
}

json_t *ladder_json(const char *call_id)
{
	const struct ladder *ld;
	json_t *o, *msgs;

	if (!call_id || !L.limit)
		return NULL;
	ld = find(call_id, strlen(call_id));
	if (!ld)
		return NULL;
	o = summary_json(ld);
	msgs = json_array();
	for (unsigned i = 0; i < ld->nmsgs; i++)
		json_array_append_new(msgs, msg_json(ld->msgs[i]));
	json_object_set_new(o, "messages", msgs);
	if (ld->dropped)
		json_object_set_new(o, "dropped_at",
				    json_integer(LADDER_KEEP_FIRST));
	return o;
}
