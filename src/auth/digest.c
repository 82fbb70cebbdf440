/*
 * digest.c - SIP digest authentication (RFC 2617, RFC 8760): HA1, response
 * verification, stateless nonces and nonce-count replay protection.
 *
 * Nonces are stateless, so a flood of unauthenticated REGISTERs costs us no
 * memory. A nonce is 60 lowercase hex characters:
 *
 *	ts (8 bytes, BE) | seq (6 bytes, BE) | HMAC-SHA256(secret, ts|seq)[0..16)
 *
 * ts is the issue time in unix seconds, seq a per-process counter started at
 * a random value (unique per nonce, and it orders nonces by issue). The
 * 32-byte secret comes from RAND_bytes at digest_init and lives only in this
 * process: after a restart every old nonce fails its HMAC (BAD_NONCE) and
 * the phone is simply challenged again.
 *
 * digest_verify checks, in this order:
 *   1. shape (MALFORMED): fields present, qop absent or "auth", nc 1-8 hex
 *      digits and non-zero, cnonce present with qop;
 *   2. the nonce's HMAC (BAD_NONCE): forged, truncated or from an old run;
 *   3. the response (BAD_RESPONSE), compared in constant time;
 *   4. age > lifetime (STALE). Checked after the response on purpose:
 *      stale=true tells the phone "your credentials are right, retry with
 *      this fresh nonce" without asking its user, so we only say it to a
 *      client that proved it knows the password;
 *   5. with qop=auth, replay (REPLAY): nc must strictly increase per nonce.
 *
 * Replay policy. With qop, the highest nc seen per nonce is kept in a fixed
 * table allocated once (NC_BUCKETS x NC_WAYS entries, set-associative by
 * seq). Only clients that passed step 3 ever reach the table, so filling it
 * requires valid credentials. An entry is free again once its nonce is
 * older than the lifetime. When a bucket is full of live entries, the
 * oldest-issued entry is evicted and the bucket remembers the highest seq it
 * evicted (its floor); a nonce not found in its bucket with seq <= floor may
 * have been used before, so it is answered STALE (fail closed: the phone
 * gets a fresh nonce, never a replay accepted). Memory is constant
 * whatever the load.
 *
 * Without qop (RFC 2069 style) there is no nonce-count, and many phones
 * reuse the last nonce for every re-REGISTER and for INVITEs until the
 * server says stale. Allowing a nonce only once would turn each of those
 * into a 401 round trip (or break phones that do not cope), so we accept
 * reuse within the lifetime. The trade-off: an attacker who captures a
 * qop-less request can replay that same request (same method and URI) for
 * up to nonce_lifetime seconds. Keep the lifetime short (default 300 s);
 * phones that support qop=auth get full replay protection.
 *
 * Not thread-safe: used by the signalling thread only.
 */
#include "auth/digest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "log/log.h"

#define NONCE_TS_LEN 8
#define NONCE_SEQ_LEN 6
#define NONCE_MAC_LEN 16
#define NONCE_RAW_LEN (NONCE_TS_LEN + NONCE_SEQ_LEN + NONCE_MAC_LEN)
#define NONCE_HEX_LEN (2 * NONCE_RAW_LEN)	/* 60, fits char[64] */
#define SECRET_LEN 32
#define DEFAULT_LIFETIME_S 300

/* 2048 x 8 = 16384 live qop nonces, 24 bytes each: under 400 KB. */
#define NC_BUCKETS 2048
#define NC_WAYS 8

struct nc_entry {
	uint64_t seq;
	uint64_t ts;
	uint32_t nc;		/* highest seen; 0 = free slot */
};

struct nc_bucket {
	struct nc_entry way[NC_WAYS];
	uint64_t floor;		/* highest seq evicted while still live */
};

static struct {
	bool ready;
	unsigned lifetime_s;
	unsigned char secret[SECRET_LEN];
	uint64_t seq;
	struct nc_bucket *buckets;
} digest;

int digest_alg_parse(struct pl name, enum digest_alg *alg)
{
	if (!pl_isset(name) || name.l == 0 || pl_caseeq_str(name, "MD5")) {
		*alg = DIGEST_MD5;
		return 0;
	}
	if (pl_caseeq_str(name, "SHA-256")) {
		*alg = DIGEST_SHA256;
		return 0;
	}
	return EINVAL;
}

const char *digest_alg_name(enum digest_alg alg)
{
	return alg == DIGEST_SHA256 ? "SHA-256" : "MD5";
}

static size_t hex_len(enum digest_alg alg)
{
	return alg == DIGEST_SHA256 ? 64 : 32;
}

static void hex_encode(char *out, const unsigned char *in, size_t len)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

/* Decode exactly 2 * len hex characters; false on a non-hex character. */
static bool hex_decode(unsigned char *out, const char *in, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		int hi = hex_digit(in[2 * i]), lo = hex_digit(in[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return true;
}

/* out = hex(H(parts[0] ":" parts[1] ":" ...)), 33 or 65 bytes. */
static void hash_hex(enum digest_alg alg, char out[65],
		     const struct pl *parts, size_t nparts)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx != NULL;

	ok = ok && EVP_DigestInit_ex(ctx, alg == DIGEST_SHA256 ?
				     EVP_sha256() : EVP_md5(), NULL);
	for (size_t i = 0; ok && i < nparts; i++) {
		if (i)
			ok = EVP_DigestUpdate(ctx, ":", 1);
		if (ok && parts[i].l)
			ok = EVP_DigestUpdate(ctx, parts[i].p, parts[i].l);
	}
	ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	if (!ok || mdlen * 2 != hex_len(alg)) {
		/* Never a valid digest: verification then fails closed. */
		log_err("auth", "digest computation failed alg=%s",
			digest_alg_name(alg));
		memset(out, 0, 65);
		return;
	}
	hex_encode(out, md, mdlen);
}

void digest_ha1(enum digest_alg alg, const char *user, const char *realm,
		const char *password, char out[65])
{
	struct pl parts[3] = {
		pl_from_str(user), pl_from_str(realm), pl_from_str(password),
	};

	hash_hex(alg, out, parts, 3);
}

void digest_response(const struct digest_request *req, const char *ha1_hex,
		     char out[65])
{
	struct pl ha2_parts[2] = { req->method, req->uri };
	char ha2[65];

	hash_hex(req->alg, ha2, ha2_parts, 2);
	if (pl_isset(req->qop)) {
		struct pl parts[6] = {
			pl_from_str(ha1_hex), req->nonce, req->nc, req->cnonce,
			req->qop, pl_from_str(ha2),
		};
		hash_hex(req->alg, out, parts, 6);
	} else {
		struct pl parts[3] = {
			pl_from_str(ha1_hex), req->nonce, pl_from_str(ha2),
		};
		hash_hex(req->alg, out, parts, 3);
	}
}

int digest_init(unsigned nonce_lifetime_s)
{
	unsigned char seq[8] = { 0 };

	digest_close();
	if (RAND_bytes(digest.secret, SECRET_LEN) != 1 ||
	    RAND_bytes(seq, 5) != 1) {
		log_err("auth", "RAND_bytes failed: no nonce secret");
		return EIO;
	}
	digest.buckets = calloc(NC_BUCKETS, sizeof(*digest.buckets));
	if (!digest.buckets)
		return ENOMEM;
	/* A random 40-bit start: 2^48 - 2^40 nonces before the counter could
	 * wrap, far beyond any process lifetime. */
	digest.seq = 0;
	for (int i = 0; i < 5; i++)
		digest.seq = digest.seq << 8 | seq[i];
	digest.lifetime_s = nonce_lifetime_s ? nonce_lifetime_s :
			    DEFAULT_LIFETIME_S;
	digest.ready = true;
	return 0;
}

void digest_close(void)
{
	free(digest.buckets);
	OPENSSL_cleanse(&digest, sizeof(digest));
	digest.buckets = NULL;
	digest.ready = false;
}

static void put_be(unsigned char *out, uint64_t v, size_t len)
{
	for (size_t i = len; i-- > 0; v >>= 8)
		out[i] = (unsigned char)v;
}

static uint64_t get_be(const unsigned char *in, size_t len)
{
	uint64_t v = 0;

	for (size_t i = 0; i < len; i++)
		v = v << 8 | in[i];
	return v;
}

static void nonce_mac(unsigned char mac[NONCE_MAC_LEN],
		      const unsigned char *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!HMAC(EVP_sha256(), digest.secret, SECRET_LEN, data, len, md,
		  &mdlen) || mdlen < NONCE_MAC_LEN) {
		/* Leave a MAC no nonce can match: fail closed. */
		log_err("auth", "HMAC failed");
		RAND_bytes(mac, NONCE_MAC_LEN);
		return;
	}
	memcpy(mac, md, NONCE_MAC_LEN);
}

void digest_nonce_make(char out[64], uint64_t now_s)
{
	unsigned char raw[NONCE_RAW_LEN];

	if (!digest.ready && digest_init(DEFAULT_LIFETIME_S) != 0) {
		out[0] = '\0';
		return;
	}
	digest.seq = (digest.seq + 1) & ((UINT64_C(1) << 48) - 1);
	put_be(raw, now_s, NONCE_TS_LEN);
	put_be(raw + NONCE_TS_LEN, digest.seq, NONCE_SEQ_LEN);
	nonce_mac(raw + NONCE_TS_LEN + NONCE_SEQ_LEN, raw,
		  NONCE_TS_LEN + NONCE_SEQ_LEN);
	hex_encode(out, raw, NONCE_RAW_LEN);
}

/* Parse and authenticate a nonce; false if forged or not ours. */
static bool nonce_check(struct pl nonce, uint64_t *ts, uint64_t *seq)
{
	unsigned char raw[NONCE_RAW_LEN], mac[NONCE_MAC_LEN];

	if (!digest.ready || nonce.l != NONCE_HEX_LEN ||
	    !hex_decode(raw, nonce.p, NONCE_RAW_LEN))
		return false;
	nonce_mac(mac, raw, NONCE_TS_LEN + NONCE_SEQ_LEN);
	if (CRYPTO_memcmp(mac, raw + NONCE_TS_LEN + NONCE_SEQ_LEN,
			  NONCE_MAC_LEN) != 0)
		return false;
	*ts = get_be(raw, NONCE_TS_LEN);
	*seq = get_be(raw + NONCE_TS_LEN, NONCE_SEQ_LEN);
	return true;
}

static bool entry_live(const struct nc_entry *e, uint64_t now_s)
{
	return e->nc && e->ts + digest.lifetime_s >= now_s;
}

/* Record nc for the nonce (seq, ts); see the header comment. */
static enum digest_result nc_check(uint64_t seq, uint64_t ts, uint32_t nc,
				   uint64_t now_s)
{
	struct nc_bucket *b = &digest.buckets[seq % NC_BUCKETS];
	struct nc_entry *slot = NULL;

	for (int i = 0; i < NC_WAYS; i++) {
		struct nc_entry *e = &b->way[i];

		if (e->nc && e->seq == seq) {
			if (nc <= e->nc)
				return DIGEST_REPLAY;
			e->nc = nc;
			return DIGEST_OK;
		}
	}
	if (seq <= b->floor)
		return DIGEST_STALE;	/* may have been used; evicted */
	for (int i = 0; i < NC_WAYS; i++) {
		struct nc_entry *e = &b->way[i];

		if (!entry_live(e, now_s)) {
			slot = e;
			break;
		}
		if (!slot || e->seq < slot->seq)
			slot = e;
	}
	if (entry_live(slot, now_s) && slot->seq > b->floor)
		b->floor = slot->seq;
	*slot = (struct nc_entry){ .seq = seq, .ts = ts, .nc = nc };
	return DIGEST_OK;
}

/* nc-value = 8LHEX (RFC 2617); we accept 1-8 hex digits, not zero. */
static bool parse_nc(struct pl x, uint32_t *nc)
{
	uint32_t v = 0;

	if (x.l == 0 || x.l > 8)
		return false;
	for (size_t i = 0; i < x.l; i++) {
		int d = hex_digit(x.p[i]);

		if (d < 0)
			return false;
		v = v << 4 | (uint32_t)d;
	}
	*nc = v;
	return v != 0;
}

enum digest_result digest_verify(const struct digest_request *req,
				 const char *ha1_hex, uint64_t now_s)
{
	size_t hlen = hex_len(req->alg);
	char expected[65], got[65];
	uint64_t ts, seq;
	uint32_t nc = 0;

	if (!pl_isset(req->nonce) || !pl_isset(req->response) ||
	    !pl_isset(req->method) || !pl_isset(req->uri) ||
	    req->method.l == 0 || req->response.l != hlen)
		return DIGEST_MALFORMED;
	if (pl_isset(req->qop)) {
		if (!pl_caseeq_str(req->qop, "auth") ||
		    !parse_nc(req->nc, &nc) || !pl_isset(req->cnonce) ||
		    req->cnonce.l == 0)
			return DIGEST_MALFORMED;
	}
	for (size_t i = 0; i < hlen; i++) {
		char c = req->response.p[i];

		if (hex_digit(c) < 0)
			return DIGEST_MALFORMED;
		got[i] = (c >= 'A' && c <= 'F') ? (char)(c + 32) : c;
	}
	got[hlen] = '\0';

	if (!nonce_check(req->nonce, &ts, &seq))
		return DIGEST_BAD_NONCE;

	if (!ha1_hex || strlen(ha1_hex) != hlen) {
		log_warn("auth", "no usable HA1 for alg=%s (account lacks it?)",
			 digest_alg_name(req->alg));
		return DIGEST_BAD_RESPONSE;
	}
	digest_response(req, ha1_hex, expected);
	if (CRYPTO_memcmp(expected, got, hlen) != 0)
		return DIGEST_BAD_RESPONSE;

	/* A nonce from the future (clock stepped back) counts as fresh. */
	if (now_s > ts && now_s - ts > digest.lifetime_s)
		return DIGEST_STALE;

	if (pl_isset(req->qop))
		return nc_check(seq, ts, nc, now_s);
	return DIGEST_OK;
}
