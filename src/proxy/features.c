/*
 * features.c - building routing plans from the features table (see
 * features.h). Pure policy: no sockets, no transactions; the proxy runs
 * the plan.
 *
 * Per user (subject = the user name):
 *   forward_always = TARGET       every call goes there instead
 *   also_ring = TARGET[,TARGET]   rings together with the user's devices
 *   forward_busy = TARGET         after 486/600 from the user's devices
 *   forward_noanswer = TARGET     after forward_noanswer_after seconds
 *   forward_noanswer_after = N    (default 20)
 *   forward_unreachable = TARGET  when nothing is registered
 * Per hunt group (subject = "group:NUMBER"):
 *   members = a,b,c   mode = sequential|parallel (default sequential)
 *   ring_time = N (default 15)   final = TARGET (e.g. voicemail)
 */
#include "proxy/features.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

const char *const features_user_keys[] = {
	"forward_always", "also_ring", "forward_busy", "forward_noanswer",
	"forward_noanswer_after", "forward_unreachable", NULL,
};
const char *const features_group_keys[] = {
	"members", "mode", "ring_time", "final", NULL,
};

static bool get(struct store *store, const char *subject, const char *key,
		char *value, size_t cap)
{
	return store && store_feature_get(store, subject, key, value, cap) == 0 &&
	       value[0];
}

static unsigned get_uint(struct store *store, const char *subject,
			 const char *key, unsigned dflt)
{
	char v[32];
	long n;

	if (!get(store, subject, key, v, sizeof(v)))
		return dflt;
	n = strtol(v, NULL, 10);
	return n > 0 && n < 86400 ? (unsigned)n : dflt;
}

static struct plan_stage *add_stage(struct plan *plan, enum stage_when when,
				    unsigned ring_s)
{
	struct plan_stage *st;

	if (plan->nstages == PLAN_MAX_STAGES)
		return NULL;
	st = &plan->stages[plan->nstages++];
	memset(st, 0, sizeof(*st));
	st->when = when;
	st->ring_s = ring_s;
	return st;
}

static void add_spec(struct plan_stage *st, const char *spec, size_t len)
{
	while (len && (*spec == ' ' || *spec == '\t')) {
		spec++;
		len--;
	}
	while (len && (spec[len - 1] == ' ' || spec[len - 1] == '\t'))
		len--;
	if (!st || !len || st->nspecs == PLAN_MAX_SPECS ||
	    len >= PLAN_SPEC_LEN)
		return;
	memcpy(st->specs[st->nspecs], spec, len);
	st->specs[st->nspecs][len] = '\0';
	st->nspecs++;
}

/* Every item of a comma-separated list into one stage. */
static void add_specs(struct plan_stage *st, const char *list)
{
	const char *p = list;

	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		add_spec(st, p, len);
		p += len + (comma ? 1 : 0);
	}
}

/* A comma-separated list into one stage each (sequential) or one stage. */
static void add_list(struct plan *plan, const char *list, bool one_each,
		     enum stage_when first_when, enum stage_when next_when,
		     unsigned ring_s)
{
	struct plan_stage *st = NULL;
	const char *p = list;

	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (!st || one_each)
			st = add_stage(plan, st || plan->nstages ? next_when
								 : first_when,
				       ring_s);
		add_spec(st, p, len);
		p += len + (comma ? 1 : 0);
	}
}

void features_plan(struct store *store, const char *user, struct plan *plan)
{
	char subject[PLAN_SPEC_LEN + 8], v[1024];
	struct plan_stage *st;
	unsigned noanswer_s;

	memset(plan, 0, sizeof(*plan));
	snprintf(subject, sizeof(subject), "group:%s", user);
	if (get(store, subject, "members", v, sizeof(v))) {
		char mode[32] = "sequential", fin[PLAN_SPEC_LEN];
		unsigned ring = get_uint(store, subject, "ring_time", 15);
		bool sequential;

		get(store, subject, "mode", mode, sizeof(mode));
		sequential = strcmp(mode, "parallel") != 0;
		snprintf(plan->label, sizeof(plan->label), "group %s", user);
		add_list(plan, v, sequential, STAGE_ALWAYS, STAGE_ON_FAILURE,
			 ring);
		if (get(store, subject, "final", fin, sizeof(fin)))
			add_spec(add_stage(plan, STAGE_ON_FAILURE, 0), fin,
				 strlen(fin));
		return;
	}
	if (get(store, user, "forward_always", v, sizeof(v))) {
		snprintf(plan->label, sizeof(plan->label), "user %s", user);
		add_spec(add_stage(plan, STAGE_ALWAYS, 0), v, strlen(v));
		return;
	}
	{
		char busy[PLAN_SPEC_LEN] = "", noans[PLAN_SPEC_LEN] = "";
		char unreach[PLAN_SPEC_LEN] = "", also[1024] = "";
		bool any = get(store, user, "forward_busy", busy, sizeof(busy)) |
			   get(store, user, "forward_noanswer", noans, sizeof(noans)) |
			   get(store, user, "forward_unreachable", unreach,
			       sizeof(unreach)) |
			   get(store, user, "also_ring", also, sizeof(also));
		char self[PLAN_SPEC_LEN];

		if (!any)
			return;	/* nothing configured: plain routing */
		snprintf(plan->label, sizeof(plan->label), "user %s", user);
		noanswer_s = noans[0] ? get_uint(store, user,
						 "forward_noanswer_after", 20) : 0;
		st = add_stage(plan, STAGE_ALWAYS, noanswer_s);
		snprintf(self, sizeof(self), "=%s", user);
		add_spec(st, self, strlen(self));
		add_specs(st, also);	/* simultaneous ring */
		if (busy[0])
			add_spec(add_stage(plan, STAGE_ON_BUSY, 0), busy, strlen(busy));
		if (noans[0])
			add_spec(add_stage(plan, STAGE_ON_NOANSWER, 0), noans,
				 strlen(noans));
		if (unreach[0])
			add_spec(add_stage(plan, STAGE_ON_UNREACHABLE, 0), unreach,
				 strlen(unreach));
	}
}

bool features_stage_matches(enum stage_when when, enum stage_outcome out)
{
	switch (when) {
	case STAGE_ON_FAILURE:
		return true;
	case STAGE_ON_BUSY:
		return out == OUTCOME_BUSY;
	case STAGE_ON_NOANSWER:
		return out == OUTCOME_NOANSWER;
	case STAGE_ON_UNREACHABLE:
		return out == OUTCOME_UNREACHABLE;
	default:
		return false;
	}
}

enum stage_outcome features_outcome(unsigned status, bool timed_out,
				    bool nobody)
{
	if (nobody)
		return OUTCOME_UNREACHABLE;
	if (status == 486 || status == 600)
		return OUTCOME_BUSY;
	if (timed_out || status == 408 || status == 480 || status == 0)
		return OUTCOME_NOANSWER;
	return OUTCOME_FAILED;
}

const char *features_outcome_name(enum stage_outcome out)
{
	static const char *const names[] = { "busy", "no answer",
					     "unreachable", "failed" };
	return names[out];
}

bool features_list_has(const char *list, const char *item)
{
	size_t ilen = strlen(item);
	const char *p = list;

	while (ilen && *p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		const char *s = p;

		p += len + (comma ? 1 : 0);
		while (len && (*s == ' ' || *s == '\t')) {
			s++;
			len--;
		}
		while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
			len--;
		if (len == ilen && memcmp(s, item, len) == 0)
			return true;
	}
	return false;
}

struct scope_walk {
	const char *user;
	char *scope;
	size_t cap, len;
	unsigned groups;
};

/* Append one item unless it is there already or would not fit whole. */
static void scope_add(struct scope_walk *w, const char *item, size_t len)
{
	char one[PLAN_SPEC_LEN];

	while (len && (*item == ' ' || *item == '\t')) {
		item++;
		len--;
	}
	while (len && (item[len - 1] == ' ' || item[len - 1] == '\t'))
		len--;
	if (!len || len >= sizeof(one))
		return;
	memcpy(one, item, len);
	one[len] = '\0';
	if (features_list_has(w->scope, one) ||
	    w->len + len + 2 > w->cap)
		return;
	if (w->len)
		w->scope[w->len++] = ',';
	memcpy(w->scope + w->len, one, len + 1);
	w->len += len;
}

static void scope_visit(const char *subject, const char *key,
			const char *value, void *arg)
{
	struct scope_walk *w = arg;
	const char *p = value;

	if (strncmp(subject, "group:", 6) != 0 || strcmp(key, "members") != 0 ||
	    !features_list_has(value, w->user))
		return;
	w->groups++;
	scope_add(w, subject + 6, strlen(subject + 6));
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		scope_add(w, p, len);
		p += len + (comma ? 1 : 0);
	}
}

unsigned features_pickup_scope(struct store *store, const char *user,
			       char *scope, size_t cap)
{
	struct scope_walk w = { .user = user, .scope = scope, .cap = cap };

	if (!cap)
		return 0;
	scope[0] = '\0';
	/* A scan of the features table: pickups are rare, groups few. */
	if (store)
		store_feature_foreach(store, NULL, scope_visit, &w);
	return w.groups;
}
