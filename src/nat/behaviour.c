/*
 * behaviour.c - what each far-end NAT was seen to do with its mappings.
 * The relay tells us, per stream side, where the phone said it receives
 * media (its SDP: a private address and port) and where its packets really
 * came from (the latched source: the NAT's public address and mapped
 * port), and which of our ports they were sent to. The same private
 * address and port seen toward two of our ports, while the first mapping
 * was still fresh:
 *   same mapped port      -> "cone"      (endpoint-independent mapping:
 *                                         full, address- or port-restricted)
 *   different mapped port -> "symmetric" (a new mapping per destination:
 *                                         drops whatever another party or
 *                                         port sends, needs the relay)
 * One sample says only whether the NAT kept the port ("port-preserving")
 * or not. Keyed by the NAT's public IP: the behaviour belongs to the
 * router, so every phone behind it shares the verdict. Bounded: at most
 * OBS_MAX routers, least recently seen evicted first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/loop.h"
#include "nat/nat.h"
#include "util/addr.h"
#include "util/hash.h"

#define OBS_MAX 8192
#define OBS_SAMPLES 8
/* A mapping idle longer than this may have been dropped by the NAT, and a
 * cone NAT may then pick another port: no verdict from such a pair. */
#define FRESH_MS 20000

struct sample {
	struct sockaddr_storage priv;	/* from SDP, ip and port */
	uint16_t mapped, dest;		/* latched source port, our port */
	uint64_t seen_ms;		/* loop clock */
};

struct obs {
	struct hash_node node;
	struct obs *prev, *next;	/* LRU, head = newest */
	struct sockaddr_storage pub;	/* ip only */
	struct sample s[OBS_SAMPLES];
	unsigned ns, next_slot;
	const char *verdict;		/* NULL, "cone", "symmetric" */
	char why[160];
};

static struct {
	struct hash table;
	struct obs *head, *tail;
	unsigned count;
} B;

static struct obs *find(const struct sockaddr_storage *pub, uint64_t h)
{
	for (struct hash_node *n = hash_bucket(&B.table, h); n; n = n->next) {
		struct obs *o = container_of(n, struct obs, node);
		if (n->hash == h && addr_ip_eq(&o->pub, pub))
			return o;
	}
	return NULL;
}

static void lru_unlink(struct obs *o)
{
	if (o->prev)
		o->prev->next = o->next;
	else
		B.head = o->next;
	if (o->next)
		o->next->prev = o->prev;
	else
		B.tail = o->prev;
	o->prev = o->next = NULL;
}

static void lru_push(struct obs *o)
{
	o->next = B.head;
	if (B.head)
		B.head->prev = o;
	B.head = o;
	if (!B.tail)
		B.tail = o;
}

static struct obs *get(const struct sockaddr_storage *pub)
{
	uint64_t h = addr_ip_hash(pub);
	struct obs *o;

	if (!B.table.buckets && hash_init(&B.table, 256))
		return NULL;
	if ((o = find(pub, h))) {
		lru_unlink(o);
		lru_push(o);
		return o;
	}
	if (B.count >= OBS_MAX && B.tail) {
		o = B.tail;
		lru_unlink(o);
		hash_remove(&B.table, &o->node);
		B.count--;
		memset(o, 0, sizeof(*o));
	} else if (!(o = calloc(1, sizeof(*o)))) {
		return NULL;
	}
	o->pub = *pub;
	addr_set_port(&o->pub, 0);
	hash_insert(&B.table, &o->node, h);
	lru_push(o);
	B.count++;
	return o;
}

void nat_behaviour_observe(const struct sockaddr_storage *priv,
			   const struct sockaddr_storage *mapped,
			   uint16_t dest_port)
{
	uint64_t now = loop_now();
	uint16_t pp = addr_port(priv), mp = addr_port(mapped);
	char pa[ADDR_STRLEN];
	struct obs *o;
	struct sample *slot = NULL;

	/* Only a NAT'ed party tells us anything: its SDP names another IP. */
	if (priv->ss_family != mapped->ss_family || addr_ip_eq(priv, mapped) ||
	    !pp || !mp || !(o = get(mapped)))
		return;
	for (unsigned i = 0; i < o->ns; i++) {
		struct sample *s = &o->s[i];
		if (!addr_eq(&s->priv, priv))
			continue;
		if (s->dest == dest_port) {
			slot = s;	/* the same mapping seen again */
			continue;
		}
		if (now - s->seen_ms > FRESH_MS)
			continue;	/* may have been remapped meanwhile */
		/* The latest fresh pair decides. */
		addr_str(priv, pa, sizeof(pa));
		if (s->mapped == mp) {
			o->verdict = "cone";
			snprintf(o->why, sizeof(o->why), "%s kept public port %u "
				 "toward our ports %u and %u", pa, mp, s->dest,
				 dest_port);
		} else {
			o->verdict = "symmetric";
			snprintf(o->why, sizeof(o->why), "%s got public port %u "
				 "toward our port %u, %u toward %u", pa,
				 s->mapped, s->dest, mp, dest_port);
		}
	}
	if (!slot) {
		slot = &o->s[o->next_slot];
		o->next_slot = (o->next_slot + 1) % OBS_SAMPLES;
		if (o->ns < OBS_SAMPLES)
			o->ns++;
	}
	slot->priv = *priv;
	slot->mapped = mp;
	slot->dest = dest_port;
	slot->seen_ms = now;
	if (!o->verdict) {
		addr_str(priv, pa, sizeof(pa));
		snprintf(o->why, sizeof(o->why), "%s", pp == mp ?
			 "port-preserving: " : "port-translating: ");
		snprintf(o->why + strlen(o->why),
			 sizeof(o->why) - strlen(o->why),
			 "%s seen as port %u; one destination only so far",
			 pa, mp);
	}
}

const char *nat_behaviour(const struct sockaddr_storage *pub, char *why,
			  size_t cap)
{
	struct obs *o;

	if (!B.table.buckets || !(o = find(pub, addr_ip_hash(pub)))) {
		snprintf(why, cap, "no relayed media seen from this address "
			 "yet");
		return "unknown";
	}
	snprintf(why, cap, "%s", o->why);
	return o->verdict ? o->verdict : "unknown";
}

void nat_behaviour_free(void)
{
	while (B.head) {
		struct obs *o = B.head;
		lru_unlink(o);
		free(o);
	}
	hash_free(&B.table);
	memset(&B, 0, sizeof(B));
}
