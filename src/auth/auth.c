/*
 * auth.c - SIP digest authentication policy (see auth.h).
 *
 * Each challenge offers SHA-256 and MD5 (RFC 8760 8.1: a UAS may offer
 * several; the client picks the strongest it knows). MD5 is listed first
 * because a number of deployed phones only read the first challenge.
 * The realm is the SIP domain. Wrong credentials are answered with a
 * fresh challenge (not 403) so that a phone whose password was just
 * changed can retry; repeated failures are counted for alarms.
 */
#include "auth/auth.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/digest.h"
#include "log/log.h"
#include "store/store.h"

static struct auth_stats stats;
static struct auth_failure last_failure;

const struct auth_failure *auth_last_failure(void)
{
	return &last_failure;
}

/*
 * A short-lived cache of accounts: every REGISTER and INVITE needs the HA1,
 * and an SQLite read costs a transaction with file locks (fcntl) each time.
 * Entries live ACCOUNT_TTL seconds, so a password changed with
 * `pinhole user add` takes effect within that time. Fixed size, direct
 * mapped by name hash: nothing grows.
 */
#define ACCOUNT_CACHE 4096
#define ACCOUNT_TTL 10
struct account_slot {
	struct store_user user;
	time_t expires;
	bool missing;		/* negative entry: no such user */
};
static struct account_slot accounts[ACCOUNT_CACHE];

static int account_get(struct store *store, const char *name,
		       struct store_user *out)
{
	uint64_t h = 14695981039346656037ULL;
	struct account_slot *slot;
	time_t now = time(NULL);
	int err;

	for (const char *c = name; *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ULL;
	slot = &accounts[h % ACCOUNT_CACHE];
	if (slot->expires > now && strcmp(slot->user.name, name) == 0) {
		if (slot->missing)
			return ENOENT;
		*out = slot->user;
		return 0;
	}
	err = store_user_get(store, name, out);
	if (err && err != ENOENT)
		return err;
	memset(slot, 0, sizeof(*slot));
	snprintf(slot->user.name, sizeof(slot->user.name), "%s", name);
	slot->missing = err == ENOENT;
	if (!err)
		slot->user = *out;
	/* Unknown names expire fast: a new account should work at once. */
	slot->expires = now + (err ? 1 : ACCOUNT_TTL);
	return err;
}

const struct auth_stats *auth_stats(void)
{
	return &stats;
}

static void make_challenge(bool www, const char *realm, bool stale,
			   char *out, size_t cap)
{
	char nonce[64];
	const char *h = www ? "WWW-Authenticate" : "Proxy-Authenticate";

	digest_nonce_make(nonce, (uint64_t)time(NULL));
	snprintf(out, cap,
		 "%s: Digest realm=\"%s\", nonce=\"%s\", qop=\"auth\", "
		 "algorithm=MD5%s\r\n"
		 "%s: Digest realm=\"%s\", nonce=\"%s\", qop=\"auth\", "
		 "algorithm=SHA-256%s\r\n",
		 h, realm, nonce, stale ? ", stale=true" : "",
		 h, realm, nonce, stale ? ", stale=true" : "");
}

enum auth_outcome auth_check(const struct sip_msg *msg, bool www,
			     const char *realm, struct store *store,
			     char *user, size_t user_cap,
			     char *challenge, size_t challenge_cap,
			     bool *failed)
{
	enum sip_hdr_id id = www ? SIP_HDR_AUTHORIZATION
				 : SIP_HDR_PROXY_AUTHORIZATION;
	struct store_user account;
	struct sip_auth cred;
	struct digest_request req;
	enum digest_result r;
	char name[64];
	bool found = false;

	*failed = false;
	for (int i = msg->first[id]; i >= 0; i = sip_hdr_next(msg, i, id)) {
		if (sip_auth_parse(&cred, msg->hdrs[i].value) == 0 &&
		    pl_caseeq_str(cred.scheme, "Digest") &&
		    pl_eq_str(cred.realm, realm)) {
			found = true;
			break;
		}
	}
	if (!found) {
		stats.challenged++;
		make_challenge(www, realm, false, challenge, challenge_cap);
		return AUTH_CHALLENGE;
	}
	memset(&req, 0, sizeof(req));
	if (!pl_isset(cred.username) || cred.username.l >= sizeof(name) ||
	    !pl_isset(cred.nonce) || !pl_isset(cred.response) ||
	    digest_alg_parse(cred.algorithm, &req.alg)) {
		stats.failed++;
		*failed = true;
		snprintf(last_failure.user, sizeof(last_failure.user),
			 "(malformed credentials)");
		last_failure.unknown_user = true;
		make_challenge(www, realm, false, challenge, challenge_cap);
		return AUTH_CHALLENGE;
	}
	pl_strcpy(name, sizeof(name), cred.username);
	snprintf(last_failure.user, sizeof(last_failure.user), "%s", name);
	last_failure.unknown_user = false;
	if (account_get(store, name, &account)) {
		last_failure.unknown_user = true;
		stats.unknown_user++;
		stats.failed++;
		*failed = true;
		log_info("auth", "unknown user=%s", name);
		make_challenge(www, realm, false, challenge, challenge_cap);
		return AUTH_CHALLENGE;
	}
	req.method = msg->method;
	req.uri = cred.uri;
	req.nonce = cred.nonce;
	req.response = cred.response;
	req.qop = cred.qop;
	req.nc = cred.nc;
	req.cnonce = cred.cnonce;
	r = digest_verify(&req, req.alg == DIGEST_SHA256 ? account.ha1_sha256
							 : account.ha1_md5,
			  (uint64_t)time(NULL));
	switch (r) {
	case DIGEST_OK:
		stats.ok++;
		snprintf(user, user_cap, "%s", name);
		return AUTH_OK;
	case DIGEST_STALE:
	case DIGEST_BAD_NONCE:
		/* An old nonce (or one from before a restart) with a correct
		 * or unknowable answer: let the phone retry silently. */
		stats.stale++;
		make_challenge(www, realm, true, challenge, challenge_cap);
		return AUTH_CHALLENGE;
	default:
		stats.failed++;
		*failed = true;
		log_info("auth", "failed user=%s reason=%d", name, (int)r);
		make_challenge(www, realm, false, challenge, challenge_cap);
		return AUTH_CHALLENGE;
	}
}
