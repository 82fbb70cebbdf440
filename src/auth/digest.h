/*
 * digest.h - HTTP digest for SIP (RFC 2617 / RFC 8760): HA1 hashing,
 * response verification (MD5, SHA-256, qop=auth), and stateless nonces
 * (HMAC of a timestamp with a per-process secret) with replay protection
 * by nonce-count. Owns the secret and the nonce-count table.
 */
#ifndef PINHOLE_AUTH_DIGEST_H
#define PINHOLE_AUTH_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/pl.h"

enum digest_alg { DIGEST_MD5 = 0, DIGEST_SHA256 = 1 };

/* "MD5" or absent -> MD5, "SHA-256" -> SHA256; EINVAL otherwise. */
int digest_alg_parse(struct pl name, enum digest_alg *alg);
const char *digest_alg_name(enum digest_alg alg);

/* HA1 = H(user:realm:password) as lowercase hex into out (65 bytes). */
void digest_ha1(enum digest_alg alg, const char *user, const char *realm,
		const char *password, char out[65]);

/* Initialise the nonce secret (random) and the replay table. */
int digest_init(unsigned nonce_lifetime_s);
void digest_close(void);

/* Make a fresh nonce (hex, NUL-terminated) for now. */
void digest_nonce_make(char out[64], uint64_t now_s);

enum digest_result {
	DIGEST_OK = 0,
	DIGEST_BAD_RESPONSE,	/* wrong password (or wrong HA1) */
	DIGEST_STALE,		/* nonce valid but expired: challenge stale=true */
	DIGEST_BAD_NONCE,	/* forged or unknown nonce */
	DIGEST_REPLAY,		/* nc not increasing for this nonce */
	DIGEST_MALFORMED,
};

struct digest_request {
	enum digest_alg alg;
	struct pl method, uri, nonce, response;
	struct pl qop, nc, cnonce;	/* unset when qop absent */
};

/* The expected response for req (req->response is ignored) as lowercase
 * hex into out: H(HA1:nonce:HA2), or H(HA1:nonce:nc:cnonce:qop:HA2) when
 * req->qop is set, with HA2 = H(method:uri). For tests and for answering
 * an upstream's challenge. */
void digest_response(const struct digest_request *req, const char *ha1_hex,
		     char out[65]);

/* Verify a response given the stored HA1 (hex, for the request's alg). */
enum digest_result digest_verify(const struct digest_request *req,
				 const char *ha1_hex, uint64_t now_s);

#endif
