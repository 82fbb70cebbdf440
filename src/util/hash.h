/*
 * hash.h - intrusive chained hash table: the element embeds a hash_node,
 * the table never allocates per element, only its bucket array (which
 * doubles when the load passes 1). Used for transactions, bindings and TCP
 * connections. Key comparison is the caller's (walk the bucket).
 */
#ifndef PINHOLE_UTIL_HASH_H
#define PINHOLE_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "util/pl.h"

struct hash_node {
	struct hash_node *next;
	uint64_t hash;
};

struct hash {
	struct hash_node **buckets;
	size_t nbuckets;	/* power of two */
	size_t count;
};

int hash_init(struct hash *h, size_t nbuckets);
void hash_free(struct hash *h);
void hash_insert(struct hash *h, struct hash_node *n, uint64_t hash);
void hash_remove(struct hash *h, struct hash_node *n);
/* First node of the bucket for this hash; follow ->next, check ->hash. */
struct hash_node *hash_bucket(const struct hash *h, uint64_t hash);

/* FNV-1a 64, optionally ASCII-lowercased. */
uint64_t hash_bytes(uint64_t seed, const void *p, size_t len);
uint64_t hash_bytes_lower(uint64_t seed, const void *p, size_t len);
static inline uint64_t hash_pl(uint64_t seed, struct pl x)
{
	return hash_bytes(seed, x.p, x.l);
}
/* Seed of every table's keys: FNV's offset basis mixed with a random value
 * drawn once per process (getrandom), so a peer cannot precompute keys
 * that all land in one bucket (hash flooding). Same within a process;
 * nothing hashed is stored or compared across processes. */
extern uint64_t hash_seed_value;
#define HASH_SEED hash_seed_value

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
