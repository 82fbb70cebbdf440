/*
 * pickup.h - call pickup policy: which dialled codes ask for a pickup
 * (directed: [features] pickup_prefix + extension; group: the
 * group_pickup_code), who may pick up which ringing call, and the
 * Replaces header (RFC 3891) that hands the caller's early dialog over to
 * the picker. The proxy finds the ringing calls and sends the INVITE.
 */
#ifndef PINHOLE_PROXY_PICKUP_H
#define PINHOLE_PROXY_PICKUP_H

#include <stdbool.h>
#include <stddef.h>

#include "util/pl.h"

struct conf;
struct store;

enum pickup_kind {
	PICKUP_NONE = 0,
	PICKUP_DIRECTED,	/* *78 + extension */
	PICKUP_GROUP,		/* *8: any ringing member of the picker's groups */
};

struct pickup {
	enum pickup_kind kind;
	char picker[64];	/* the local user dialling the code */
	char ext[64];		/* directed: the extension asked for */
	char scope[1024];	/* group: users and group numbers, comma-joined */
};

/* Does dialled (a Request-URI user of our domain) ask for a pickup? Fills
 * pk->kind and pk->ext; PICKUP_NONE for an ordinary call. */
enum pickup_kind pickup_code(const struct conf *conf, struct pl dialled,
			     struct pickup *pk);

/* Check the request against the store once the picker is known: 0 to go
 * on, else the status to answer and *reason (404 for an extension that is
 * neither a user nor a group, 480 for a picker in no hunt group, 484 for
 * the bare prefix). Fills pk->scope for a group pickup. */
unsigned pickup_prepare(struct pickup *pk, struct store *store,
			const char *picker, const char **reason);

/* May pk take a call dialled to `dialled` ("" when not our domain) that
 * rings at a device of `ringing_user` ("" when unknown: a gateway, a
 * URI)? Never a branch ringing the picker's own phone. */
bool pickup_may_take(const struct pickup *pk, const char *dialled,
		     const char *ringing_user);

/* The header lines for the INVITE to the caller: "Replaces: ..." for the
 * early dialog (call_id, the caller's From tag, the ringing phone's To
 * tag), oriented as the caller sees it (RFC 3891 section 3: to-tag is the
 * recipient's local tag, from-tag its remote tag), early-only, and
 * "Require: replaces". Returns 0 or ENOSPC. */
int pickup_headers(char *out, size_t cap, struct pl call_id,
		   struct pl caller_tag, const char *callee_tag);

#endif
