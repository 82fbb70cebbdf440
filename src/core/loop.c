/*
 * loop.c - epoll + binary min-heap of timers.
 *
 * Why a heap: SIP keeps thousands of transaction timers alive at once
 * (Timer B/F/C, retransmissions, binding expiry), most of them cancelled
 * before they fire. A heap gives O(log n) start/cancel and O(1) next
 * deadline, with the timer embedded in its owner so nothing is allocated.
 * File events keep one small record per fd in an array indexed by fd.
 */
#include "core/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

struct fd_entry {
	loop_fd_fn *fn;
	void *arg;
	int events;
};

struct loop {
	int epfd;
	bool stop;
	struct fd_entry *fds;
	int nfds_cap;
	struct loop_timer **heap;	/* 1-based */
	unsigned heap_len;
	unsigned heap_cap;
};

static uint64_t now_ms;

uint64_t loop_now(void)
{
	if (!now_ms)
		loop_now_update();
	return now_ms;
}

void loop_now_update(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int loop_create(struct loop **loopp)
{
	struct loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return ENOMEM;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		int err = errno;
		free(loop);
		return err;
	}
	loop->heap_cap = 64;
	loop->heap = calloc(loop->heap_cap + 1, sizeof(*loop->heap));
	if (!loop->heap) {
		close(loop->epfd);
		free(loop);
		return ENOMEM;
	}
	*loopp = loop;
	return 0;
}

void loop_destroy(struct loop *loop)
{
	if (!loop)
		return;
	close(loop->epfd);
	free(loop->fds);
	free(loop->heap);
	free(loop);
}

static uint32_t to_epoll(int events)
{
	return ((events & LOOP_READ) ? EPOLLIN : 0) |
	       ((events & LOOP_WRITE) ? EPOLLOUT : 0);
}

int loop_fd_set(struct loop *loop, int fd, int events, loop_fd_fn *fn,
		void *arg)
{
	struct epoll_event ev = { .events = to_epoll(events), .data.fd = fd };
	bool exists;

	if (fd < 0)
		return EINVAL;
	if (fd >= loop->nfds_cap) {
		int cap = loop->nfds_cap ? loop->nfds_cap : 64;
		struct fd_entry *n;

		while (cap <= fd)
			cap *= 2;
		n = realloc(loop->fds, (size_t)cap * sizeof(*n));
		if (!n)
			return ENOMEM;
		memset(n + loop->nfds_cap, 0,
		       (size_t)(cap - loop->nfds_cap) * sizeof(*n));
		loop->fds = n;
		loop->nfds_cap = cap;
	}
	exists = loop->fds[fd].fn != NULL;
	if (epoll_ctl(loop->epfd, exists ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd,
		      &ev) < 0)
		return errno;
	loop->fds[fd] = (struct fd_entry){ fn, arg, events };
	return 0;
}

void loop_fd_del(struct loop *loop, int fd)
{
	if (fd < 0 || fd >= loop->nfds_cap || !loop->fds[fd].fn)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	loop->fds[fd] = (struct fd_entry){ 0 };
}

void loop_timer_init(struct loop_timer *t, loop_timer_fn *fn, void *arg)
{
	t->when = 0;
	t->heap_index = 0;
	t->fn = fn;
	t->arg = arg;
}

static void heap_swap(struct loop *loop, unsigned a, unsigned b)
{
	struct loop_timer *t = loop->heap[a];

	loop->heap[a] = loop->heap[b];
	loop->heap[b] = t;
	loop->heap[a]->heap_index = a;
	loop->heap[b]->heap_index = b;
}

static void heap_up(struct loop *loop, unsigned i)
{
	while (i > 1 && loop->heap[i / 2]->when > loop->heap[i]->when) {
		heap_swap(loop, i, i / 2);
		i /= 2;
	}
}

static void heap_down(struct loop *loop, unsigned i)
{
	for (;;) {
		unsigned l = 2 * i, r = l + 1, m = i;

		if (l <= loop->heap_len && loop->heap[l]->when < loop->heap[m]->when)
			m = l;
		if (r <= loop->heap_len && loop->heap[r]->when < loop->heap[m]->when)
			m = r;
		if (m == i)
			return;
		heap_swap(loop, i, m);
		i = m;
	}
}

void loop_timer_cancel(struct loop *loop, struct loop_timer *t)
{
	unsigned i = t->heap_index;

	if (!i)
		return;
	if (i != loop->heap_len) {
		heap_swap(loop, i, loop->heap_len);
		loop->heap_len--;
		heap_up(loop, i);
		heap_down(loop, i);
	} else {
		loop->heap_len--;
	}
	t->heap_index = 0;
}

void loop_timer_start(struct loop *loop, struct loop_timer *t,
		      uint64_t delay_ms)
{
	loop_timer_cancel(loop, t);
	if (loop->heap_len == loop->heap_cap) {
		unsigned cap = loop->heap_cap * 2;
		struct loop_timer **h = realloc(loop->heap,
						(cap + 1) * sizeof(*h));
		if (!h)
			abort();	/* cannot keep a promise to fire */
		loop->heap = h;
		loop->heap_cap = cap;
	}
	t->when = loop_now() + delay_ms;
	loop->heap[++loop->heap_len] = t;
	t->heap_index = loop->heap_len;
	heap_up(loop, loop->heap_len);
}

static void run_timers(struct loop *loop)
{
	/* Bound one pass so a timer that re-arms with 0 cannot starve I/O. */
	unsigned budget = loop->heap_len + 16;

	while (loop->heap_len && loop->heap[1]->when <= now_ms && budget--) {
		struct loop_timer *t = loop->heap[1];

		loop_timer_cancel(loop, t);
		t->fn(t->arg);
	}
}

int loop_run(struct loop *loop)
{
	struct epoll_event evs[64];

	loop->stop = false;
	while (!loop->stop) {
		int timeout = -1, n;

		loop_now_update();
		run_timers(loop);
		if (loop->stop)
			break;
		if (loop->heap_len) {
			uint64_t when = loop->heap[1]->when;
			timeout = when > now_ms ? (int)(when - now_ms) : 0;
			if (timeout > 1000)
				timeout = 1000;
		}
		n = epoll_wait(loop->epfd, evs, 64, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		loop_now_update();
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd, events = 0;
			struct fd_entry *e;

			if (fd >= loop->nfds_cap || !loop->fds[fd].fn)
				continue;
			e = &loop->fds[fd];
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				events |= LOOP_READ;
			if (evs[i].events & EPOLLOUT)
				events |= LOOP_WRITE;
			e->fn(fd, events, e->arg);
		}
	}
	return 0;
}

void loop_stop(struct loop *loop)
{
	loop->stop = true;
}
