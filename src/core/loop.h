/*
 * loop.h - the signalling thread's event loop: epoll file events and
 * one-shot timers, Redis ae style. Single-threaded: nothing here locks.
 * The relay data path has its own threads and never uses this loop.
 */
#ifndef PINHOLE_CORE_LOOP_H
#define PINHOLE_CORE_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;
struct loop_timer;

enum { LOOP_READ = 1, LOOP_WRITE = 2 };

typedef void (loop_fd_fn)(int fd, int events, void *arg);
typedef void (loop_timer_fn)(void *arg);

int loop_create(struct loop **loopp);
void loop_destroy(struct loop *loop);

/* Watch fd for events (LOOP_READ|LOOP_WRITE); calling again modifies. */
int loop_fd_set(struct loop *loop, int fd, int events, loop_fd_fn *fn,
		void *arg);
void loop_fd_del(struct loop *loop, int fd);

/* Monotonic milliseconds, cached per loop iteration. */
uint64_t loop_now(void);
/* Refresh the cached clock (called by the loop itself each iteration). */
void loop_now_update(void);

/* A timer is embedded in its owner (no allocation). Arming an armed timer
 * re-arms it; cancel is a no-op on an idle timer. */
struct loop_timer {
	uint64_t when;
	unsigned heap_index;	/* 0 = not armed */
	loop_timer_fn *fn;
	void *arg;
};
void loop_timer_init(struct loop_timer *t, loop_timer_fn *fn, void *arg);
void loop_timer_start(struct loop *loop, struct loop_timer *t,
		      uint64_t delay_ms);
void loop_timer_cancel(struct loop *loop, struct loop_timer *t);
static inline bool loop_timer_armed(const struct loop_timer *t)
{
	return t->heap_index != 0;
}

/* Run until loop_stop(). Returns 0. */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop);

#endif
