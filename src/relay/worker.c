/*
 * worker.c - the relay's data path: one thread per worker, each with its
 * own epoll set over the sockets of the streams assigned to it, moving
 * packets with recvmmsg/sendmmsg and applying the latching rules written
 * at the top of relay.c.
 *
 * Per readable socket, per wakeup: one recvmmsg of up to RELAY_BATCH
 * packets into the worker's own buffers, a source check of each packet
 * (latching), then one sendmmsg from the opposite side's socket of the
 * same kind to the other party. Level-triggered epoll: a socket with more
 * queued is reported again, after the other ready sockets had their turn.
 * Nothing is allocated and no lock is taken per packet; counters are
 * updated once per batch.
 *
 * Control reaches a worker only through its command queue (a mutex-guarded
 * list plus an eventfd): add a stream, set a peer, free a stream, stop.
 * Commands are applied first in an epoll round (a set_peer made before a
 * packet arrived applies to that packet); a freed stream is only marked
 * then, its events of the round skipped, and it is closed at the end.
 *
 * Not optimised, by choice: a batch goes out with one sendmmsg even when
 * the kernel takes only part of it (the rest is dropped and counted, as
 * UDP would), and there is no per-packet SSRC or sequence check.
 */
#include "relay/internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log/log.h"

#define EVENTS_MAX 64
#define WAKEUP_TAG 0		/* epoll data of the eventfd; streams are != 0 */

struct relay_worker {
	struct relay *relay;
	unsigned index;
	pthread_t thread;
	bool started;
	int epfd, evfd;

	pthread_mutex_t qlock;
	struct relay_cmd *qhead, **qtail;
	struct relay_cmd stop_cmd;
	struct relay_cmd *dead;		/* FREE commands of this round */

	/* All time, all streams of this worker (for relay_get_stats). */
	_Atomic uint64_t packets, bytes, dropped;

	/* The batch: reused for every socket, never reallocated. */
	struct mmsghdr rmsg[RELAY_BATCH], smsg[RELAY_BATCH];
	struct iovec riov[RELAY_BATCH], siov[RELAY_BATCH];
	union relay_addr src[RELAY_BATCH];
	union relay_addr rtcp_dst;	/* derived RTCP destination */
	unsigned char (*buf)[RELAY_PKT_MAX];
};

/* Single-writer counter: a plain load + store, atomically visible. */
static void counter_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed)
			      + n, memory_order_relaxed);
}

static void publish_latched(struct relay_stream *s)
{
	uint32_t seq = atomic_load_explicit(&s->pub_seq, memory_order_relaxed);

	atomic_store_explicit(&s->pub_seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	for (int side = 0; side < 2; side++) {
		for (int kind = 0; kind < 2; kind++) {
			const struct relay_leg *leg = &s->leg[side][kind];
			uint32_t words[RELAY_ADDR_WORDS] = { 0 };

			if (leg->is_latched)
				memcpy(words, &leg->latched,
				       sizeof(leg->latched));
			for (size_t i = 0; i < RELAY_ADDR_WORDS; i++)
				atomic_store_explicit(
					&s->pub_latched[side][kind][i],
					words[i], memory_order_relaxed);
		}
	}
	atomic_store_explicit(&s->pub_seq, seq + 2, memory_order_release);
}

void relay_stream_read_latched(struct relay_stream *s,
			       union relay_addr out[2][2])
{
	for (;;) {
		uint32_t s1 = atomic_load_explicit(&s->pub_seq,
						   memory_order_acquire);
		uint32_t words[2][2][RELAY_ADDR_WORDS];

		if (s1 & 1)
			continue;	/* the worker is mid-write: a few stores */
		for (int side = 0; side < 2; side++)
			for (int kind = 0; kind < 2; kind++)
				for (size_t i = 0; i < RELAY_ADDR_WORDS; i++)
					words[side][kind][i] = atomic_load_explicit(
						&s->pub_latched[side][kind][i],
						memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&s->pub_seq, memory_order_relaxed)
		    != s1)
			continue;
		for (int side = 0; side < 2; side++)
			for (int kind = 0; kind < 2; kind++)
				memcpy(&out[side][kind], words[side][kind],
				       sizeof(out[side][kind]));
		return;
	}
}

static const char *const kind_names[] = { "rtp", "rtcp" };

static void latch(struct relay_stream *s, int side, int kind,
		  const union relay_addr *src, uint64_t now, const char *why)
{
	struct relay_leg *leg = &s->leg[side][kind];
	char buf[64];

	leg->latched = *src;
	leg->is_latched = true;
	leg->strong = relay_addr_known(&leg->expected) &&
		      relay_addr_ip_eq(src, &leg->expected);
	leg->latched_seen_ms = now;
	publish_latched(s);
	log_info("relay", "latch id=%u side=%c kind=%s source=%s reason=%s",
		 s->id, side ? 'B' : 'A', kind_names[kind],
		 relay_addr_str(src, buf, sizeof(buf)), why);
}

/*
 * The latching rules of relay.c for one packet from `src` arriving on
 * side/kind: true when it comes from party `side` and may be forwarded.
 */
static bool accept_source(struct relay_stream *s, int side, int kind,
			  const union relay_addr *src, uint64_t now)
{
	struct relay_leg *leg = &s->leg[side][kind];
	struct relay *relay = s->relay;

	if (leg->is_latched) {
		if (relay_addr_eq(&leg->latched, src)) {
			leg->latched_seen_ms = now;
			return true;
		}
		if (!leg->strong && relay_addr_known(&leg->expected) &&
		    relay_addr_ip_eq(src, &leg->expected)) {
			counter_add(&s->relatches[side], 1);
			latch(s, side, kind, src, now, "expected-ip");
			return true;
		}
		if (now - leg->latched_seen_ms >=
		    relay_relatch_silence_ms(relay)) {
			counter_add(&s->relatches[side], 1);
			latch(s, side, kind, src, now, "silence");
			return true;
		}
		return false;
	}
	if (relay_addr_known(&leg->expected) &&
	    relay_addr_ip_eq(src, &leg->expected)) {
		latch(s, side, kind, src, now, "expected-ip");
		return true;
	}
	if (now < leg->window_end_ms) {
		latch(s, side, kind, src, now, "window");
		return true;
	}
	return false;
}

/* Where media for party `side` goes, or NULL (drop). */
static const union relay_addr *destination(struct relay_worker *w,
					   struct relay_stream *s, int side,
					   int kind)
{
	const struct relay_leg *leg = &s->leg[side][kind];
	const struct relay_leg *rtp = &s->leg[side][RELAY_RTP];

	if (leg->is_latched)
		return &leg->latched;
	if (kind == RELAY_RTCP && rtp->is_latched) {
		/* The party's RTP came through a NAT: its RTCP most likely
		 * comes from the same public IP. */
		w->rtcp_dst = rtp->latched;
		relay_addr_set_port(&w->rtcp_dst,
				    relay_addr_known(&leg->expected)
				    ? relay_addr_port(&leg->expected)
				    : (uint16_t)(relay_addr_port(&rtp->latched)
						 + 1));
		return &w->rtcp_dst;
	}
	return relay_addr_known(&leg->expected) ? &leg->expected : NULL;
}

static void forward_batch(struct relay_worker *w, struct relay_stream *s,
			  int side, int kind)
{
	int fd = s->fd[side][kind];
	int out_fd = s->fd[!side][kind];
	struct relay_counters *count = &s->count[side][kind];
	const union relay_addr *dst;
	unsigned nsend = 0, sent = 0, failed = 0;
	uint64_t bytes = 0, dropped = 0, now;
	int n;

	for (int i = 0; i < RELAY_BATCH; i++)
		w->rmsg[i].msg_hdr.msg_namelen = sizeof(w->src[i]);
	n = recvmmsg(fd, w->rmsg, RELAY_BATCH, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return;
	now = relay_now_ms();
	dst = destination(w, s, !side, kind);
	for (int i = 0; i < n; i++) {
		struct msghdr *hdr = &w->rmsg[i].msg_hdr;
		struct msghdr *out;

		if ((hdr->msg_flags & MSG_TRUNC) ||
		    !accept_source(s, side, kind, &w->src[i], now) || !dst) {
			dropped++;
			continue;
		}
		out = &w->smsg[nsend].msg_hdr;
		w->siov[nsend].iov_base = w->buf[i];
		w->siov[nsend].iov_len = w->rmsg[i].msg_len;
		out->msg_name = (void *)dst;
		out->msg_namelen = relay_addr_len(dst);
		nsend++;
	}
	while (sent < nsend) {
		int r = sendmmsg(out_fd, w->smsg + sent, nsend - sent, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				failed += nsend - sent;
				break;
			}
			/* This datagram failed (e.g. EPERM from a firewall):
			 * count it and go on with the rest. */
			failed++;
			sent++;
			continue;
		}
		for (int i = 0; i < r; i++)
			bytes += w->siov[sent + i].iov_len;
		sent += (unsigned)r;
	}
	dropped += failed;
	/* Packets last, with release: a reader that sees the packet count
	 * (acquire) sees the bytes and drops of the same batch. */
	counter_add(&count->bytes, bytes);
	counter_add(&count->dropped, dropped);
	atomic_store_explicit(&count->last_seen_ms, now, memory_order_relaxed);
	atomic_store_explicit(&count->packets,
			      atomic_load_explicit(&count->packets,
						   memory_order_relaxed)
			      + (nsend - failed), memory_order_release);
	counter_add(&w->bytes, bytes);
	counter_add(&w->dropped, dropped);
	atomic_store_explicit(&w->packets,
			      atomic_load_explicit(&w->packets,
						   memory_order_relaxed)
			      + (nsend - failed), memory_order_release);
}

static void apply_peer(struct relay_stream *s, const struct relay_cmd *cmd)
{
	uint64_t window_end = relay_now_ms() + relay_latch_window_ms(s->relay);
	bool changed = false;

	for (int kind = 0; kind < 2; kind++) {
		struct relay_leg *leg = &s->leg[cmd->side][kind];
		union relay_addr expected = cmd->rtp;

		if (kind == RELAY_RTCP) {
			if (!s->rtcp)
				break;
			relay_addr_set_port(&expected, cmd->rtcp_port);
		}
		/* An unknown address says nothing against the latch; a new
		 * IP that is neither the old expected one nor the latched
		 * source means the party moved: latch afresh. */
		if (leg->is_latched && relay_addr_known(&expected) &&
		    !relay_addr_ip_eq(&expected, &leg->expected) &&
		    !relay_addr_ip_eq(&expected, &leg->latched)) {
			leg->is_latched = false;
			changed = true;
		}
		leg->expected = expected;
		leg->strong = leg->is_latched && relay_addr_known(&expected) &&
			      relay_addr_ip_eq(&leg->latched, &expected);
		leg->window_end_ms = window_end;
	}
	if (changed) {
		publish_latched(s);
		log_info("relay", "unlatch id=%u side=%c reason=new-address",
			 s->id, cmd->side ? 'B' : 'A');
	}
}

static void add_stream(struct relay_worker *w, struct relay_stream *s)
{
	for (int side = 0; side < 2; side++) {
		for (int kind = 0; kind < 2; kind++) {
			struct epoll_event ev = { .events = EPOLLIN };

			if (s->fd[side][kind] < 0)
				continue;
			ev.data.u64 = (uint64_t)(uintptr_t)s |
				      (uint64_t)(side << 1 | kind);
			if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, s->fd[side][kind],
				      &ev) < 0)
				log_err("relay", "epoll add failed id=%u "
					"error=%s", s->id, strerror(errno));
		}
	}
}

/* Apply queued commands; false once STOP was seen. Freed streams are
 * only marked here and closed by close_dead() after the round's events. */
static bool run_commands(struct relay_worker *w)
{
	struct relay_cmd *cmd, *next;
	uint64_t value;
	bool running = true;

	(void)!read(w->evfd, &value, sizeof(value));
	pthread_mutex_lock(&w->qlock);
	cmd = w->qhead;
	w->qhead = NULL;
	w->qtail = &w->qhead;
	pthread_mutex_unlock(&w->qlock);
	for (; cmd; cmd = next) {
		next = cmd->next;
		switch (cmd->type) {
		case RELAY_CMD_ADD:
			add_stream(w, cmd->stream);
			break;
		case RELAY_CMD_PEER:
			apply_peer(cmd->stream, cmd);
			free(cmd);
			break;
		case RELAY_CMD_FREE:
			cmd->stream->dead = true;
			cmd->next = w->dead;
			w->dead = cmd;
			break;
		case RELAY_CMD_STOP:
			running = false;
			break;
		}
	}
	return running;
}

static void close_dead(struct relay_worker *w)
{
	struct relay_cmd *cmd, *next;

	for (cmd = w->dead; cmd; cmd = next) {
		next = cmd->next;
		/* close() takes the sockets out of the epoll set; the ports
		 * go back to the pool only now. cmd lives in the stream. */
		relay_stream_close(cmd->stream, true);
	}
	w->dead = NULL;
}

static void *worker_main(void *arg)
{
	struct relay_worker *w = arg;
	struct epoll_event events[EVENTS_MAX];
	bool running = true;

	while (running) {
		int n = epoll_wait(w->epfd, events, EVENTS_MAX, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("relay", "epoll_wait failed worker=%u error=%s",
				w->index, strerror(errno));
			break;
		}
		/* Commands first: a set_peer made before a packet arrived is
		 * applied before that packet is forwarded. */
		for (int i = 0; i < n; i++) {
			if (events[i].data.u64 == WAKEUP_TAG) {
				running = run_commands(w);
				break;
			}
		}
		for (int i = 0; i < n; i++) {
			uint64_t tag = events[i].data.u64;
			struct relay_stream *s = (struct relay_stream *)
				(uintptr_t)(tag & ~(uint64_t)3);

			if (tag == WAKEUP_TAG || s->dead)
				continue;
			forward_batch(w, s, (int)(tag >> 1 & 1),
				      (int)(tag & 1));
		}
		close_dead(w);
	}
	return NULL;
}

struct relay_worker *relay_worker_create(struct relay *relay,
					 unsigned index, int *err)
{
	struct relay_worker *w = calloc(1, sizeof(*w));
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = WAKEUP_TAG };

	if (!w) {
		*err = ENOMEM;
		return NULL;
	}
	w->relay = relay;
	w->index = index;
	w->epfd = w->evfd = -1;
	w->qtail = &w->qhead;
	w->stop_cmd.type = RELAY_CMD_STOP;
	*err = pthread_mutex_init(&w->qlock, NULL);
	if (*err) {
		free(w);
		return NULL;
	}
	w->buf = malloc(RELAY_BATCH * sizeof(*w->buf));
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!w->buf || w->epfd < 0 || w->evfd < 0 ||
	    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev) < 0) {
		*err = w->buf ? errno : ENOMEM;
		relay_worker_destroy(w);
		return NULL;
	}
	for (int i = 0; i < RELAY_BATCH; i++) {
		w->riov[i].iov_base = w->buf[i];
		w->riov[i].iov_len = RELAY_PKT_MAX;
		w->rmsg[i].msg_hdr.msg_iov = &w->riov[i];
		w->rmsg[i].msg_hdr.msg_iovlen = 1;
		w->rmsg[i].msg_hdr.msg_name = &w->src[i];
		w->smsg[i].msg_hdr.msg_iov = &w->siov[i];
		w->smsg[i].msg_hdr.msg_iovlen = 1;
	}
	return w;
}

int relay_worker_start(struct relay_worker *w)
{
	sigset_t all, old;
	int err;

	/* Signals are the main thread's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!err)
		w->started = true;
	return err;
}

void relay_worker_post(struct relay_worker *w, struct relay_cmd *cmd)
{
	uint64_t one = 1;

	cmd->next = NULL;
	pthread_mutex_lock(&w->qlock);
	*w->qtail = cmd;
	w->qtail = &cmd->next;
	pthread_mutex_unlock(&w->qlock);
	(void)!write(w->evfd, &one, sizeof(one));
}

void relay_worker_destroy(struct relay_worker *w)
{
	struct relay_cmd *cmd, *next;

	if (!w)
		return;
	if (w->started) {
		relay_worker_post(w, &w->stop_cmd);
		pthread_join(w->thread, NULL);
	}
	/* Never started: only PEER commands can be queued; free them. */
	for (cmd = w->qhead; cmd; cmd = next) {
		next = cmd->next;
		if (cmd->type == RELAY_CMD_PEER)
			free(cmd);
	}
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->evfd >= 0)
		close(w->evfd);
	pthread_mutex_destroy(&w->qlock);
	free(w->buf);
	free(w);
}

void relay_worker_totals(struct relay_worker *w, uint64_t *packets,
			 uint64_t *bytes, uint64_t *dropped)
{
	*packets += atomic_load_explicit(&w->packets, memory_order_acquire);
	*bytes += atomic_load_explicit(&w->bytes, memory_order_relaxed);
	*dropped += atomic_load_explicit(&w->dropped, memory_order_relaxed);
}
