/*
 * pool.c - the relay's port pool: which ports of [port_min, port_max] are
 * ours, which someone else holds, and where the next search starts.
 *
 * A bitmap, one bit per port, under a mutex. The mutex is taken on stream
 * alloc (signalling thread) and when a worker has closed a freed stream's
 * sockets, never per packet, and it guards a bitmap scan only: sockets are
 * bound outside it, so a worker returning ports never waits for a bind.
 *
 * Candidates are the even ports (RTP); a pair also takes port + 1 (RTCP).
 * The search starts at a rotating cursor rather than at the lowest free
 * port: a port freed a moment ago is reused last, so late packets of a
 * finished call do not land in a new one (and ports come back only after
 * their sockets are closed, see relay_pool_release).
 *
 * A port whose bind failed is in use by another program: it is marked
 * foreign and skipped. Foreign marks are forgotten each time the cursor
 * wraps, so a port the other program released is tried again one cycle
 * later. Not optimised: the scan is linear from the cursor (at most 1024
 * words for the whole port space), which is noise next to the four binds
 * an allocation costs.
 */
#include "relay/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool bit_get(const uint64_t *map, uint32_t i)
{
	return (map[i / 64] >> (i % 64)) & 1;
}

static void bit_set(uint64_t *map, uint32_t i)
{
	map[i / 64] |= (uint64_t)1 << (i % 64);
}

static void bit_clear(uint64_t *map, uint32_t i)
{
	map[i / 64] &= ~((uint64_t)1 << (i % 64));
}

int relay_pool_init(struct relay_pool *pool, uint16_t min, uint16_t max)
{
	size_t words;
	int err;

	memset(pool, 0, sizeof(*pool));
	if (min == 0 || min > max)
		return EINVAL;
	pool->min = min;
	pool->max = max;
	pool->total = (unsigned)max - min + 1;
	pool->first_even = (min + 1u) & ~1u;
	pool->neven = pool->first_even <= max
		? (max - pool->first_even) / 2 + 1 : 0;
	words = (pool->total + 63) / 64;
	pool->used = calloc(words, sizeof(uint64_t));
	pool->foreign = calloc(words, sizeof(uint64_t));
	if (!pool->used || !pool->foreign) {
		free(pool->used);
		free(pool->foreign);
		return ENOMEM;
	}
	err = pthread_mutex_init(&pool->lock, NULL);
	if (err) {
		free(pool->used);
		free(pool->foreign);
		return err;
	}
	return 0;
}

void relay_pool_fini(struct relay_pool *pool)
{
	pthread_mutex_destroy(&pool->lock);
	free(pool->used);
	free(pool->foreign);
}

unsigned relay_pool_candidates(const struct relay_pool *pool)
{
	return pool->neven;
}

static bool port_free(const struct relay_pool *pool, uint32_t port)
{
	uint32_t i = port - pool->min;

	return !bit_get(pool->used, i) && !bit_get(pool->foreign, i);
}

static void forget_foreign(struct relay_pool *pool)
{
	memset(pool->foreign, 0, (pool->total + 63) / 64 * sizeof(uint64_t));
	pool->nforeign = 0;
}

int relay_pool_reserve(struct relay_pool *pool, bool pair, uint16_t *port)
{
	int err = ENOSPC;

	pthread_mutex_lock(&pool->lock);
	for (uint32_t k = 0; k < pool->neven; k++) {
		uint32_t idx = pool->cursor;
		uint32_t p = pool->first_even + 2 * idx;

		if (++pool->cursor >= pool->neven) {
			pool->cursor = 0;
			forget_foreign(pool);
		}
		if (pair && p + 1 > pool->max)
			continue;
		if (!port_free(pool, p) || (pair && !port_free(pool, p + 1)))
			continue;
		bit_set(pool->used, p - pool->min);
		pool->nused++;
		if (pair) {
			bit_set(pool->used, p + 1 - pool->min);
			pool->nused++;
		}
		*port = (uint16_t)p;
		err = 0;
		break;
	}
	pthread_mutex_unlock(&pool->lock);
	return err;
}

void relay_pool_release(struct relay_pool *pool, uint16_t port, bool pair)
{
	pthread_mutex_lock(&pool->lock);
	for (uint32_t p = port; p <= (uint32_t)port + pair; p++) {
		if (bit_get(pool->used, p - pool->min)) {
			bit_clear(pool->used, p - pool->min);
			pool->nused--;
		}
	}
	pthread_mutex_unlock(&pool->lock);
}

void relay_pool_mark_foreign(struct relay_pool *pool, uint16_t port,
			     bool pair, uint16_t bad)
{
	uint32_t i = bad - pool->min;

	relay_pool_release(pool, port, pair);
	pthread_mutex_lock(&pool->lock);
	if (!bit_get(pool->foreign, i)) {
		bit_set(pool->foreign, i);
		pool->nforeign++;
	}
	pthread_mutex_unlock(&pool->lock);
}

void relay_pool_count_failure(struct relay_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	pool->failures++;
	pthread_mutex_unlock(&pool->lock);
}

void relay_pool_stats(struct relay_pool *pool, unsigned *free_ports,
		      unsigned *total, uint64_t *failures)
{
	pthread_mutex_lock(&pool->lock);
	*free_ports = pool->total - pool->nused - pool->nforeign;
	*total = pool->total;
	*failures = pool->failures;
	pthread_mutex_unlock(&pool->lock);
}
