/*
 * relay.c - the media relay's control side (see relay.h): the stream table,
 * socket creation, and the commands that hand streams to the data-path
 * workers (worker.c); the port pool is pool.c.
 *
 * Threads. relay_* functions run on the signalling thread (any thread, in
 * fact: they serialise on relay->lock). Each worker thread owns the
 * latching state of its streams; the control side changes it only by
 * posting a command to the worker's queue, and reads only what the worker
 * publishes (relaxed atomic counters, latched addresses under a seqlock).
 * So the data path never waits for the signalling thread, and a snapshot
 * never stops the data path.
 *
 * Stream lifetime. Sockets are created, bound and made non-blocking here,
 * then posted to a worker (round-robin). relay_stream_free removes the id
 * at once (later calls see ENOENT) and posts FREE; the worker closes the
 * sockets, returns the ports to the pool and frees the stream. Ports come
 * back only after close, so a new stream can always bind them. Ids carry a
 * per-slot generation and slots are reused oldest-first: an id comes back
 * only after (slots x 2^generation bits) allocations.
 *
 * Latching rules (per side, RTP and RTCP each on their own; a packet
 * received on side X comes from party X, and latches side X). They follow
 * "latch once, reject strays, re-latch only by rule": rtpengine shipped
 * "strict source" off and learned from any packet for 3 s after each
 * signalling event, which let anyone who could guess a port steal or inject
 * media (RTP Bleed, CVE-2017-14114); sipXrelay's learning mode re-latched
 * on every packet.
 *
 *  1. Side X not latched:
 *     a. source IP equals the expected IP (from set_peer) -> latch at once,
 *        whatever the port (a NAT may change it);
 *     b. else within latch_window_ms after the last set_peer (or after
 *        alloc when no address is known) -> latch to this first source
 *        (a phone behind a NAT that put its private address in the SDP);
 *     c. else drop as a stray (counted).
 *  2. Side X latched:
 *     a. packets from the latched address (IP and port) pass;
 *     b. a latch obtained by 1b (source IP not the expected IP) yields to
 *        a source with the expected IP: signalling is the better witness;
 *     c. any other source is dropped as a stray (counted) unless the
 *        latched source has been silent for relatch_silence_ms: then the
 *        new source takes over (counted in relatches, logged) - a phone
 *        whose NAT mapping changed mid-call (4G, NAT reboot).
 *  3. set_peer again (re-INVITE, hold, resume) updates the expected address
 *     and re-opens the window. An established latch is kept when the new
 *     IP equals the old expected IP or the latched IP, or when the address
 *     is unknown (c=0.0.0.0 hold says nothing against it); a new IP means
 *     the party moved, and the side latches afresh by rule 1.
 *  4. Destination for party X: its latched source if latched, else its
 *     expected address, else the packet is dropped (counted on the side
 *     it arrived on). For RTCP not yet latched while RTP is: the RTP
 *     source IP with the expected RTCP port (RTP port + 1 if none known).
 */
#include "relay/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"
#include "util/addr.h"

#define DEFAULT_LATCH_WINDOW_MS 5000
#define DEFAULT_RELATCH_SILENCE_MS 2000
#define SOCKET_BUFFER (1 << 20)

struct relay {
	struct relay_config cfg;
	unsigned latch_window_ms, relatch_silence_ms;
	struct relay_pool pool;
	struct relay_worker **workers;
	unsigned next_worker;		/* round-robin */

	pthread_mutex_t lock;		/* the table below, control copies */
	struct relay_stream **slots;
	uint32_t *slot_gen;
	uint32_t *free_ring;		/* free slot indexes, oldest first */
	uint32_t nslots, slot_bits, ring_head, ring_count;
	unsigned streams;
};

uint64_t relay_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void to_storage(struct sockaddr_storage *out, const union relay_addr *a)
{
	memset(out, 0, sizeof(*out));
	if (relay_addr_known(a))
		memcpy(out, a, relay_addr_len(a));
}

/* A v4-mapped IPv6 address as plain IPv4, for people and for callers. */
static void unmap(union relay_addr *a)
{
	if (a->sa.sa_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr)) {
		union relay_addr v4 = { .in = { .sin_family = AF_INET,
						.sin_port = a->in6.sin6_port } };

		memcpy(&v4.in.sin_addr, &a->in6.sin6_addr.s6_addr[12], 4);
		*a = v4;
	}
}

char *relay_addr_str(const union relay_addr *a, char *buf, size_t cap)
{
	struct sockaddr_storage ss;
	union relay_addr plain = *a;

	unmap(&plain);
	to_storage(&ss, &plain);
	return addr_str(&ss, buf, cap);
}

struct relay_pool *relay_pool_of(struct relay *relay)
{
	return &relay->pool;
}

unsigned relay_latch_window_ms(const struct relay *relay)
{
	return relay->latch_window_ms;
}

unsigned relay_relatch_silence_ms(const struct relay *relay)
{
	return relay->relatch_silence_ms;
}

void relay_stream_close(struct relay_stream *s, bool release_ports)
{
	for (int side = 0; side < 2; side++) {
		for (int kind = 0; kind < 2; kind++)
			if (s->fd[side][kind] >= 0)
				close(s->fd[side][kind]);
		if (release_ports && s->port[side])
			relay_pool_release(&s->relay->pool, s->port[side],
					   s->rtcp);
	}
	free(s);
}

int relay_create(struct relay **relayp, const struct relay_config *cfg)
{
	struct relay *relay;
	int err;

	if (!relayp || !cfg || cfg->workers < 1)
		return EINVAL;
	if (cfg->bind.ss_family != AF_INET && cfg->bind.ss_family != AF_INET6)
		return EAFNOSUPPORT;
	relay = calloc(1, sizeof(*relay));
	if (!relay)
		return ENOMEM;
	relay->cfg = *cfg;
	relay->latch_window_ms = cfg->latch_window_ms
		? cfg->latch_window_ms : DEFAULT_LATCH_WINDOW_MS;
	relay->relatch_silence_ms = cfg->relatch_silence_ms
		? cfg->relatch_silence_ms : DEFAULT_RELATCH_SILENCE_MS;
	err = relay_pool_init(&relay->pool, cfg->port_min, cfg->port_max);
	if (err) {
		free(relay);
		return err;
	}
	err = pthread_mutex_init(&relay->lock, NULL);
	if (err) {
		relay_pool_fini(&relay->pool);
		free(relay);
		return err;
	}
	/* A stream takes two even ports at least. */
	relay->nslots = relay_pool_candidates(&relay->pool) / 2 + 1;
	while ((1u << relay->slot_bits) < relay->nslots)
		relay->slot_bits++;
	relay->slots = calloc(relay->nslots, sizeof(*relay->slots));
	relay->slot_gen = calloc(relay->nslots, sizeof(*relay->slot_gen));
	relay->free_ring = calloc(relay->nslots, sizeof(*relay->free_ring));
	relay->workers = calloc(cfg->workers, sizeof(*relay->workers));
	if (!relay->slots || !relay->slot_gen || !relay->free_ring ||
	    !relay->workers) {
		relay_destroy(relay);
		return ENOMEM;
	}
	for (uint32_t i = 0; i < relay->nslots; i++)
		relay->free_ring[i] = i;
	relay->ring_count = relay->nslots;
	for (unsigned i = 0; i < cfg->workers; i++) {
		relay->workers[i] = relay_worker_create(relay, i, &err);
		if (!relay->workers[i] ||
		    (err = relay_worker_start(relay->workers[i])) != 0) {
			log_err("relay", "worker start failed worker=%u "
				"error=%s", i, strerror(err));
			relay_destroy(relay);
			return err;
		}
	}
	log_info("relay", "started workers=%u ports=%u-%u",
		 cfg->workers, cfg->port_min, cfg->port_max);
	*relayp = relay;
	return 0;
}

void relay_destroy(struct relay *relay)
{
	if (!relay)
		return;
	/* Workers first: each processes what was posted (FREEs included),
	 * then stops; what is left in the table is ours to close. */
	if (relay->workers) {
		for (unsigned i = 0; i < relay->cfg.workers; i++)
			relay_worker_destroy(relay->workers[i]);
		free(relay->workers);
	}
	if (relay->slots) {
		for (uint32_t i = 0; i < relay->nslots; i++)
			if (relay->slots[i])
				relay_stream_close(relay->slots[i], false);
	}
	free(relay->slots);
	free(relay->slot_gen);
	free(relay->free_ring);
	pthread_mutex_destroy(&relay->lock);
	relay_pool_fini(&relay->pool);
	free(relay);
}

/* A UDP socket bound to the relay address and `port`; errno on failure. */
static int open_socket(struct relay *relay, uint16_t port, int *fdp)
{
	struct sockaddr_storage addr = relay->cfg.bind;
	int size = SOCKET_BUFFER;
	int fd, err;

	fd = socket(addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return errno;
	/* Best effort: the kernel caps at net.core.[rw]mem_max. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	addr_set_port(&addr, port);
	if (bind(fd, (struct sockaddr *)&addr, addr_len(&addr)) < 0) {
		err = errno;
		close(fd);
		return err;
	}
	*fdp = fd;
	return 0;
}

/* Reserve and bind one side's ports; skips ports others hold. */
static int open_side(struct relay *relay, struct relay_stream *s, int side)
{
	unsigned attempts = relay_pool_candidates(&relay->pool);
	uint16_t port;
	int err;

	while (attempts--) {
		err = relay_pool_reserve(&relay->pool, s->rtcp, &port);
		if (err)
			return err;
		err = open_socket(relay, port, &s->fd[side][RELAY_RTP]);
		if (!err && s->rtcp) {
			err = open_socket(relay, port + 1,
					  &s->fd[side][RELAY_RTCP]);
			if (err) {
				close(s->fd[side][RELAY_RTP]);
				s->fd[side][RELAY_RTP] = -1;
				if (err == EADDRINUSE || err == EACCES) {
					relay_pool_mark_foreign(&relay->pool,
						port, true, port + 1);
					continue;
				}
			}
		} else if (err == EADDRINUSE || err == EACCES) {
			relay_pool_mark_foreign(&relay->pool, port, s->rtcp,
						port);
			continue;
		}
		if (err) {
			relay_pool_release(&relay->pool, port, s->rtcp);
			return err;
		}
		s->port[side] = port;
		return 0;
	}
	return ENOSPC;
}

static struct relay_stream *find_stream(struct relay *relay, uint32_t id)
{
	uint32_t slot = id & ((1u << relay->slot_bits) - 1);
	struct relay_stream *s;

	if (slot >= relay->nslots)
		return NULL;
	s = relay->slots[slot];
	return s && s->id == id ? s : NULL;
}

int relay_stream_alloc(struct relay *relay, bool rtcp, uint32_t *id,
		       uint16_t *port_a, uint16_t *port_b)
{
	struct relay_stream *s;
	uint32_t slot, gen;
	uint64_t window_end;
	int err = 0;

	if (!relay || !id)
		return EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return ENOMEM;
	s->relay = relay;
	s->rtcp = rtcp;
	for (int side = 0; side < 2; side++)
		for (int kind = 0; kind < 2; kind++)
			s->fd[side][kind] = -1;

	pthread_mutex_lock(&relay->lock);
	if (relay->ring_count == 0)
		err = ENOSPC;
	for (int side = 0; side < 2 && !err; side++)
		err = open_side(relay, s, side);
	if (err) {
		pthread_mutex_unlock(&relay->lock);
		if (err == ENOSPC) {
			relay_pool_count_failure(&relay->pool);
			log_warn("relay", "no free port range=%u-%u",
				 relay->cfg.port_min, relay->cfg.port_max);
		}
		relay_stream_close(s, true);
		return err;
	}
	slot = relay->free_ring[relay->ring_head];
	relay->ring_head = (relay->ring_head + 1) % relay->nslots;
	relay->ring_count--;
	/* Generation 0 is skipped so that no id is 0. */
	gen = (relay->slot_gen[slot] + 1) &
	      (uint32_t)(((uint64_t)1 << (32 - relay->slot_bits)) - 1);
	if (gen == 0)
		gen = 1;
	relay->slot_gen[slot] = gen;
	s->id = gen << relay->slot_bits | slot;
	relay->slots[slot] = s;
	relay->streams++;
	s->worker = relay->workers[relay->next_worker];
	relay->next_worker = (relay->next_worker + 1) % relay->cfg.workers;

	/* Set before the worker sees the stream (the queue's mutex orders
	 * it); from now on the legs are the worker's. */
	window_end = relay_now_ms() + relay->latch_window_ms;
	for (int side = 0; side < 2; side++)
		for (int kind = 0; kind < 2; kind++)
			s->leg[side][kind].window_end_ms = window_end;
	s->add_cmd.type = RELAY_CMD_ADD;
	s->add_cmd.stream = s;
	s->free_cmd.type = RELAY_CMD_FREE;
	s->free_cmd.stream = s;
	relay_worker_post(s->worker, &s->add_cmd);

	*id = s->id;
	if (port_a)
		*port_a = s->port[RELAY_A];
	if (port_b)
		*port_b = s->port[RELAY_B];
	log_debug("relay", "alloc id=%u ports=%u/%u rtcp=%d", s->id,
		  s->port[RELAY_A], s->port[RELAY_B], rtcp);
	pthread_mutex_unlock(&relay->lock);
	return 0;
}

/* The address in the relay sockets' family (v4 <-> v4-mapped v6). */
static int normalise(const struct relay *relay, union relay_addr *out,
		     const struct sockaddr_storage *in)
{
	int family = relay->cfg.bind.ss_family;

	memset(out, 0, sizeof(*out));
	if (in->ss_family == AF_UNSPEC || addr_is_unusable(in))
		return 0;	/* unknown: c=0.0.0.0 and the like */
	if (in->ss_family == AF_INET) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)in;

		if (family == AF_INET) {
			out->in = *v4;
			return 0;
		}
		out->in6.sin6_family = AF_INET6;
		out->in6.sin6_port = v4->sin_port;
		out->in6.sin6_addr.s6_addr[10] = 0xff;
		out->in6.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&out->in6.sin6_addr.s6_addr[12], &v4->sin_addr, 4);
		return 0;
	}
	if (in->ss_family == AF_INET6) {
		out->in6 = *(const struct sockaddr_in6 *)in;
		if (family == AF_INET6)
			return 0;
		unmap(out);
		return out->sa.sa_family == AF_INET ? 0 : EAFNOSUPPORT;
	}
	return EAFNOSUPPORT;
}

int relay_stream_set_peer(struct relay *relay, uint32_t id,
			  enum relay_side side,
			  const struct sockaddr_storage *rtp,
			  uint16_t rtcp_port)
{
	struct relay_stream *s;
	struct relay_cmd *cmd;
	union relay_addr addr;
	int err;

	if (!relay || !rtp || (side != RELAY_A && side != RELAY_B))
		return EINVAL;
	err = normalise(relay, &addr, rtp);
	if (err)
		return err;
	cmd = calloc(1, sizeof(*cmd));
	if (!cmd)
		return ENOMEM;
	cmd->type = RELAY_CMD_PEER;
	cmd->side = side;
	cmd->rtp = addr;
	cmd->rtcp_port = rtcp_port ? rtcp_port
				   : (uint16_t)(relay_addr_port(&addr) + 1);

	pthread_mutex_lock(&relay->lock);
	s = find_stream(relay, id);
	if (!s) {
		pthread_mutex_unlock(&relay->lock);
		free(cmd);
		return ENOENT;
	}
	cmd->stream = s;
	s->expected_ctl[side] = addr;
	if (log_enabled(LOG_DEBUG)) {
		char buf[ADDR_STRLEN];

		/* before posting: the worker frees cmd */
		log_debug("relay", "peer id=%u side=%c rtp=%s rtcp_port=%u",
			  id, side ? 'B' : 'A',
			  relay_addr_str(&addr, buf, sizeof(buf)),
			  cmd->rtcp_port);
	}
	relay_worker_post(s->worker, cmd);
	pthread_mutex_unlock(&relay->lock);
	return 0;
}

int relay_stream_free(struct relay *relay, uint32_t id)
{
	struct relay_stream *s;
	uint32_t slot;

	if (!relay)
		return EINVAL;
	pthread_mutex_lock(&relay->lock);
	s = find_stream(relay, id);
	if (!s) {
		pthread_mutex_unlock(&relay->lock);
		return ENOENT;
	}
	slot = id & ((1u << relay->slot_bits) - 1);
	relay->slots[slot] = NULL;
	relay->free_ring[(relay->ring_head + relay->ring_count) %
			 relay->nslots] = slot;
	relay->ring_count++;
	relay->streams--;
	/* The worker owns it from here: never touch s again. */
	relay_worker_post(s->worker, &s->free_cmd);
	pthread_mutex_unlock(&relay->lock);
	log_debug("relay", "free id=%u", id);
	return 0;
}

static void read_counters(struct relay_dir_stats *out,
			  struct relay_counters *c)
{
	out->packets = atomic_load_explicit(&c->packets, memory_order_acquire);
	out->bytes = atomic_load_explicit(&c->bytes, memory_order_relaxed);
	out->dropped = atomic_load_explicit(&c->dropped, memory_order_relaxed);
	out->last_seen_ms = atomic_load_explicit(&c->last_seen_ms,
						 memory_order_relaxed);
}

int relay_stream_info(struct relay *relay, uint32_t id,
		      struct relay_stream_info *info)
{
	struct relay_stream *s;
	union relay_addr latched[2][2];

	if (!relay || !info)
		return EINVAL;
	memset(info, 0, sizeof(*info));
	pthread_mutex_lock(&relay->lock);
	s = find_stream(relay, id);
	if (!s) {
		pthread_mutex_unlock(&relay->lock);
		return ENOENT;
	}
	/* Under relay->lock the stream cannot be freed (FREE is posted
	 * under it, after the id left the table). */
	relay_stream_read_latched(s, latched);
	info->id = s->id;
	info->rtcp = s->rtcp;
	for (int side = 0; side < 2; side++) {
		struct relay_side_info *si = &info->side[side];
		union relay_addr expected = s->expected_ctl[side];

		si->port = s->port[side];
		unmap(&expected);
		to_storage(&si->expected, &expected);
		si->latched = relay_addr_known(&latched[side][RELAY_RTP]);
		for (int kind = 0; kind < 2; kind++)
			unmap(&latched[side][kind]);
		to_storage(&si->latched_addr, &latched[side][RELAY_RTP]);
		to_storage(&si->latched_rtcp, &latched[side][RELAY_RTCP]);
		si->relatches = atomic_load_explicit(&s->relatches[side],
						     memory_order_relaxed);
		read_counters(&si->rtp, &s->count[side][RELAY_RTP]);
		read_counters(&si->rtcp, &s->count[side][RELAY_RTCP]);
	}
	pthread_mutex_unlock(&relay->lock);
	return 0;
}

void relay_get_stats(struct relay *relay, struct relay_stats *stats)
{
	memset(stats, 0, sizeof(*stats));
	if (!relay)
		return;
	pthread_mutex_lock(&relay->lock);
	stats->streams = relay->streams;
	pthread_mutex_unlock(&relay->lock);
	relay_pool_stats(&relay->pool, &stats->ports_free, &stats->ports_total,
			 &stats->alloc_failures);
	for (unsigned i = 0; i < relay->cfg.workers; i++)
		relay_worker_totals(relay->workers[i], &stats->packets,
				    &stats->bytes, &stats->dropped);
}
