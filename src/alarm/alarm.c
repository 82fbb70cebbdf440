/*
 * alarm.c - alarms with a persisted history (see alarm.h).
 *
 * The quiet period is kept in a small direct-mapped table of recent
 * (code, subject) pairs: a bounded memory of what was just said.
 */
#include "alarm/alarm.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log/log.h"
#include "store/store.h"
#include "util/hash.h"

#define RECENT 256
#define QUIET_S 300

static struct {
	struct store *store;
	uint64_t raised;
	struct {
		uint64_t key;
		time_t at;
	} recent[RECENT];
} A;

static const char *const sev_names[] = { "info", "warning", "minor", "major",
					 "critical" };

void alarm_init(struct store *store)
{
	A.store = store;
}

uint64_t alarm_count(void)
{
	return A.raised;
}

void alarm_raise(enum alarm_severity sev, const char *code,
		 const char *subject, const char *fmt, ...)
{
	struct store_alarm a;
	uint64_t key = hash_bytes(hash_bytes(HASH_SEED, code, strlen(code)),
				  subject, strlen(subject));
	time_t now = time(NULL);
	unsigned slot = (unsigned)(key % RECENT);
	va_list ap;

	if (A.recent[slot].key == key && now - A.recent[slot].at < QUIET_S)
		return;
	A.recent[slot].key = key;
	A.recent[slot].at = now;
	memset(&a, 0, sizeof(a));
	a.time = (int64_t)now;
	snprintf(a.severity, sizeof(a.severity), "%s", sev_names[sev]);
	snprintf(a.code, sizeof(a.code), "%s", code);
	snprintf(a.subject, sizeof(a.subject), "%s", subject);
	va_start(ap, fmt);
	vsnprintf(a.text, sizeof(a.text), fmt, ap);
	va_end(ap);
	A.raised++;
	log_write(sev >= ALARM_MAJOR ? LOG_ERROR : LOG_WARNING, "alarm",
		  "%s %s subject=%s: %s", a.severity, a.code, a.subject, a.text);
	if (A.store)
		store_alarm_add(A.store, &a);
}
