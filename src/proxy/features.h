/*
 * features.h - telephony features as a routing plan: simultaneous ring,
 * hunt groups (sequential or parallel), call forwarding (always, busy, no
 * answer, unreachable). A plan is a list of stages; the proxy rings one
 * stage at a time and moves on when the stage ends the way the next
 * stage's condition asks. Settings come from the store (features table),
 * managed with `pinhole user set` and `pinhole group`.
 */
#ifndef PINHOLE_PROXY_FEATURES_H
#define PINHOLE_PROXY_FEATURES_H

#include <stdbool.h>
#include <stddef.h>

struct store;

#define PLAN_MAX_STAGES 10
#define PLAN_MAX_SPECS 8
#define PLAN_SPEC_LEN 128

enum stage_when {
	STAGE_ALWAYS = 0,	/* the first stage */
	STAGE_ON_BUSY,		/* previous stage ended busy (486, 600) */
	STAGE_ON_NOANSWER,	/* ring time ran out, or 408/480 */
	STAGE_ON_UNREACHABLE,	/* previous stage had nobody to ring */
	STAGE_ON_FAILURE,	/* any of the above or another failure */
};

enum stage_outcome {
	OUTCOME_BUSY, OUTCOME_NOANSWER, OUTCOME_UNREACHABLE, OUTCOME_FAILED,
};

struct plan_stage {
	enum stage_when when;
	unsigned ring_s;		/* 0 = ring until answered */
	unsigned nspecs;
	/* "=USER": the registered devices of USER only; "USER" or a number:
	 * that user (following its forward_always), a group member, or a
	 * [routes] number; "sip:...": a URI. */
	char specs[PLAN_MAX_SPECS][PLAN_SPEC_LEN];
};

struct plan {
	unsigned nstages;
	struct plan_stage stages[PLAN_MAX_STAGES];
	char label[64];			/* "user alice", "group 600" */
};

/* The plan for a call to `user` of our domain; plan->nstages == 0 when
 * nothing is configured (plain routing to the user's devices). */
void features_plan(struct store *store, const char *user, struct plan *plan);

/* May a stage with this condition follow an outcome? */
bool features_stage_matches(enum stage_when when, enum stage_outcome out);
enum stage_outcome features_outcome(unsigned status, bool timed_out,
				    bool nobody);
const char *features_outcome_name(enum stage_outcome out);

/* Is item one of the comma-separated list (blanks around items ignored)? */
bool features_list_has(const char *list, const char *item);

/* Group call pickup: the members of every hunt group `user` is a member
 * of, and those groups' numbers, comma-separated into scope (truncated
 * at a whole item when it does not fit). Returns how many groups. */
unsigned features_pickup_scope(struct store *store, const char *user,
			       char *scope, size_t cap);

/* The keys `pinhole user set` accepts, NULL-terminated (for the CLI). */
extern const char *const features_user_keys[];
extern const char *const features_group_keys[];

#endif
