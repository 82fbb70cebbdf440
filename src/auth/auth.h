/*
 * auth.h - digest authentication of SIP requests: find the credentials
 * for our realm, check them against the account store, build challenges.
 * Owns the policy "who proved to be whom"; the crypto is in digest.h.
 */
#ifndef PINHOLE_AUTH_H
#define PINHOLE_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "sip/msg.h"

struct store;

enum auth_outcome {
	AUTH_OK = 0,		/* user holds the authenticated name */
	AUTH_CHALLENGE,		/* send 401/407 with the challenge lines */
	AUTH_FORBIDDEN,		/* 403 (e.g. wrong realm user mismatch) */
};

struct auth_stats {
	unsigned long ok, challenged, failed, stale, unknown_user;
};

/*
 * Check msg's Authorization (www=true, REGISTER) or Proxy-Authorization
 * (www=false) for realm. On AUTH_CHALLENGE, `challenge` gets complete
 * header lines (WWW-/Proxy-Authenticate for SHA-256 and MD5). `failed`
 * is set when credentials were present but wrong (for alarms/metrics).
 */
enum auth_outcome auth_check(const struct sip_msg *msg, bool www,
			     const char *realm, struct store *store,
			     char *user, size_t user_cap,
			     char *challenge, size_t challenge_cap,
			     bool *failed);

const struct auth_stats *auth_stats(void);

/* What the last failed check was about (valid right after auth_check set
 * *failed): the user name claimed and whether such an account exists. */
struct auth_failure {
	char user[64];
	bool unknown_user;
};
const struct auth_failure *auth_last_failure(void);

#endif
