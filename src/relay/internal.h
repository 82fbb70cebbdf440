/*
 * internal.h - what the relay's three files share and nobody else sees:
 * relay.c (control: stream table, commands, snapshots), pool.c (the port
 * pool) and worker.c (the data path: epoll, recvmmsg/sendmmsg, latching).
 * Users of the relay include relay.h only.
 *
 * Ownership, the one rule that keeps this data-race free: a stream's
 * latching state (struct relay_leg) belongs to its worker once the stream
 * is posted; the control thread changes it only by posting a command. The
 * worker publishes what the control side may read: counters as relaxed
 * atomics and latched addresses under a seqlock of atomic words.
 */
#ifndef PINHOLE_RELAY_INTERNAL_H
#define PINHOLE_RELAY_INTERNAL_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "relay/relay.h"

#define RELAY_BATCH 32		/* packets per recvmmsg/sendmmsg */
#define RELAY_PKT_MAX 2048	/* larger datagrams are dropped (MSG_TRUNC) */

enum relay_kind { RELAY_RTP = 0, RELAY_RTCP = 1 };

/* A socket address in 28 bytes instead of sockaddr_storage's 128. */
union relay_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

#define RELAY_ADDR_WORDS ((sizeof(union relay_addr) + 3) / 4)

/* One kind (RTP or RTCP) of one side of a stream: what the worker knows
 * about the party on that side. Worker-owned after the stream is posted. */
struct relay_leg {
	union relay_addr expected;	/* from signalling; family 0 = unknown */
	union relay_addr latched;	/* valid when is_latched */
	uint64_t window_end_ms;		/* a first source is accepted until then */
	uint64_t latched_seen_ms;	/* last packet from the latched source */
	bool is_latched;
	bool strong;			/* latched source has the expected IP */
};

/* What side/kind received: written by the worker only (store of
 * load + n, no locked RMW), read relaxed by relay_stream_info. */
struct relay_counters {
	_Atomic uint64_t packets, bytes, dropped, last_seen_ms;
};

enum relay_cmd_type { RELAY_CMD_ADD, RELAY_CMD_PEER, RELAY_CMD_FREE,
		      RELAY_CMD_STOP };

/* A control operation for a worker. ADD/FREE/STOP are embedded in the
 * stream / worker (they cannot fail); PEER is allocated per call. */
struct relay_cmd {
	struct relay_cmd *next;
	enum relay_cmd_type type;
	enum relay_side side;		/* PEER */
	struct relay_stream *stream;
	union relay_addr rtp;		/* PEER: family 0 = unknown */
	uint16_t rtcp_port;		/* PEER: resolved (never 0 if known) */
};

struct relay_worker;

struct relay_stream {
	/* Fixed at alloc, read by both sides. */
	struct relay *relay;
	struct relay_worker *worker;
	uint32_t id;
	bool rtcp;
	uint16_t port[2];
	int fd[2][2];			/* [side][kind]; -1 when none */

	/* Control thread only, under relay->lock. */
	union relay_addr expected_ctl[2];	/* as last given to set_peer */
	struct relay_cmd add_cmd, free_cmd;

	/* Worker only. */
	struct relay_leg leg[2][2];	/* [side][kind] */
	bool dead;			/* freed: close at the end of the round */

	/* Published by the worker. */
	struct relay_counters count[2][2];
	_Atomic uint64_t relatches[2];
	_Atomic uint32_t pub_seq;	/* odd while being written */
	_Atomic uint32_t pub_latched[2][2][RELAY_ADDR_WORDS];
};

/* The port pool: a bitmap over [min, max]; see pool.c. */
struct relay_pool {
	pthread_mutex_t lock;
	uint16_t min, max;
	uint32_t first_even, neven;	/* candidate RTP ports */
	uint32_t cursor;		/* index of the next candidate to try */
	uint64_t *used;			/* ours (bound, or closing) */
	uint64_t *foreign;		/* bind failed: someone else's */
	unsigned nused, nforeign, total;
	uint64_t failures;		/* allocations refused: ENOSPC */
};

int relay_pool_init(struct relay_pool *pool, uint16_t min, uint16_t max);
void relay_pool_fini(struct relay_pool *pool);
/* Reserve an even port (and port + 1 when pair): ENOSPC when none. */
int relay_pool_reserve(struct relay_pool *pool, bool pair, uint16_t *port);
/* Give back a reservation whose sockets are closed. */
void relay_pool_release(struct relay_pool *pool, uint16_t port, bool pair);
/* Binding `bad` (port or port + 1) failed: give the reservation back
 * and mark `bad` foreign. */
void relay_pool_mark_foreign(struct relay_pool *pool, uint16_t port,
			     bool pair, uint16_t bad);
/* Candidates there are, to bound retries. */
unsigned relay_pool_candidates(const struct relay_pool *pool);
void relay_pool_count_failure(struct relay_pool *pool);
void relay_pool_stats(struct relay_pool *pool, unsigned *free_ports,
		      unsigned *total, uint64_t *failures);

/* Workers (worker.c). */
struct relay_worker *relay_worker_create(struct relay *relay,
					 unsigned index, int *err);
int relay_worker_start(struct relay_worker *worker);
/* Post STOP, join, free. Commands posted before are processed first. */
void relay_worker_destroy(struct relay_worker *worker);
void relay_worker_post(struct relay_worker *worker, struct relay_cmd *cmd);
void relay_worker_totals(struct relay_worker *worker, uint64_t *packets,
			 uint64_t *bytes, uint64_t *dropped);

/* Close a stream's sockets and free it (worker on FREE; destroy). */
void relay_stream_close(struct relay_stream *stream, bool release_ports);
/* Read the published latched addresses (seqlock reader). */
void relay_stream_read_latched(struct relay_stream *stream,
			       union relay_addr out[2][2]);

/* Shared with worker.c: the relay's settings and pool. */
struct relay_pool *relay_pool_of(struct relay *relay);
unsigned relay_latch_window_ms(const struct relay *relay);
unsigned relay_relatch_silence_ms(const struct relay *relay);

uint64_t relay_now_ms(void);
/* For logs: "ip:port" into buf (ADDR_STRLEN). */
char *relay_addr_str(const union relay_addr *a, char *buf, size_t cap);

/* Per-packet comparisons: inline, family-aware, no sockaddr_storage. */
static inline bool relay_addr_ip_eq(const union relay_addr *a,
				    const union relay_addr *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET)
		return a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
	if (a->sa.sa_family == AF_INET6)
		return memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16) == 0;
	return false;
}

static inline uint16_t relay_addr_port(const union relay_addr *a)
{
	if (a->sa.sa_family == AF_INET)
		return ntohs(a->in.sin_port);
	if (a->sa.sa_family == AF_INET6)
		return ntohs(a->in6.sin6_port);
	return 0;
}

static inline void relay_addr_set_port(union relay_addr *a, uint16_t port)
{
	if (a->sa.sa_family == AF_INET)
		a->in.sin_port = htons(port);
	else if (a->sa.sa_family == AF_INET6)
		a->in6.sin6_port = htons(port);
}

static inline bool relay_addr_eq(const union relay_addr *a,
				 const union relay_addr *b)
{
	/* Ports sit at the same offset in sockaddr_in and sockaddr_in6. */
	return a->in.sin_port == b->in.sin_port && relay_addr_ip_eq(a, b);
}

static inline socklen_t relay_addr_len(const union relay_addr *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					   : sizeof(struct sockaddr_in);
}

static inline bool relay_addr_known(const union relay_addr *a)
{
	return a->sa.sa_family != 0;
}

#endif
