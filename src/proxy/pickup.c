/*
 * pickup.c - call pickup policy (see pickup.h).
 *
 * A pickup is an INVITE from the picker to a feature code. The proxy does
 * not answer it itself (it is no user agent and keeps no media of its
 * own): it sends the picker's INVITE on to the caller of the ringing call
 * with a Replaces header naming the caller's early dialog. A caller that
 * supports RFC 3891 answers the picker and CANCELs its first INVITE, which
 * the proxy forwards to the ringing phones like any CANCEL. Pinhole knows
 * every early dialog it routes (its INVITE transactions and their 18x),
 * so no phone has to subscribe to dialog events for this.
 *
 * What is "ringing for an extension" is decided here from two names per
 * branch: the user the call was dialled to, and the user whose device the
 * branch rings (they differ for forwarding, simultaneous ring and hunt
 * groups). Either matching is enough, so *78bob picks up a call to bob
 * forwarded elsewhere, and a call to hunt group 600 ringing at bob.
 */
#include "proxy/pickup.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf.h"
#include "proxy/features.h"
#include "store/store.h"

/* The user part as dialled: phones escape '#' as %23 (RFC 3261 25.1). */
static bool unescape_user(struct pl user, char *out, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < user.l; i++) {
		char c = user.p[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= user.l)
				return false;
			hi = hex_digit(user.p[i + 1]);
			lo = hex_digit(user.p[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (!c || n + 1 >= cap)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return true;
}

enum pickup_kind pickup_code(const struct conf *conf, struct pl dialled,
			     struct pickup *pk)
{
	size_t plen = strlen(conf->pickup_prefix);
	char user[sizeof(pk->ext) + 16];

	memset(pk, 0, sizeof(*pk));
	if (!unescape_user(dialled, user, sizeof(user)))
		return PICKUP_NONE;
	if (strcmp(user, conf->group_pickup_code) == 0) {
		pk->kind = PICKUP_GROUP;
	} else if (plen && strncmp(user, conf->pickup_prefix, plen) == 0 &&
		   strlen(user + plen) < sizeof(pk->ext)) {
		pk->kind = PICKUP_DIRECTED;
		strcpy(pk->ext, user + plen);
	}
	return pk->kind;
}

unsigned pickup_prepare(struct pickup *pk, struct store *store,
			const char *picker, const char **reason)
{
	char subject[80], members[16];
	struct store_user u;

	snprintf(pk->picker, sizeof(pk->picker), "%s", picker);
	*reason = NULL;
	if (pk->kind == PICKUP_GROUP) {
		if (!features_pickup_scope(store, picker, pk->scope,
					   sizeof(pk->scope))) {
			*reason = "Not In A Pickup Group";
			return 480;
		}
		return 0;
	}
	if (!pk->ext[0]) {
		*reason = "Extension Missing";
		return 484;
	}
	snprintf(subject, sizeof(subject), "group:%s", pk->ext);
	if (store_user_get(store, pk->ext, &u) != 0 &&
	    store_feature_get(store, subject, "members", members,
			      sizeof(members)) != 0) {
		*reason = "No Such Extension";
		return 404;
	}
	return 0;
}

bool pickup_may_take(const struct pickup *pk, const char *dialled,
		     const char *ringing_user)
{
	/* The picker's own phone ringing is not a call to pick up. */
	if (strcmp(ringing_user, pk->picker) == 0)
		return false;
	switch (pk->kind) {
	case PICKUP_DIRECTED:
		return strcmp(dialled, pk->ext) == 0 ||
		       strcmp(ringing_user, pk->ext) == 0;
	case PICKUP_GROUP:
		return (dialled[0] && features_list_has(pk->scope, dialled)) ||
		       (ringing_user[0] &&
			features_list_has(pk->scope, ringing_user));
	default:
		return false;
	}
}

int pickup_headers(char *out, size_t cap, struct pl call_id,
		   struct pl caller_tag, const char *callee_tag)
{
	int n = snprintf(out, cap,
			 "Replaces: %.*s;to-tag=%.*s;from-tag=%s;early-only\r\n"
			 "Require: replaces\r\n",
			 PL_FMT(call_id), PL_FMT(caller_tag), callee_tag);

	return n < 0 || (size_t)n >= cap ? ENOSPC : 0;
}
