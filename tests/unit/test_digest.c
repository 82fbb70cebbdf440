/*
 * test_digest.c - digest auth: published vectors (RFC 2617 MD5, RFC 7616
 * SHA-256, cross-checked with python hashlib and openssl dgst), stateless
 * nonces (forgery, expiry), nonce-count replay and the bounded nc table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/digest.h"
#include "log/log.h"

#define NOW 1700000000u
#define LIFETIME 300u

static int setup(void **state)
{
	log_set_level(LOG_ERROR);
	return digest_init(LIFETIME) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	digest_close();
	return 0;
}

static void test_alg_parse(void **state)
{
	enum digest_alg alg = DIGEST_SHA256;

	assert_int_equal(digest_alg_parse(PL_NULL, &alg), 0);
	assert_int_equal(alg, DIGEST_MD5);
	alg = DIGEST_SHA256;
	assert_int_equal(digest_alg_parse(PL(""), &alg), 0);
	assert_int_equal(alg, DIGEST_MD5);
	assert_int_equal(digest_alg_parse(PL("md5"), &alg), 0);
	assert_int_equal(alg, DIGEST_MD5);
	assert_int_equal(digest_alg_parse(PL("SHA-256"), &alg), 0);
	assert_int_equal(alg, DIGEST_SHA256);
	assert_int_equal(digest_alg_parse(PL("sha-256"), &alg), 0);
	assert_int_equal(alg, DIGEST_SHA256);
	assert_int_equal(digest_alg_parse(PL("MD5-sess"), &alg), EINVAL);
	assert_int_equal(digest_alg_parse(PL("SHA-256-sess"), &alg), EINVAL);
	assert_int_equal(digest_alg_parse(PL("SHA-512-256"), &alg), EINVAL);
	assert_string_equal(digest_alg_name(DIGEST_MD5), "MD5");
	assert_string_equal(digest_alg_name(DIGEST_SHA256), "SHA-256");
}

static void test_ha1_vectors(void **state)
{
	char out[65];

	digest_ha1(DIGEST_MD5, "Mufasa", "testrealm@host.com",
		   "Circle Of Life", out);
	assert_string_equal(out, "939e7578ed9e3c518a452acee763bce9");
	digest_ha1(DIGEST_SHA256, "Mufasa", "http-auth@example.org",
		   "Circle of Life", out);
	assert_string_equal(out, "7987c64c30e25f1b74be53f966b49b90"
			    "f2808aa92faf9a00262392d7b4794232");
	/* printf 'alice:example.com:secret' | openssl dgst -sha256 */
	digest_ha1(DIGEST_SHA256, "alice", "example.com", "secret", out);
	assert_string_equal(out, "ed8925b20f9a77b8f8f8d5f8e4467fe3"
			    "2b866f7208ab9e4b20595e9821a0fdee");
}

/* RFC 2617 section 3.5. */
static void test_rfc2617_md5_qop(void **state)
{
	struct digest_request req = {
		.alg = DIGEST_MD5,
		.method = PL("GET"),
		.uri = PL("/dir/index.html"),
		.nonce = PL("dcd98b7102dd2f0e8b11d0f600bfb0c093"),
		.qop = PL("auth"),
		.nc = PL("00000001"),
		.cnonce = PL("0a4f113b"),
	};
	char out[65];

	digest_response(&req, "939e7578ed9e3c518a452acee763bce9", out);
	assert_string_equal(out, "6629fae49393a05397450978507c4ef1");
	/* Not our nonce: verify must refuse it even with the right answer. */
	req.response = PL("6629fae49393a05397450978507c4ef1");
	assert_int_equal(digest_verify(&req,
				       "939e7578ed9e3c518a452acee763bce9",
				       NOW), DIGEST_BAD_NONCE);
}

/* RFC 7616 section 3.9.1 (SHA-256), and a SIP-style request without qop
 * computed with python hashlib. */
static void test_sha256_vectors(void **state)
{
	struct digest_request req = {
		.alg = DIGEST_SHA256,
		.method = PL("GET"),
		.uri = PL("/dir/index.html"),
		.nonce = PL("7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"),
		.qop = PL("auth"),
		.nc = PL("00000001"),
		.cnonce = PL("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"),
	};
	struct digest_request sip = {
		.alg = DIGEST_SHA256,
		.method = PL("REGISTER"),
		.uri = PL("sip:example.com"),
		.nonce = PL("abc123nonce"),
	};
	char out[65];

	digest_response(&req, "7987c64c30e25f1b74be53f966b49b90"
			"f2808aa92faf9a00262392d7b4794232", out);
	assert_string_equal(out, "753927fa0e85d155564e2e272a28d180"
			    "2ca10daf4496794697cf8db5856cb6c1");
	digest_response(&sip, "ed8925b20f9a77b8f8f8d5f8e4467fe3"
			"2b866f7208ab9e4b20595e9821a0fdee", out);
	assert_string_equal(out, "c3c34c64a3456df35277745010f9ee0e"
			    "9a61fa54fea835bdd8398061c3e2a45f");
}

/* A request as a phone would build it for our nonce. */
struct phone {
	enum digest_alg alg;
	char ha1[65];
	char nonce[64];
	char nc[9];
	char response[65];
	struct digest_request req;
};

static void phone_init(struct phone *p, enum digest_alg alg,
		       const char *password, bool qop, uint64_t issued)
{
	memset(p, 0, sizeof(*p));
	p->alg = alg;
	digest_ha1(alg, "alice", "example.com", password, p->ha1);
	digest_nonce_make(p->nonce, issued);
	p->req.alg = alg;
	p->req.method = PL("REGISTER");
	p->req.uri = PL("sip:example.com");
	p->req.nonce = pl_from_str(p->nonce);
	if (qop) {
		p->req.qop = PL("auth");
		p->req.cnonce = PL("0a4f113b");
	}
}

/* Sign with nc (ignored without qop). */
static const struct digest_request *phone_sign(struct phone *p, unsigned nc)
{
	if (pl_isset(p->req.qop)) {
		snprintf(p->nc, sizeof(p->nc), "%08x", nc);
		p->req.nc = pl_from_str(p->nc);
	}
	digest_response(&p->req, p->ha1, p->response);
	p->req.response = pl_from_str(p->response);
	return &p->req;
}

static void server_ha1(enum digest_alg alg, char out[65])
{
	digest_ha1(alg, "alice", "example.com", "secret", out);
}

static void test_nonce_format(void **state)
{
	char a[64], b[64];

	digest_nonce_make(a, NOW);
	digest_nonce_make(b, NOW);
	assert_int_equal(strlen(a), 60);
	assert_string_not_equal(a, b);
	for (size_t i = 0; i < strlen(a); i++)
		assert_non_null(strchr("0123456789abcdef", a[i]));
}

static void test_verify_ok(void **state)
{
	enum digest_alg algs[2] = { DIGEST_MD5, DIGEST_SHA256 };
	struct phone p;
	char ha1[65];

	for (int i = 0; i < 2; i++) {
		server_ha1(algs[i], ha1);
		phone_init(&p, algs[i], "secret", true, NOW);
		assert_int_equal(digest_verify(phone_sign(&p, 1), ha1, NOW),
				 DIGEST_OK);
		phone_init(&p, algs[i], "secret", false, NOW);
		assert_int_equal(digest_verify(phone_sign(&p, 0), ha1, NOW),
				 DIGEST_OK);
		/* Without qop, reuse within the lifetime is accepted
		 * (phones re-REGISTER with the last nonce). */
		assert_int_equal(digest_verify(&p.req, ha1, NOW + 60),
				 DIGEST_OK);
	}
}

static void test_uppercase_response(void **state)
{
	struct phone p;
	char ha1[65];

	server_ha1(DIGEST_MD5, ha1);
	phone_init(&p, DIGEST_MD5, "secret", true, NOW);
	phone_sign(&p, 1);
	for (char *c = p.response; *c; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 32);
	assert_int_equal(digest_verify(&p.req, ha1, NOW), DIGEST_OK);
}

static void test_wrong_password(void **state)
{
	struct phone p;
	char ha1[65];

	server_ha1(DIGEST_MD5, ha1);
	phone_init(&p, DIGEST_MD5, "guess", true, NOW);
	assert_int_equal(digest_verify(phone_sign(&p, 1), ha1, NOW),
			 DIGEST_BAD_RESPONSE);
	phone_init(&p, DIGEST_SHA256, "guess", false, NOW);
	server_ha1(DIGEST_SHA256, ha1);
	assert_int_equal(digest_verify(phone_sign(&p, 0), ha1, NOW),
			 DIGEST_BAD_RESPONSE);
	/* HA1 of the wrong algorithm (account lacks a SHA-256 hash). */
	server_ha1(DIGEST_MD5, ha1);
	assert_int_equal(digest_verify(&p.req, ha1, NOW),
			 DIGEST_BAD_RESPONSE);
	assert_int_equal(digest_verify(&p.req, "", NOW), DIGEST_BAD_RESPONSE);
}

static void test_tampered_nonce(void **state)
{
	/* Flip one character in the timestamp, the counter and the MAC. */
	size_t where[3] = { 10, 20, 50 };
	struct phone p;
	char ha1[65];

	server_ha1(DIGEST_MD5, ha1);
	for (int i = 0; i < 3; i++) {
		phone_init(&p, DIGEST_MD5, "secret", true, NOW);
		p.nonce[where[i]] = p.nonce[where[i]] == '0' ? '1' : '0';
		/* The phone signs what it was given: the response is right
		 * for the tampered nonce, only the MAC can catch it. */
		assert_int_equal(digest_verify(phone_sign(&p, 1), ha1, NOW),
				 DIGEST_BAD_NONCE);
	}
	phone_init(&p, DIGEST_MD5, "secret", true, NOW);
	p.nonce[58] = '\0';
	p.req.nonce = pl_from_str(p.nonce);
	assert_int_equal(digest_verify(phone_sign(&p, 1), ha1, NOW),
			 DIGEST_BAD_NONCE);
	phone_init(&p, DIGEST_MD5, "secret", true, NOW);
	p.nonce[3] = 'g';
	assert_int_equal(digest_verify(phone_sign(&p, 1), ha1, NOW),
			 DIGEST_BAD_NONCE);

	/* A restart (new secret) invalidates every old nonce. */
	phone_init(&p, DIGEST_MD5, "secret", true, NOW);
	phone_sign(&p, 1);
	assert_int_equal(digest_init(LIFETIME), 0);
	assert_int_equal(digest_verify(&p.req, ha1, NOW), DIGEST_BAD_NONCE);
}

static void test_expired_stale(void **state)
{
	struct phone p;
	char ha1[65];

	server_ha1(DIGEST_MD5, ha1);
	phone_init(&p, DIGEST_MD5, "secret", true, NOW);
	phone_sign(&p, 1);
	assert_int_equal(digest_verify(&p.req, ha1, NOW + LIFETIME + 1),
			 DIGEST_STALE);
	/* Stale is only said to someone who knows the password. */
	phone_init(&p, DIGEST_MD5, "guess", false, NOW);
	assert_int_equal(digest_verify(phone_sign(&p, 0), ha1,
				       NOW + LIFETIME + 1),
			 DIGEST_BAD_RESPONSE);
	/* Exactly at the lifetime is still fresh. */
	phone_init(&p, DIGEST_MD5, "secret", false, NOW);
	assert_int_equal(digest_verify(phone_sign(&p, 0), ha1, NOW + LIFETIME),
			 DIGEST_OK);
	assert_int_equal(digest_verify(&p.req, ha1, NOW + 10 * LIFETIME),
			 DIGEST_STALE);
}

static void test_nc_replay(void **state)
{
	struct phone p;
	char ha1[65];

	server_ha1(DIGEST_SHA256, ha1);
	phone_init(&p, DIGEST_SHA256, "secret", true, NOW);
	assert_int_equal(digest_verify(phone_sign(&p, 1), ha1, NOW),
			 DIGEST_OK);
	assert_int_equal(digest_verify(&p.req, ha1, NOW + 1), DIGEST_REPLAY);
	assert_int_equal(digest_verify(phone_sign(&p, 2), ha1, NOW + 1),
			 DIGEST_OK);
	assert_int_equal(digest_verify(phone_sign(&p, 1), ha1, NOW + 2),
			 DIGEST_REPLAY);
	assert_int_equal(digest_verify(phone_sign(&p, 2), ha1, NOW + 2),
			 DIGEST_REPLAY);
	/* Skipping is fine: nc only has to increase. */
	assert_int_equal(digest_verify(phone_sign(&p, 9), ha1, NOW + 3),
			 DIGEST_OK);
	/* A second nonce has its own count. */
	struct phone q;
	phone_init(&q, DIGEST_SHA256, "secret", true, NOW);
	assert_int_equal(digest_verify(phone_sign(&q, 1), ha1, NOW + 3),
			 DIGEST_OK);
}

static void test_malformed(void **state)
{
	struct phone p;
	char ha1[65];

	server_ha1(DIGEST_MD5, ha1);
	phone_init(&p, DIGEST_MD5, "secret", true, NOW);
	phone_sign(&p, 1);
	p.req.qop = PL("auth-int");
	assert_int_equal(digest_verify(&p.req, ha1, NOW), DIGEST_MALFORMED);
	p.req.qop = PL("auth");
	p.req.nc = PL_NULL;
	assert_int_equal(digest_verify(&p.req, ha1, NOW), DIGEST_MALFORMED);
	p.req.nc = PL("00000000");
	assert_int_equal(digest_verify(&p.req, ha1, NOW), DIGEST_MALFORMED);
	p.req.nc = PL("0000000g");
	assert_int_equal(digest_verify(&p.req, ha1, NOW), DIGEST_MALFORMED);
	p.req.nc = PL("000000001");
	assert_int_equal(digest_verify(&p.req, ha1, NOW), DIGEST_MALFORMED);
	p.req.nc = PL("00000001");
	p.req.cnonce = PL_NULL;
	assert_int_equal(digest_verify(&p.req, ha1, NOW), DIGEST_MALFORMED);
	p.req.cnonce = PL("0a4f113b");
	p.req.response = PL("6629fae49393a05397450978507c4ef");
	assert_int_equal(digest_verify(&p.req, ha1, NOW), DIGEST_MALFORMED);
	p.req.response = PL("zz29fae49393a05397450978507c4ef1");
	assert_int_equal(digest_verify(&p.req, ha1, NOW), DIGEST_MALFORMED);
	p.req.response = PL_NULL;
	assert_int_equal(digest_verify(&p.req, ha1, NOW), DIGEST_MALFORMED);
	/* Still intact afterwards. */
	phone_sign(&p, 1);
	assert_int_equal(digest_verify(&p.req, ha1, NOW), DIGEST_OK);
}

/*
 * 100k distinct qop nonces used once each: all accepted, the table stays
 * at its fixed size, the newest are still tracked, and an evicted nonce is
 * never accepted again (fail closed: STALE, i.e. "take a fresh nonce").
 */
static void test_bounded_table(void **state)
{
	enum { N = 100000 };
	struct phone first, early, last;
	struct phone *p = malloc(sizeof(*p));
	char ha1[65];
	unsigned ok = 0;

	server_ha1(DIGEST_MD5, ha1);
	phone_init(&first, DIGEST_MD5, "secret", true, NOW);
	assert_int_equal(digest_verify(phone_sign(&first, 1), ha1, NOW),
			 DIGEST_OK);
	/* Issued now, answered only after the flood. */
	phone_init(&early, DIGEST_MD5, "secret", true, NOW);
	for (unsigned i = 0; i < N; i++) {
		phone_init(p, DIGEST_MD5, "secret", true, NOW + i / 1000);
		if (digest_verify(phone_sign(p, 1), ha1, NOW + i / 1000) ==
		    DIGEST_OK)
			ok++;
	}
	assert_int_equal(ok, N);
	/* Newest still tracked. */
	assert_int_equal(digest_verify(&p->req, ha1, NOW + N / 1000),
			 DIGEST_REPLAY);
	/* Oldest evicted while live: refused, not replayable. */
	assert_int_equal(digest_verify(&first.req, ha1, NOW + 1),
			 DIGEST_STALE);
	assert_int_equal(digest_verify(phone_sign(&early, 1), ha1, NOW + 1),
			 DIGEST_STALE);
	/* A fresh nonce works. */
	phone_init(&last, DIGEST_MD5, "secret", true, NOW + N / 1000);
	assert_int_equal(digest_verify(phone_sign(&last, 1), ha1,
				       NOW + N / 1000), DIGEST_OK);
	/* Once everything has expired the slots are free again, and a
	 * steady load within the table's size is tracked exactly. */
	for (unsigned i = 0; i < 4000; i++) {
		uint64_t t = NOW + 10 * LIFETIME;

		phone_init(p, DIGEST_MD5, "secret", true, t);
		assert_int_equal(digest_verify(phone_sign(p, 1), ha1, t),
				 DIGEST_OK);
		assert_int_equal(digest_verify(&p->req, ha1, t),
				 DIGEST_REPLAY);
	}
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alg_parse),
		cmocka_unit_test(test_ha1_vectors),
		cmocka_unit_test_setup_teardown(test_rfc2617_md5_qop, setup,
						teardown),
		cmocka_unit_test(test_sha256_vectors),
		cmocka_unit_test_setup_teardown(test_nonce_format, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_verify_ok, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_uppercase_response, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_wrong_password, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tampered_nonce, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_expired_stale, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_nc_replay, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bounded_table, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
