/*
 * alarm.h - raising alarms: a persisted history entry (store) and a log
 * line, each with what happened and the fix in plain words. Repeats of
 * the same code and subject within a quiet period are counted, not
 * stored again, so a flapping condition cannot flood the history.
 */
#ifndef PINHOLE_ALARM_H
#define PINHOLE_ALARM_H

#include <stdbool.h>
#include <stdint.h>

struct store;

enum alarm_severity { ALARM_INFO, ALARM_WARNING, ALARM_MINOR, ALARM_MAJOR,
		      ALARM_CRITICAL };

void alarm_init(struct store *store);
/* code: stable machine name ("stun-failed"); subject: what it is about
 * (an AOR, an address); the text says what happened and how to fix it. */
void alarm_raise(enum alarm_severity sev, const char *code,
		 const char *subject, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
uint64_t alarm_count(void);

/* watch.c: count a failed digest login; raises auth-wrong-password (an
 * existing user, repeatedly) or auth-scanner (unknown users from one
 * address). */
void alarm_watch_auth_failure(const char *user, bool unknown_user,
			      const char *source_ip);

#endif
