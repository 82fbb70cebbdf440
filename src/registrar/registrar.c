/*
 * registrar.c - bindings in memory, batched persistence (see registrar.h).
 *
 * Why memory first: lookups happen on every call and must not touch disk.
 * Every change marks the AOR dirty; a 200 ms timer writes all dirty AORs
 * in one SQLite transaction (their current bindings are upserted, removed
 * ones deleted), so a burst of REGISTERs costs one fsync-free commit (WAL,
 * synchronous=NORMAL). A crash loses at most the last 200 ms of changes;
 * phones re-register anyway. Expiry is a once-a-second sweep: O(bindings)
 * per second, which is cheap next to the traffic that created them (a
 * timer wheel is the next step if this ever shows in a profile).
 *
 * Which binding a Contact names (RFC 3261 10.3 step 7 compares URIs):
 * a NAT'ed phone's Contact is a private address, and phones behind
 * different NATs often send the same one (sip:alice@192.168.1.10:5060 is
 * a common default). So when the REGISTER or the binding is NAT'ed
 * (behind-nat or nonat-suspect) and no +sip.instance identifies the
 * device, a binding is its Contact URI *and* the public IP it registered
 * from (same_place). Not the port: a NAT that picked a new mapping must
 * refresh the phone's binding, not add a second one. What this gives up:
 * a home whose public IP changes leaves its old binding to expire
 * (nated_max_expires keeps that short), and two homes behind one
 * carrier-grade NAT with the same private Contact are one binding until
 * their phones send +sip.instance. Contact: * and Expires: 0 follow the
 * same rule, so a phone in one home never unregisters the other home's.
 */
#include "registrar/registrar.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alarm/alarm.h"
#include "conf/conf.h"
#include "core/loop.h"
#include "log/log.h"
#include "nat/nat.h"
#include "store/store.h"
#include "util/addr.h"

#define FLUSH_MS 200

/* Reference count of bindings per public IP (reg_knows_ip). */
struct ip_ref {
	struct hash_node node;
	struct sockaddr_storage ip;	/* port 0 */
	unsigned refs;
};

struct pending_del {
	struct pending_del *next;
	uint64_t uid;
};

static struct {
	struct loop *loop;
	struct store *store;
	const struct conf *conf;
	struct hash aors;
	struct hash contacts;
	struct hash ips;
	struct hash ids;
	uint32_t next_id;
	uint64_t next_uid;	/* store keys: above every uid in the store */
	struct loop_timer sweep;
	struct loop_timer flush;
	struct reg_aor **dirty;
	size_t ndirty, dirty_cap;
	struct pending_del *dels;
	struct reg_stats stats;
} R;

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

const struct reg_stats *reg_stats(void)
{
	return &R.stats;
}

void reg_set_conf(const struct conf *conf)
{
	R.conf = conf;
}

static uint64_t aor_hash(const char *aor)
{
	return hash_bytes_lower(HASH_SEED, aor, strlen(aor));
}

struct reg_aor *reg_lookup(const char *aor)
{
	uint64_t h = aor_hash(aor);

	for (struct hash_node *n = hash_bucket(&R.aors, h); n; n = n->next) {
		struct reg_aor *a = container_of(n, struct reg_aor, node);
		if (n->hash == h && strcasecmp(a->aor, aor) == 0)
			return a;
	}
	return NULL;
}

static struct reg_aor *aor_get(const char *aor)
{
	struct reg_aor *a = reg_lookup(aor);

	if (a)
		return a;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->aor = strdup(aor);
	if (!a->aor) {
		free(a);
		return NULL;
	}
	hash_insert(&R.aors, &a->node, aor_hash(aor));
	R.stats.aors++;
	return a;
}

static void mark_dirty(struct reg_aor *a)
{
	for (size_t i = 0; i < R.ndirty; i++)
		if (R.dirty[i] == a)
			return;
	if (R.ndirty == R.dirty_cap) {
		size_t cap = R.dirty_cap ? R.dirty_cap * 2 : 64;
		struct reg_aor **d = realloc(R.dirty, cap * sizeof(*d));
		if (!d)
			return;
		R.dirty = d;
		R.dirty_cap = cap;
	}
	R.dirty[R.ndirty++] = a;
	if (!loop_timer_armed(&R.flush))
		loop_timer_start(R.loop, &R.flush, FLUSH_MS);
}

static void unmark_dirty(struct reg_aor *a)
{
	for (size_t i = 0; i < R.ndirty; i++) {
		if (R.dirty[i] == a) {
			R.dirty[i] = R.dirty[--R.ndirty];
			return;
		}
	}
}

static void queue_delete(uint64_t uid)
{
	struct pending_del *d = calloc(1, sizeof(*d));

	if (!d)
		return;
	d->uid = uid;
	d->next = R.dels;
	R.dels = d;
	if (!loop_timer_armed(&R.flush))
		loop_timer_start(R.loop, &R.flush, FLUSH_MS);
}

static struct ip_ref *ip_find(const struct sockaddr_storage *sa)
{
	uint64_t h = addr_ip_hash(sa);

	for (struct hash_node *n = hash_bucket(&R.ips, h); n; n = n->next) {
		struct ip_ref *r = container_of(n, struct ip_ref, node);
		if (n->hash == h && addr_ip_eq(&r->ip, sa))
			return r;
	}
	return NULL;
}

bool reg_knows_ip(const struct sockaddr_storage *ip)
{
	return ip_find(ip) != NULL;
}

static void ip_ref(const struct sockaddr_storage *sa, int delta)
{
	struct ip_ref *r = ip_find(sa);

	if (!r && delta > 0) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return;
		r->ip = *sa;
		addr_set_port(&r->ip, 0);
		hash_insert(&R.ips, &r->node, addr_ip_hash(sa));
	}
	if (!r)
		return;
	if (delta > 0) {
		r->refs++;
	} else if (--r->refs == 0) {
		hash_remove(&R.ips, &r->node);
		free(r);
	}
}

static void index_id(struct reg_binding *b)
{
	do {
		b->id = ++R.next_id;
	} while (!b->id || reg_find_id(b->id));
	hash_insert(&R.ids, &b->by_id, hash_bytes(HASH_SEED, &b->id, sizeof(b->id)));
}

struct reg_binding *reg_find_id(uint32_t id)
{
	uint64_t h = hash_bytes(HASH_SEED, &id, sizeof(id));

	for (struct hash_node *n = hash_bucket(&R.ids, h); n; n = n->next) {
		struct reg_binding *b = container_of(n, struct reg_binding, by_id);
		if (n->hash == h && b->id == id)
			return b;
	}
	return NULL;
}

void reg_foreach(void (*fn)(struct reg_binding *b, void *arg), void *arg)
{
	for (size_t i = 0; i < R.aors.nbuckets; i++)
		for (struct hash_node *n = R.aors.buckets[i]; n; n = n->next)
			for (struct reg_binding *b = container_of(n, struct reg_aor,
								  node)->bindings;
			     b; b = b->next)
				fn(b, arg);
}

static void index_contact(struct reg_binding *b)
{
	hash_insert(&R.contacts, &b->by_contact,
		    hash_bytes(HASH_SEED, b->contact, strlen(b->contact)));
}

struct reg_binding *reg_find_contact(struct pl uri)
{
	uint64_t h = hash_pl(HASH_SEED, uri);
	struct reg_binding *found = NULL;

	for (struct hash_node *n = hash_bucket(&R.contacts, h); n; n = n->next) {
		struct reg_binding *b = container_of(n, struct reg_binding,
						     by_contact);
		if (n->hash != h || !pl_eq_str(uri, b->contact))
			continue;
		/* One phone's lines share a flow; the same private URI from
		 * two public IPs is two homes, and the URI cannot say which. */
		if (found && !addr_ip_eq(&found->flow.remote, &b->flow.remote))
			return NULL;
		if (!found)
			found = b;
	}
	return found;
}

/* Drop the strings a REGISTER sets (and the contact index entry). */
static void binding_clear(struct reg_binding *b)
{
	if (b->contact)
		hash_remove(&R.contacts, &b->by_contact);
	free(b->contact);
	free(b->call_id);
	free(b->path);
	free(b->user_agent);
	b->contact = b->call_id = b->path = b->user_agent = NULL;
}

static void binding_free(struct reg_binding *b)
{
	if (b->id)
		hash_remove(&R.ids, &b->by_id);
	if (b->ip_counted)
		ip_ref(&b->flow.remote, -1);
	binding_clear(b);
	free(b);
}

static void aor_maybe_free(struct reg_aor *a)
{
	if (a->bindings)
		return;
	unmark_dirty(a);
	hash_remove(&R.aors, &a->node);
	R.stats.aors--;
	free(a->aor);
	free(a);
}

/* Unlink and free b (queues its deletion from the store). */
static void binding_remove(struct reg_aor *a, struct reg_binding *b)
{
	struct reg_binding **pp;

	for (pp = &a->bindings; *pp; pp = &(*pp)->next) {
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	}
	a->count--;
	R.stats.bindings--;
	queue_delete(b->uid);
	binding_free(b);
}

static void to_store(const struct reg_binding *b, struct store_binding *sb)
{
	char *tp;

	memset(sb, 0, sizeof(*sb));
	sb->uid = b->uid;
	snprintf(sb->aor, sizeof(sb->aor), "%s", b->aor->aor);
	snprintf(sb->contact, sizeof(sb->contact), "%s", b->contact);
	snprintf(sb->instance, sizeof(sb->instance), "%s", b->instance);
	snprintf(sb->call_id, sizeof(sb->call_id), "%s", b->call_id);
	sb->cseq = b->cseq;
	sb->expires_at = b->expires_at;
	sb->q1000 = b->q1000;
	snprintf(sb->path, sizeof(sb->path), "%s", b->path ? b->path : "");
	snprintf(sb->user_agent, sizeof(sb->user_agent), "%s",
		 b->user_agent ? b->user_agent : "");
	tp = sb->transport;
	snprintf(tp, sizeof(sb->transport), "%s", tp_proto_name(b->flow.proto));
	addr_str(&b->flow.remote, sb->remote, sizeof(sb->remote));
	addr_str(&b->local, sb->local, sizeof(sb->local));
	snprintf(sb->verdict, sizeof(sb->verdict), "%s", b->verdict);
	snprintf(sb->node, sizeof(sb->node), "%s", R.conf->node_id);
}

static void flush(void *arg)
{
	struct store_binding sb;

	(void)arg;
	if (!R.store || (!R.ndirty && !R.dels))
		return;
	if (store_begin(R.store))
		return;
	while (R.dels) {
		struct pending_del *d = R.dels;
		R.dels = d->next;
		store_binding_del(R.store, d->uid);
		free(d);
	}
	for (size_t i = 0; i < R.ndirty; i++) {
		for (struct reg_binding *b = R.dirty[i]->bindings; b; b = b->next) {
			to_store(b, &sb);
			store_binding_put(R.store, &sb);
		}
	}
	R.ndirty = 0;
	store_commit(R.store);
}

static void sweep(void *arg)
{
	int64_t now = now_s();

	(void)arg;
	for (size_t i = 0; i < R.aors.nbuckets; i++) {
		struct hash_node *n = R.aors.buckets[i], *next;
		for (; n; n = next) {
			struct reg_aor *a = container_of(n, struct reg_aor, node);
			struct reg_binding *b = a->bindings, *bn;
			next = n->next;
			for (; b; b = bn) {
				bn = b->next;
				if (b->expires_at <= now) {
					log_info("registrar",
						 "binding expired aor=%s contact=%s",
						 a->aor, b->contact);
					R.stats.expired++;
					binding_remove(a, b);
				}
			}
			aor_maybe_free(a);
		}
	}
	loop_timer_start(R.loop, &R.sweep, 1000);
}

static void restore_one(const struct store_binding *sb, void *arg)
{
	struct reg_aor *a;
	struct reg_binding *b;

	(void)arg;
	if (sb->uid > R.next_uid)
		R.next_uid = sb->uid;
	if (sb->expires_at <= now_s()) {
		queue_delete(sb->uid);	/* expired while we were down */
		return;
	}
	a = aor_get(sb->aor);
	if (!a || a->count >= REG_MAX_CONTACTS_PER_AOR)
		return;
	b = calloc(1, sizeof(*b));
	if (!b)
		return;
	b->uid = sb->uid;
	b->aor = a;
	b->contact = strdup(sb->contact);
	b->call_id = strdup(sb->call_id);
	b->path = sb->path[0] ? strdup(sb->path) : NULL;
	b->user_agent = sb->user_agent[0] ? strdup(sb->user_agent) : NULL;
	snprintf(b->instance, sizeof(b->instance), "%s", sb->instance);
	b->cseq = sb->cseq;
	b->q1000 = sb->q1000;
	b->expires_at = sb->expires_at;
	b->registered_at = now_s();
	b->flow.proto = strcmp(sb->transport, "tcp") == 0 ? TP_TCP : TP_UDP;
	b->flow.conn = 0;	/* connections do not survive a restart */
	addr_parse(&b->flow.remote, sb->remote, 5060);
	addr_parse(&b->local, sb->local, 5060);
	snprintf(b->verdict, sizeof(b->verdict), "%s", sb->verdict);
	if (!b->contact || !b->call_id) {
		free(b->contact);
		b->contact = NULL;
		binding_free(b);
		aor_maybe_free(a);
		return;
	}
	index_contact(b);
	index_id(b);
	ip_ref(&b->flow.remote, 1);
	b->ip_counted = true;
	b->next = a->bindings;
	a->bindings = b;
	a->count++;
	R.stats.bindings++;
}

int reg_init(struct loop *loop, struct store *store, const struct conf *conf)
{
	int err;

	R.loop = loop;
	R.store = store;
	R.conf = conf;
	if ((err = hash_init(&R.aors, 1024)) ||
	    (err = hash_init(&R.contacts, 1024)) ||
	    (err = hash_init(&R.ips, 1024)) ||
	    (err = hash_init(&R.ids, 1024)))
		return err;
	loop_timer_init(&R.sweep, sweep, NULL);
	loop_timer_init(&R.flush, flush, NULL);
	if (store)
		store_binding_foreach(store, restore_one, NULL);
	if (R.stats.bindings)
		log_notice("registrar", "restored %u bindings of %u AORs from the store",
			   R.stats.bindings, R.stats.aors);
	loop_timer_start(loop, &R.sweep, 1000);
	return 0;
}

void reg_close(void)
{
	flush(NULL);
	loop_timer_cancel(R.loop, &R.sweep);
	loop_timer_cancel(R.loop, &R.flush);
	for (size_t i = 0; i < R.aors.nbuckets; i++) {
		while (R.aors.buckets[i]) {
			struct reg_aor *a = container_of(R.aors.buckets[i],
							 struct reg_aor, node);
			while (a->bindings) {
				struct reg_binding *b = a->bindings;
				a->bindings = b->next;
				binding_free(b);
			}
			hash_remove(&R.aors, &a->node);
			free(a->aor);
			free(a);
		}
	}
	while (R.dels) {
		struct pending_del *d = R.dels;
		R.dels = d->next;
		free(d);
	}
	free(R.dirty);
	hash_free(&R.aors);
	hash_free(&R.contacts);
	hash_free(&R.ips);
	hash_free(&R.ids);
	memset(&R, 0, sizeof(R));
}

static char *pl_dup(struct pl x)
{
	char *s = malloc(x.l + 1);

	if (s)
		pl_strcpy(s, x.l + 1, x);
	return s;
}

static bool nated(enum nat_verdict v)
{
	return v == NAT_BEHIND || v == NAT_SUSPECT;
}

/*
 * May a REGISTER with this verdict, arriving on flow, speak for b? Always
 * when neither is NAT'ed (RFC 3261: the Contact URI is the identity);
 * otherwise only from b's public IP (see the top of this file).
 */
static bool same_place(const struct reg_binding *b, enum nat_verdict verdict,
		       const struct tp_flow *flow)
{
	if (!nated(verdict) && !nated(nat_verdict_from_name(b->verdict)))
		return true;
	return addr_ip_eq(&b->flow.remote, &flow->remote);
}

static struct reg_binding *find_binding(struct reg_aor *a, struct pl uri,
					struct pl instance,
					enum nat_verdict verdict,
					const struct tp_flow *flow)
{
	for (struct reg_binding *b = a->bindings; b; b = b->next) {
		if (instance.l && b->instance[0] &&
		    pl_eq_str(instance, b->instance))
			return b;
		if (pl_eq_str(uri, b->contact) && same_place(b, verdict, flow))
			return b;
	}
	return NULL;
}

/*
 * b belongs to another home, and the sender has a binding with the same
 * Contact URI: left out of the 200 OK, or the phone would read the other
 * home's expiry as its own.
 */
static bool shadowed(const struct reg_aor *a, const struct reg_binding *b,
		     enum nat_verdict verdict, const struct tp_flow *flow)
{
	if (same_place(b, verdict, flow))
		return false;
	for (const struct reg_binding *o = a->bindings; o; o = o->next)
		if (o != b && !strcmp(o->contact, b->contact) &&
		    same_place(o, verdict, flow))
			return true;
	return false;
}

struct appender {
	char *p;
	size_t len, cap;
	bool overflow;
};

static void app(struct appender *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void app(struct appender *a, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (a->overflow)
		return;
	va_start(ap, fmt);
	r = vsnprintf(a->p + a->len, a->cap - a->len, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= a->cap - a->len) {
		a->overflow = true;
		a->p[a->len] = '\0';
		return;
	}
	a->len += (size_t)r;
}

/* One Contact value's expiry (RFC 3261 10.3 step 6). */
static int64_t contact_expires(const struct sip_msg *msg,
			       const struct sip_addr *ca)
{
	struct pl v;
	uint64_t e;

	if (sip_param_get(ca->params, "expires", &v) &&
	    pl_u64(v, UINT32_MAX, &e) == 0)
		return (int64_t)e;
	if (msg->expires >= 0)
		return msg->expires;
	return (int64_t)R.conf->default_expires;
}

static void suspect_alarm(const char *aor,
			  const struct sockaddr_storage *remote,
			  const char *why)
{
	char r[ADDR_STRLEN], ip[ADDR_STRLEN];

	alarm_raise(ALARM_WARNING, "nonat-suspect", aor,
		    "%s registers from %s looking public, but %s. "
		    "A SIP ALG on the phone's router or STUN on the "
		    "phone is rewriting its messages: disable the "
		    "SIP ALG on the router at %s, or disable "
		    "STUN/ICE on the phone. pinhole relays its "
		    "media meanwhile.", aor, addr_str(remote, r, sizeof(r)),
		    why, addr_ip_str(remote, ip, sizeof(ip)));
}

void reg_probe_result(uint32_t id, const struct sockaddr_storage *remote,
		      bool answered, const char *why)
{
	struct reg_binding *b = reg_find_id(id);

	/* Gone, or registered again from elsewhere since: not ours. */
	if (!b || b->probe != REG_PROBE_PENDING ||
	    !addr_eq(&b->flow.remote, remote))
		return;
	b->probe = answered ? REG_PROBE_ANSWERED : REG_PROBE_FILTERED;
	if (answered) {
		size_t n = strlen(b->nat_reason);
		snprintf(b->nat_reason + n, sizeof(b->nat_reason) - n,
			 "; %s", why);
	} else {
		snprintf(b->verdict, sizeof(b->verdict), "%s",
			 nat_verdict_name(NAT_SUSPECT));
		snprintf(b->nat_reason, sizeof(b->nat_reason), "%s", why);
		suspect_alarm(b->aor->aor, remote, why);
	}
	log_info("registrar", "active check aor=%s contact=%s verdict=%s "
		 "why=\"%s\"", b->aor->aor, b->contact, b->verdict,
		 b->nat_reason);
	mark_dirty(b->aor);
}

unsigned reg_register(const struct sip_msg *msg, const char *aor,
		      const struct tp_flow *flow,
		      const struct sockaddr_storage *local,
		      char *extra, size_t cap, const char **reason)
{
	struct appender out = { extra, 0, cap, false };
	struct reg_aor *a;
	int64_t now = now_s();
	unsigned ncontacts = 0;
	bool star = false;
	char path[1024] = "";
	size_t plen = 0;
	const struct sip_hdr *ua = sip_hdr_get(msg, SIP_HDR_USER_AGENT);
	enum nat_verdict verdict;
	char nat_reason[160];

	extra[0] = '\0';
	R.stats.registers++;

	/* First pass: validate every Contact before changing anything. */
	for (int i = msg->first[SIP_HDR_CONTACT]; i >= 0;
	     i = sip_hdr_next(msg, i, SIP_HDR_CONTACT)) {
		struct sip_addr ca;
		if (sip_addr_parse(&ca, msg->hdrs[i].value)) {
			*reason = "Bad Contact";
			R.stats.rejected++;
			return 400;
		}
		if (ca.star)
			star = true;
		else if (!pl_caseeq_str(ca.uri.scheme, "sip") &&
			 !pl_caseeq_str(ca.uri.scheme, "sips")) {
			*reason = "Unsupported Contact URI Scheme";
			R.stats.rejected++;
			return 400;
		} else {
			int64_t e = contact_expires(msg, &ca);
			if (e > 0 && e < (int64_t)R.conf->min_expires) {
				app(&out, "Min-Expires: %u\r\n",
				    R.conf->min_expires);
				R.stats.rejected++;
				return 423;
			}
		}
		ncontacts++;
	}
	if (star && (ncontacts != 1 || msg->expires != 0)) {
		*reason = "Contact * needs Expires: 0 and no other Contact";
		R.stats.rejected++;
		return 400;
	}
	for (int i = msg->first[SIP_HDR_PATH]; i >= 0;
	     i = sip_hdr_next(msg, i, SIP_HDR_PATH)) {
		int r = snprintf(path + plen, sizeof(path) - plen, "%s%.*s",
				 plen ? "," : "", PL_FMT(msg->hdrs[i].value));
		if (r < 0 || (size_t)r >= sizeof(path) - plen) {
			*reason = "Path Too Long";
			return 400;
		}
		plen += (size_t)r;
	}

	verdict = nat_classify(msg, flow, R.conf, nat_reason, sizeof(nat_reason));
	a = reg_lookup(aor);
	if (star) {
		/* Remove all this sender may speak for (not another home's
		 * NAT'ed phones), unless a binding has a newer Call-ID/CSeq. */
		if (a) {
			struct reg_binding *b = a->bindings, *bn;
			for (; b; b = bn) {
				bn = b->next;
				if (!same_place(b, verdict, flow))
					continue;
				if (pl_eq_str(msg->call_id, b->call_id) &&
				    msg->cseq <= b->cseq)
					continue;
				R.stats.removals++;
				binding_remove(a, b);
			}
			log_info("registrar", "unregister all aor=%s", aor);
			mark_dirty(a);
			aor_maybe_free(a);
		}
		return 200;
	}

	if (ncontacts) {
		a = aor_get(aor);
		if (!a) {
			*reason = "Out Of Memory";
			return 500;
		}
	}
	for (int i = msg->first[SIP_HDR_CONTACT]; a && i >= 0;
	     i = sip_hdr_next(msg, i, SIP_HDR_CONTACT)) {
		struct sip_addr ca;
		struct pl inst = PL_NULL, qv;
		struct reg_binding *b;
		enum nat_verdict v = verdict;
		enum reg_probe probe = REG_PROBE_NONE;
		int64_t e;

		sip_addr_parse(&ca, msg->hdrs[i].value);
		sip_param_get(ca.params, "+sip.instance", &inst);
		b = find_binding(a, ca.uri_str, inst, verdict, flow);
		if (v == NAT_PUBLIC && flow->proto == TP_UDP &&
		    R.conf->active_check && nat_probe_wanted(&flow->remote)) {
			/* A refresh from the same place keeps what the active
			 * check found; anything new is checked again. */
			if (b && b->probe != REG_PROBE_NONE &&
			    b->flow.proto == TP_UDP &&
			    addr_eq(&b->flow.remote, &flow->remote)) {
				probe = b->probe;
				if (probe == REG_PROBE_FILTERED) {
					v = NAT_SUSPECT;
					snprintf(nat_reason, sizeof(nat_reason),
						 "%s", b->nat_reason);
				}
			} else {
				probe = REG_PROBE_PENDING;
			}
		}
		e = contact_expires(msg, &ca);
		if (e > (int64_t)R.conf->max_expires)
			e = R.conf->max_expires;
		/* A NAT'ed phone whose mapping changed should come back soon. */
		if (v >= NAT_BEHIND && R.conf->nated_max_expires &&
		    e > (int64_t)R.conf->nated_max_expires)
			e = R.conf->nated_max_expires;
		if (b && pl_eq_str(msg->call_id, b->call_id) &&
		    msg->cseq <= b->cseq) {
			*reason = "Out Of Order CSeq";
			R.stats.rejected++;
			mark_dirty(a);
			return 500;
		}
		if (e == 0) {
			if (b) {
				log_info("registrar", "unregister aor=%s contact=%s",
					 aor, b->contact);
				R.stats.removals++;
				binding_remove(a, b);
				mark_dirty(a);
			}
			continue;
		}
		if (!b) {
			if (a->count >= REG_MAX_CONTACTS_PER_AOR) {
				*reason = "Too Many Contacts";
				R.stats.rejected++;
				mark_dirty(a);
				return 403;
			}
			b = calloc(1, sizeof(*b));
			if (!b)
				break;
			b->aor = a;
			b->next = a->bindings;
			a->bindings = b;
			a->count++;
			R.stats.bindings++;
			b->registered_at = now;
			b->uid = ++R.next_uid;
			index_id(b);
		} else {
			R.stats.refreshes++;
		}
		binding_clear(b);
		b->contact = pl_dup(ca.uri_str);
		if (b->contact)
			index_contact(b);
		b->call_id = pl_dup(msg->call_id);
		b->path = plen ? strdup(path) : NULL;
		b->user_agent = ua ? pl_dup(ua->value) : NULL;
		pl_strcpy(b->instance, sizeof(b->instance), inst);
		b->cseq = msg->cseq;
		b->q1000 = 1000;
		b->ka_failures = 0;
		b->ka_sent_ms = 0;
		b->unreachable = false;
		if (sip_param_get(ca.params, "q", &qv) && qv.l) {
			double q = strtod(qv.p, NULL);
			if (q >= 0 && q <= 1)
				b->q1000 = (uint32_t)(q * 1000 + 0.5);
		}
		b->expires_at = now + e;
		if (b->ip_counted)
			ip_ref(&b->flow.remote, -1);
		b->flow = *flow;
		b->local = *local;
		ip_ref(&b->flow.remote, 1);
		b->ip_counted = true;
		if (v == NAT_SUSPECT && strcmp(b->verdict, "nonat-suspect"))
			suspect_alarm(aor, &flow->remote, nat_reason);
		snprintf(b->verdict, sizeof(b->verdict), "%s",
			 nat_verdict_name(v));
		if (probe != REG_PROBE_ANSWERED)	/* else keep its words */
			snprintf(b->nat_reason, sizeof(b->nat_reason), "%s",
				 nat_reason);
		b->probe = probe;
		if (!b->contact || !b->call_id) {
			binding_remove(a, b);
			continue;
		}
		{
			char r[ADDR_STRLEN];
			log_info("registrar",
				 "binding aor=%s contact=%s expires=%lld "
				 "transport=%s public=%s verdict=%s why=\"%s\"",
				 aor, b->contact, (long long)e,
				 tp_proto_name(flow->proto),
				 addr_str(&flow->remote, r, sizeof(r)),
				 b->verdict, b->nat_reason);
		}
		if (probe == REG_PROBE_PENDING)
			nat_probe(b);	/* before the 200 OK leaves */
		mark_dirty(a);
	}

	/* 200 OK lists every current binding (10.3 step 8). */
	a = reg_lookup(aor);
	for (struct reg_binding *b = a ? a->bindings : NULL; b; b = b->next) {
		if (shadowed(a, b, verdict, flow))
			continue;
		app(&out, "Contact: <%s>;expires=%lld", b->contact,
		    (long long)(b->expires_at - now));
		if (b->q1000 != 1000)
			app(&out, ";q=%u.%03u", b->q1000 / 1000, b->q1000 % 1000);
		if (b->instance[0])
			app(&out, ";+sip.instance=%s", b->instance);
		app(&out, "\r\n");
	}
	if (plen)
		app(&out, "Path: %s\r\n", path);
	if (a)
		aor_maybe_free(a);
	return 200;
}

json_t *reg_to_json(void)
{
	json_t *arr = json_array();
	int64_t now = now_s();

	for (size_t i = 0; i < R.aors.nbuckets; i++) {
		for (struct hash_node *n = R.aors.buckets[i]; n; n = n->next) {
			struct reg_aor *a = container_of(n, struct reg_aor, node);
			for (struct reg_binding *b = a->bindings; b; b = b->next) {
				char pub[ADDR_STRLEN], loc[ADDR_STRLEN];
				json_t *o = json_object();
				addr_str(&b->flow.remote, pub, sizeof(pub));
				addr_str(&b->local, loc, sizeof(loc));
				json_object_set_new(o, "aor", json_string(a->aor));
				json_object_set_new(o, "contact", json_string(b->contact));
				json_object_set_new(o, "public", json_string(pub));
				json_object_set_new(o, "transport",
						    json_string(tp_proto_name(b->flow.proto)));
				json_object_set_new(o, "local", json_string(loc));
				json_object_set_new(o, "private_contact",
						    json_string(b->contact));
				json_object_set_new(o, "verdict", json_string(b->verdict));
				json_object_set_new(o, "nat_reason", json_string(b->nat_reason));
				{
					char why[160];
					const char *nb = "none";
					if (!strcmp(b->verdict, "behind-nat") ||
					    !strcmp(b->verdict, "nonat-suspect"))
						nb = nat_behaviour(&b->flow.remote,
								   why, sizeof(why));
					else
						snprintf(why, sizeof(why),
							 "no NAT between us");
					json_object_set_new(o, "nat_behaviour",
							    json_string(nb));
					json_object_set_new(o, "nat_behaviour_why",
							    json_string(why));
				}
				json_object_set_new(o, "last_keepalive",
						    b->ka_answered ? json_integer(b->ka_answered) : json_null());
				json_object_set_new(o, "keepalive_failures", json_integer(b->ka_failures));
				json_object_set_new(o, "reachable", json_boolean(!b->unreachable));
				json_object_set_new(o, "expires",
						    json_integer(b->expires_at - now));
				json_object_set_new(o, "user_agent",
						    b->user_agent ? json_string(b->user_agent)
								  : json_null());
				json_object_set_new(o, "node",
						    json_string(R.conf->node_id));
				json_object_set_new(o, "q", json_real(b->q1000 / 1000.0));
				json_object_set_new(o, "call_id", json_string(b->call_id));
				json_object_set_new(o, "cseq", json_integer(b->cseq));
				if (b->path)
					json_object_set_new(o, "path", json_string(b->path));
				if (b->instance[0])
					json_object_set_new(o, "instance",
							    json_string(b->instance));
				json_array_append_new(arr, o);
			}
		}
	}
	return arr;
}
