/*
 * watch.c - turning repeated events into one alarm: authentication
 * failures per user and per source address. A bounded, direct-mapped table
 * of counters over a sliding minute; the alarm module's quiet period keeps
 * a persistent attacker from filling the history.
 *
 * Wrong password (the account exists) and scanning (names that do not
 * exist, many of them from one address) call for different fixes, so they
 * are different alarms.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alarm/alarm.h"
#include "util/hash.h"

#define SLOTS 1024
#define WINDOW_S 60
#define THRESHOLD 5

struct counter {
	uint64_t key;
	time_t start;
	unsigned n;
};

static struct counter counters[SLOTS];

static unsigned bump(const char *kind, const char *what)
{
	uint64_t key = hash_bytes(hash_bytes(HASH_SEED, kind, strlen(kind)),
				  what, strlen(what));
	struct counter *c = &counters[key % SLOTS];
	time_t now = time(NULL);

	if (c->key != key || now - c->start > WINDOW_S) {
		c->key = key;
		c->start = now;
		c->n = 0;
	}
	return ++c->n;
}

void alarm_watch_auth_failure(const char *user, bool unknown_user,
			      const char *source_ip)
{
	unsigned by_user = unknown_user ? 0 : bump("user", user);
	unsigned by_ip = bump(unknown_user ? "scan" : "ip", source_ip);

	if (by_user == THRESHOLD)
		alarm_raise(ALARM_MINOR, "auth-wrong-password", user,
			    "%u failed logins for %s within %us, last from %s: "
			    "the phone has a wrong password; set the right one on "
			    "the phone or with `pinhole user add %s`",
			    by_user, user, WINDOW_S, source_ip, user);
	if (unknown_user && by_ip == THRESHOLD)
		alarm_raise(ALARM_MAJOR, "auth-scanner", source_ip,
			    "%u login attempts for unknown users from %s within "
			    "%us: a SIP scanner is probing this server; block %s "
			    "at the firewall (pinhole keeps refusing it)",
			    by_ip, source_ip, WINDOW_S, source_ip);
}
