/*
 * hash.c - intrusive chained hash table (see hash.h).
 */
#include "util/hash.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#define FNV_OFFSET 14695981039346656037ULL

uint64_t hash_seed_value = FNV_OFFSET;

/* Before main(): every table, including the first ones built at start-up,
 * sees the same seed. Without entropy (a very early boot), FNV's own. */
__attribute__((constructor)) static void hash_seed_init(void)
{
	uint64_t r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == (ssize_t)sizeof(r))
		hash_seed_value = FNV_OFFSET ^ r;
}

int hash_init(struct hash *h, size_t nbuckets)
{
	size_t n = 16;

	while (n < nbuckets)
		n <<= 1;
	h->buckets = calloc(n, sizeof(*h->buckets));
	if (!h->buckets)
		return ENOMEM;
	h->nbuckets = n;
	h->count = 0;
	return 0;
}

void hash_free(struct hash *h)
{
	free(h->buckets);
	h->buckets = NULL;
	h->nbuckets = h->count = 0;
}

static void grow(struct hash *h)
{
	size_t n = h->nbuckets * 2;
	struct hash_node **b = calloc(n, sizeof(*b));

	if (!b)
		return;		/* keep working with longer chains */
	for (size_t i = 0; i < h->nbuckets; i++) {
		struct hash_node *x = h->buckets[i], *next;
		for (; x; x = next) {
			next = x->next;
			x->next = b[x->hash & (n - 1)];
			b[x->hash & (n - 1)] = x;
		}
	}
	free(h->buckets);
	h->buckets = b;
	h->nbuckets = n;
}

void hash_insert(struct hash *h, struct hash_node *n, uint64_t hash)
{
	struct hash_node **b;

	if (h->count >= h->nbuckets)
		grow(h);
	n->hash = hash;
	b = &h->buckets[hash & (h->nbuckets - 1)];
	n->next = *b;
	*b = n;
	h->count++;
}

void hash_remove(struct hash *h, struct hash_node *n)
{
	struct hash_node **pp = &h->buckets[n->hash & (h->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			n->next = NULL;
			h->count--;
			return;
		}
	}
}

struct hash_node *hash_bucket(const struct hash *h, uint64_t hash)
{
	return h->buckets[hash & (h->nbuckets - 1)];
}

uint64_t hash_bytes(uint64_t seed, const void *p, size_t len)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < len; i++) {
		seed ^= s[i];
		seed *= 1099511628211ULL;
	}
	return seed;
}

uint64_t hash_bytes_lower(uint64_t seed, const void *p, size_t len)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		if (c >= 'A' && c <= 'Z')
			c += 32;
		seed ^= c;
		seed *= 1099511628211ULL;
	}
	return seed;
}
