/*
 * msg.c - the SIP message parser (RFC 3261 7, 20; RFC 4475 torture rules):
 * start line, header block, the headers every layer needs, the body.
 *
 * Design: one pass over the header block. Each logical line (folding
 * included) is found by an inlined CR/LF scan (SSE2 when there is SSE2);
 * its name is matched in full, case-insensitively, by a switch on length
 * and first letter (never a hash: an unknown name such as "P-akce" must
 * stay SIP_HDR_OTHER, or an attacker chooses our Content-Length). List
 * headers are split into one entry per value; only those with a comma in
 * them are scanned for quotes and <>. Values are views into the buffer:
 * nothing is copied, unfolded or allocated. CRLF ends a line; a bare LF is
 * tolerated as a line end, a lone CR is rejected (it would hide a header
 * from us that a peer downstream sees).
 *
 * What every layer needs is parsed here once: the top Via (every Via is
 * validated), From/To with tags, Call-ID, CSeq, Max-Forwards, Expires,
 * Content-Length/Type, and every Contact value is validated (RFC 4475
 * 3.1.2.1, 3.1.2.13). Route, Record-Route and the rest are split but not
 * parsed: their users call sip_addr_parse() on the entries they need.
 *
 * Errors: the first one found is kept (err_status/err_reason) and parsing
 * goes on to the end of the header block, so that a 400/505 can still be
 * built (can_reply) for a message that is wrong in one place only.
 *
 * Not done here, on purpose: Contact expires / q ranges, Require option
 * tags, the Max-Forwards 0 and unknown scheme answers (483, 416): those
 * belong to the layers that answer them; the parser only accepts them.
 * Not optimised, on purpose: a TCP reader that gets EAGAIN parses the
 * partial message again from the start next time (simple, and the
 * transport caps how big a message may grow).
 */
#include <errno.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "sip/lex.h"
#include "sip/msg.h"

#define U32_MAX_VAL 4294967295ULL
#define CSEQ_MAX 2147483647ULL
/* Largest Content-Length we believe; more is an attack or a bug. */
#define CONTENT_LENGTH_MAX 16777216ULL

/* Parse state not kept in the message. */
struct parse_ctx {
	bool via_ok, from_ok, to_ok, callid_ok, cseq_ok;
	bool has_from, has_to, has_callid, has_cseq, has_mf, has_ctype;
	bool has_expires, full, ruri_parsed;
};

static void fail(struct sip_msg *msg, unsigned status, const char *reason)
{
	if (!msg->err_status) {
		msg->err_status = status;
		msg->err_reason = reason;
	}
}

/* -- methods -------------------------------------------------------------*/

static const char *const method_names[] = {
	[SIP_METHOD_OTHER] = "",
	[SIP_INVITE] = "INVITE", [SIP_ACK] = "ACK", [SIP_BYE] = "BYE",
	[SIP_CANCEL] = "CANCEL", [SIP_REGISTER] = "REGISTER",
	[SIP_OPTIONS] = "OPTIONS", [SIP_INFO] = "INFO",
	[SIP_PRACK] = "PRACK", [SIP_UPDATE] = "UPDATE",
	[SIP_SUBSCRIBE] = "SUBSCRIBE", [SIP_NOTIFY] = "NOTIFY",
	[SIP_MESSAGE] = "MESSAGE", [SIP_REFER] = "REFER",
	[SIP_PUBLISH] = "PUBLISH",
};

const char *sip_method_name(enum sip_method m)
{
	if ((unsigned)m >= sizeof(method_names) / sizeof(method_names[0]))
		return "";
	return method_names[m];
}

/* Methods are case-sensitive (RFC 3261 7.1). */
enum sip_method sip_method_from_pl(struct pl m)
{
#define M(id) \
	do { \
		if (!memcmp(m.p, method_names[id], m.l)) \
			return id; \
	} while (0)

	switch (m.l) {
	case 3:
		M(SIP_ACK);
		M(SIP_BYE);
		break;
	case 4:
		M(SIP_INFO);
		break;
	case 5:
		M(SIP_PRACK);
		M(SIP_REFER);
		break;
	case 6:
		M(SIP_INVITE);
		M(SIP_CANCEL);
		M(SIP_UPDATE);
		M(SIP_NOTIFY);
		break;
	case 7:
		M(SIP_OPTIONS);
		M(SIP_MESSAGE);
		M(SIP_PUBLISH);
		break;
	case 8:
		M(SIP_REGISTER);
		break;
	case 9:
		M(SIP_SUBSCRIBE);
		break;
	}
	return SIP_METHOD_OTHER;
#undef M
}

/* -- header names ----------------------------------------------------------*/

static enum sip_hdr_id compact_id(char c)
{
	switch (sip_lower(c)) {
	case 'i': return SIP_HDR_CALL_ID;
	case 'm': return SIP_HDR_CONTACT;
	case 'e': return SIP_HDR_CONTENT_ENCODING;
	case 'l': return SIP_HDR_CONTENT_LENGTH;
	case 'c': return SIP_HDR_CONTENT_TYPE;
	case 'f': return SIP_HDR_FROM;
	case 's': return SIP_HDR_SUBJECT;
	case 'k': return SIP_HDR_SUPPORTED;
	case 't': return SIP_HDR_TO;
	case 'v': return SIP_HDR_VIA;
	case 'o': return SIP_HDR_EVENT;
	case 'r': return SIP_HDR_REFER_TO;
	case 'x': return SIP_HDR_SESSION_EXPIRES;
	case 'b': return SIP_HDR_REFERRED_BY;
	default: return SIP_HDR_OTHER;	/* u, y and the rest: not ours */
	}
}

/*
 * s[0..n) (token characters only) equals lname (lowercase letters and
 * '-'), ignoring case. Setting bit 0x20 lowercases A-Z and changes no
 * other token character into a letter or '-' ('_' becomes DEL), so
 * or-ing 8 bytes at a time is exact here; it is not for arbitrary bytes
 * (CR | 0x20 is '-'), which is why this is not sip_ieq().
 */
static bool name_ieq(const char *s, const char *lname, size_t n)
{
	const uint64_t lc = 0x2020202020202020ULL;
	uint64_t a, b;

	while (n >= 8) {
		memcpy(&a, s, 8);
		memcpy(&b, lname, 8);
		if ((a | lc) != b)
			return false;
		s += 8;
		lname += 8;
		n -= 8;
	}
	if (n >= 4) {
		uint32_t a4, b4;

		memcpy(&a4, s, 4);
		memcpy(&b4, lname, 4);
		if ((a4 | (uint32_t)lc) != b4)
			return false;
		s += 4;
		lname += 4;
		n -= 4;
	}
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] | 0x20) != (unsigned char)lname[i])
			return false;
	return true;
}

/* Full, case-insensitive comparison against every known name of this
 * length that starts with this letter. */
static enum sip_hdr_id hdr_lookup(const char *s, size_t n)
{
#define H(name, id) \
	do { \
		if (name_ieq(s, name, n)) \
			return id; \
	} while (0)

	if (n == 1)
		return compact_id(s[0]);
	switch (n) {
	case 2:
		H("to", SIP_HDR_TO);
		break;
	case 3:
		H("via", SIP_HDR_VIA);
		break;
	case 4:
		switch (sip_lower(s[0])) {
		case 'f': H("from", SIP_HDR_FROM); break;
		case 'c': H("cseq", SIP_HDR_CSEQ); break;
		case 'p': H("path", SIP_HDR_PATH); break;
		case 'd': H("date", SIP_HDR_DATE); break;
		}
		break;
	case 5:
		switch (sip_lower(s[0])) {
		case 'r': H("route", SIP_HDR_ROUTE); break;
		case 'a': H("allow", SIP_HDR_ALLOW); break;
		case 'e': H("event", SIP_HDR_EVENT); break;
		}
		break;
	case 6:
		switch (sip_lower(s[0])) {
		case 's': H("server", SIP_HDR_SERVER); break;
		case 'a': H("accept", SIP_HDR_ACCEPT); break;
		}
		break;
	case 7:
		switch (sip_lower(s[0])) {
		case 'c':
			H("call-id", SIP_HDR_CALL_ID);
			H("contact", SIP_HDR_CONTACT);
			break;
		case 'e': H("expires", SIP_HDR_EXPIRES); break;
		case 'r': H("require", SIP_HDR_REQUIRE); break;
		case 's': H("subject", SIP_HDR_SUBJECT); break;
		}
		break;
	case 8:
		H("refer-to", SIP_HDR_REFER_TO);
		H("replaces", SIP_HDR_REPLACES);
		break;
	case 9:
		H("supported", SIP_HDR_SUPPORTED);
		break;
	case 10:
		H("user-agent", SIP_HDR_USER_AGENT);
		break;
	case 11:
		switch (sip_lower(s[0])) {
		case 'm': H("min-expires", SIP_HDR_MIN_EXPIRES); break;
		case 'u': H("unsupported", SIP_HDR_UNSUPPORTED); break;
		case 'r': H("referred-by", SIP_HDR_REFERRED_BY); break;
		}
		break;
	case 12:
		switch (sip_lower(s[0])) {
		case 'm': H("max-forwards", SIP_HDR_MAX_FORWARDS); break;
		case 'c': H("content-type", SIP_HDR_CONTENT_TYPE); break;
		case 'r': H("record-route", SIP_HDR_RECORD_ROUTE); break;
		}
		break;
	case 13:
		H("authorization", SIP_HDR_AUTHORIZATION);
		H("proxy-require", SIP_HDR_PROXY_REQUIRE);
		break;
	case 14:
		H("content-length", SIP_HDR_CONTENT_LENGTH);
		break;
	case 15:
		H("session-expires", SIP_HDR_SESSION_EXPIRES);
		break;
	case 16:
		H("www-authenticate", SIP_HDR_WWW_AUTHENTICATE);
		H("content-encoding", SIP_HDR_CONTENT_ENCODING);
		break;
	case 18:
		H("proxy-authenticate", SIP_HDR_PROXY_AUTHENTICATE);
		H("subscription-state", SIP_HDR_SUBSCRIPTION_STATE);
		break;
	case 19:
		H("proxy-authorization", SIP_HDR_PROXY_AUTHORIZATION);
		break;
	}
	return SIP_HDR_OTHER;
#undef H
}

static bool is_list_hdr(enum sip_hdr_id id)
{
	switch (id) {
	case SIP_HDR_VIA: case SIP_HDR_CONTACT: case SIP_HDR_ROUTE:
	case SIP_HDR_RECORD_ROUTE: case SIP_HDR_PATH: case SIP_HDR_REQUIRE:
	case SIP_HDR_PROXY_REQUIRE: case SIP_HDR_SUPPORTED:
	case SIP_HDR_UNSUPPORTED: case SIP_HDR_ALLOW:
		return true;
	default:
		return false;
	}
}

/* List headers whose values are addresses: an empty one is an error.
 * The option-tag lists (Supported: with nothing) may be empty. */
static bool empty_ok(enum sip_hdr_id id)
{
	switch (id) {
	case SIP_HDR_REQUIRE: case SIP_HDR_PROXY_REQUIRE:
	case SIP_HDR_SUPPORTED: case SIP_HDR_UNSUPPORTED: case SIP_HDR_ALLOW:
		return true;
	default:
		return false;
	}
}

/* -- accessors -----------------------------------------------------------*/

int sip_hdr_next(const struct sip_msg *msg, int idx, enum sip_hdr_id id)
{
	if ((unsigned)id >= SIP_HDR_COUNT)
		return -1;
	if (idx < 0)
		return msg->first[id];
	for (unsigned i = (unsigned)idx + 1; i < msg->nhdrs; i++)
		if (msg->hdrs[i].id == id)
			return (int)i;
	return -1;
}

const struct sip_hdr *sip_hdr_get(const struct sip_msg *msg,
				  enum sip_hdr_id id)
{
	int i = sip_hdr_next(msg, -1, id);

	return i < 0 ? NULL : &msg->hdrs[i];
}

const struct sip_hdr *sip_hdr_find_name(const struct sip_msg *msg,
					struct pl name)
{
	for (unsigned i = 0; i < msg->nhdrs; i++)
		if (pl_caseeq(msg->hdrs[i].name, name))
			return &msg->hdrs[i];
	return NULL;
}

/* -- start line ----------------------------------------------------------*/

/* "SIP/2.0" is fine; another "SIP/d.d" is 505; anything else 400. */
static void check_version(struct sip_msg *msg, const char *p, size_t n)
{
	size_t i = 4, d;

	if (n == 7 && sip_ieq(p, "sip/2.0", 7))
		return;
	if (n < 7 || !sip_ieq(p, "sip/", 4)) {
		fail(msg, 400, "Bad SIP version");
		return;
	}
	for (d = i; i < n && sip_is(p[i], C_DIGIT); i++)
		;
	if (i == d || i == n || p[i] != '.') {
		fail(msg, 400, "Bad SIP version");
		return;
	}
	for (d = ++i; i < n && sip_is(p[i], C_DIGIT); i++)
		;
	if (i == d || i != n) {
		fail(msg, 400, "Bad SIP version");
		return;
	}
	fail(msg, 505, "Version Not Supported");
}

static void parse_request_line(struct sip_msg *msg, struct parse_ctx *ctx,
			       const char *p, size_t n)
{
	const char *sp1 = memchr(p, ' ', n), *sp2;
	struct pl ruri;

	msg->is_request = true;
	if (!sp1) {
		fail(msg, 400, "Bad request line");
		return;
	}
	for (sp2 = p + n - 1; *sp2 != ' '; sp2--)
		;	/* stops at sp1 at the latest */
	msg->method = (struct pl){ p, (size_t)(sp1 - p) };
	if (sp2 == sp1 || !msg->method.l) {
		fail(msg, 400, "Bad request line");
		return;
	}
	for (size_t i = 0; i < msg->method.l; i++)
		if (!sip_is(p[i], C_TOKEN)) {
			fail(msg, 400, "Bad method");
			return;
		}
	msg->method_id = sip_method_from_pl(msg->method);
	ruri = (struct pl){ sp1 + 1, (size_t)(sp2 - sp1) - 1 };
	msg->ruri_str = ruri;
	check_version(msg, sp2 + 1, n - (size_t)(sp2 + 1 - p));
	if (!ruri.l || ruri.p[0] == '<' || memchr(ruri.p, ' ', ruri.l) ||
	    memchr(ruri.p, '\t', ruri.l)) {
		fail(msg, 400, "Bad Request-URI");
		return;
	}
	ctx->ruri_parsed = true;	/* sip_uri_parse sets all of ruri */
	if (sip_uri_parse(&msg->ruri, ruri)) {
		fail(msg, 400, "Bad Request-URI");
		return;
	}
	if (pl_isset(msg->ruri.headers))
		fail(msg, 400, "Headers in Request-URI");
}

static void parse_status_line(struct sip_msg *msg, const char *p, size_t n)
{
	const char *sp = memchr(p, ' ', n);
	size_t i;

	msg->is_request = false;
	if (!sp) {
		fail(msg, 400, "Bad status line");
		return;
	}
	check_version(msg, p, (size_t)(sp - p));
	i = (size_t)(sp - p) + 1;
	if (n - i < 3 || !sip_is(p[i], C_DIGIT) || !sip_is(p[i + 1], C_DIGIT) ||
	    !sip_is(p[i + 2], C_DIGIT) || (n - i > 3 && p[i + 3] != ' ')) {
		fail(msg, 400, "Bad status code");
		return;
	}
	msg->status = (unsigned)(p[i] - '0') * 100 +
		      (unsigned)(p[i + 1] - '0') * 10 +
		      (unsigned)(p[i + 2] - '0');
	if (msg->status < 100 || msg->status > 699) {
		fail(msg, 400, "Bad status code");
		return;
	}
	i += 3;
	if (i < n)
		i++;
	msg->reason = (struct pl){ p + i, n - i };
}

/* -- single headers --------------------------------------------------------*/

static bool callid_ok(struct pl v)
{
	size_t at = 0;

	if (!v.l)
		return false;
	for (size_t i = 0; i < v.l; i++) {
		if (v.p[i] == '@') {
			if (at || i == 0 || i + 1 == v.l)
				return false;
			at = i;
		} else if (!sip_is(v.p[i], C_WORD)) {
			return false;
		}
	}
	return true;
}

static void parse_cseq(struct sip_msg *msg, struct parse_ctx *ctx,
		       struct pl v)
{
	size_t i = 0, st;
	uint64_t num;

	while (i < v.l && sip_is(v.p[i], C_DIGIT))
		i++;
	if (!sip_u64((struct pl){ v.p, i }, CSEQ_MAX, &num) || i == v.l ||
	    !sip_is(v.p[i], C_LWS)) {
		fail(msg, 400, "Bad CSeq");
		return;
	}
	i = sip_skip_lws(v.p, i, v.l);
	st = i;
	while (i < v.l && sip_is(v.p[i], C_TOKEN))
		i++;
	if (i == st || i != v.l) {
		fail(msg, 400, "Bad CSeq");
		return;
	}
	msg->cseq = (uint32_t)num;
	msg->cseq_method = (struct pl){ v.p + st, i - st };
	msg->cseq_method_id = sip_method_from_pl(msg->cseq_method);
	ctx->cseq_ok = true;
}

/* rfc1123-date: "Fri, 01 Jan 2010 16:00:00 GMT" exactly (RFC 3261 20.17
 * allows only GMT; RFC 4475 3.1.2.12). */
static bool date_ok(struct pl v)
{
	static const char wkdays[] = "MonTueWedThuFriSatSun";
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	static const char shape[] = "www, dd mmm yyyy dd:dd:dd GMT";
	bool wk = false, mon = false;

	if (v.l != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; i < v.l; i++) {
		char c = shape[i];

		if (c == 'd' || c == 'y') {
			if (!sip_is(v.p[i], C_DIGIT))
				return false;
		} else if (c != 'w' && c != 'm' && v.p[i] != c) {
			return false;
		}
	}
	for (size_t i = 0; i < 21; i += 3)
		wk |= !memcmp(v.p, wkdays + i, 3);
	for (size_t i = 0; i < 36; i += 3)
		mon |= !memcmp(v.p + 8, months + i, 3);
	return wk && mon;
}

/* Semantics of one entry just added. */
static void hdr_semantics(struct sip_msg *msg, struct parse_ctx *ctx,
			  const struct sip_hdr *h)
{
	struct pl v = h->value;
	uint64_t num;

	switch (h->id) {
	case SIP_HDR_VIA: {
		struct sip_via tmp;
		struct sip_via *via = msg->nvia ? &tmp : &msg->via;
		int err = sip_via_parse(via, v);

		if (err)
			fail(msg, 400, "Bad Via");
		else if (!msg->nvia)
			ctx->via_ok = true;
		msg->nvia++;
		break;
	}
	case SIP_HDR_FROM:
	case SIP_HDR_TO: {
		bool from = h->id == SIP_HDR_FROM;
		bool *seen = from ? &ctx->has_from : &ctx->has_to;
		struct sip_addr *a = from ? &msg->from : &msg->to;
		struct pl *tag = from ? &msg->from_tag : &msg->to_tag;

		if (*seen) {
			fail(msg, 400, from ? "Multiple From" : "Multiple To");
			if (from)
				ctx->from_ok = false;
			else
				ctx->to_ok = false;
			break;
		}
		*seen = true;
		if (sip_addr_parse(a, v) || a->star) {
			fail(msg, 400, from ? "Bad From" : "Bad To");
			break;
		}
		if (sip_param_get(a->params, "tag", tag) && !tag->l) {
			fail(msg, 400, "Empty tag");
			break;
		}
		if (from)
			ctx->from_ok = true;
		else
			ctx->to_ok = true;
		break;
	}
	case SIP_HDR_CALL_ID:
		if (ctx->has_callid) {
			fail(msg, 400, "Multiple Call-ID");
			ctx->callid_ok = false;
			break;
		}
		ctx->has_callid = true;
		if (!callid_ok(v)) {
			fail(msg, 400, "Bad Call-ID");
			break;
		}
		msg->call_id = v;
		ctx->callid_ok = true;
		break;
	case SIP_HDR_CSEQ:
		if (ctx->has_cseq) {
			fail(msg, 400, "Multiple CSeq");
			ctx->cseq_ok = false;
			break;
		}
		ctx->has_cseq = true;
		parse_cseq(msg, ctx, v);
		break;
	case SIP_HDR_CONTACT: {
		struct sip_addr tmp;

		if (sip_addr_parse(&tmp, v) ||
		    (tmp.star && h->nvalues > 1))
			fail(msg, 400, "Bad Contact");
		break;
	}
	case SIP_HDR_MAX_FORWARDS:
		if (ctx->has_mf) {
			fail(msg, 400, "Multiple Max-Forwards");
			break;
		}
		ctx->has_mf = true;
		if (!sip_u64(v, 255, &num)) {
			fail(msg, 400, "Bad Max-Forwards");
			break;
		}
		msg->max_forwards = (int)num;
		break;
	case SIP_HDR_CONTENT_LENGTH:
		if (!sip_u64(v, CONTENT_LENGTH_MAX, &num)) {
			fail(msg, 400, "Bad Content-Length");
			break;
		}
		if (msg->has_content_length && msg->content_length != num) {
			fail(msg, 400, "Conflicting Content-Length");
			break;
		}
		msg->has_content_length = true;
		msg->content_length = (size_t)num;
		break;
	case SIP_HDR_CONTENT_TYPE:
		if (ctx->has_ctype) {
			fail(msg, 400, "Multiple Content-Type");
			break;
		}
		ctx->has_ctype = true;
		msg->content_type = v;
		break;
	case SIP_HDR_EXPIRES:
		if (ctx->has_expires) {
			fail(msg, 400, "Multiple Expires");
			break;
		}
		ctx->has_expires = true;
		if (!sip_u64(v, U32_MAX_VAL, &num)) {
			fail(msg, 400, "Bad Expires");
			break;
		}
		msg->expires = (int64_t)num;
		break;
	case SIP_HDR_DATE:
		if (!date_ok(v))
			fail(msg, 400, "Bad Date");
		break;
	default:
		break;
	}
}

/* -- header lines ----------------------------------------------------------*/

static bool add_entry(struct sip_msg *msg, struct parse_ctx *ctx,
		      const struct sip_hdr *proto, struct pl value,
		      uint16_t index)
{
	struct sip_hdr *h;

	if (msg->nhdrs >= SIP_MAX_HDRS) {
		fail(msg, 400, "Too many headers");
		ctx->full = true;
		return false;
	}
	/* field by field: a struct copy of the freshly written proto costs a
	 * store-forwarding stall per entry (measured: a sixth of the parse) */
	h = &msg->hdrs[msg->nhdrs];
	h->id = proto->id;
	h->name = proto->name;
	h->value = value;
	h->line_off = proto->line_off;
	h->line_len = proto->line_len;
	h->nvalues = proto->nvalues;
	h->index = index;
	if (msg->first[proto->id] < 0)
		msg->first[proto->id] = (int16_t)msg->nhdrs;
	msg->nhdrs++;
	return true;
}

/* Split a list value at commas outside quotes and <>. Returns false on a
 * syntax error (empty element, open quote or <). */
static bool split_list(struct sip_msg *msg, struct parse_ctx *ctx,
		       const struct sip_hdr *proto, struct pl v)
{
	const char *p = v.p;
	size_t n = v.l, st = 0;
	uint16_t idx = 0;
	bool angle = false;

	if (!memchr(p, '"', n) && !memchr(p, '<', n)) {
		/* option tags, most Via lines: commas are all separators */
		for (;;) {
			const char *c = memchr(p + st, ',', n - st);
			size_t e = c ? (size_t)(c - p) : n;
			struct pl el = sip_trim((struct pl){ p + st, e - st });

			if (!el.l)
				return false;
			if (!add_entry(msg, ctx, proto, el, idx++) || !c)
				return true;
			st = e + 1;
		}
	}
	for (size_t i = 0; i <= n; i++) {
		if (i < n) {
			char c = p[i];

			if (c == '"' && !angle) {
				size_t q = sip_qstr_len(p + i, n - i);

				if (!q)
					return false;
				i += q - 1;
				continue;
			}
			if (c == '<') {
				angle = true;
				continue;
			}
			if (c == '>') {
				angle = false;
				continue;
			}
			if (c != ',' || angle)
				continue;
		}
		if (angle)
			return false;
		{
			struct pl e = sip_trim((struct pl){ p + st, i - st });

			if (!e.l)
				return false;
			if (!add_entry(msg, ctx, proto, e, idx++))
				return true;
		}
		st = i + 1;
	}
	return true;
}

/* One logical header line [line, end) without its final line break;
 * total is its length with the break (line_len). */
static void parse_header_line(struct sip_msg *msg, struct parse_ctx *ctx,
			      const char *line, size_t n, size_t total)
{
	struct sip_hdr proto;
	size_t i = 0, first_new;
	uint16_t nv;
	struct pl v;

	while (i < n && sip_is(line[i], C_TOKEN))
		i++;
	proto.name = (struct pl){ line, i };
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (!proto.name.l || i == n || line[i] != ':') {
		fail(msg, 400, "Malformed header line");
		return;
	}
	if (ctx->full)
		return;
	v = sip_trim((struct pl){ line + i + 1, n - i - 1 });
	proto.id = hdr_lookup(proto.name.p, proto.name.l);
	proto.line_off = (uint32_t)(line - msg->buf);
	proto.line_len = (uint32_t)total;
	proto.nvalues = 1;
	proto.index = 0;

	first_new = msg->nhdrs;
	if (!is_list_hdr(proto.id) || !memchr(v.p, ',', v.l)) {
		if (!v.l && is_list_hdr(proto.id) && !empty_ok(proto.id)) {
			fail(msg, 400, "Empty header value");
			return;
		}
		if (!add_entry(msg, ctx, &proto, v, 0))
			return;
	} else {
		if (!split_list(msg, ctx, &proto, v)) {
			fail(msg, 400, "Bad list header");
			return;
		}
		nv = (uint16_t)(msg->nhdrs - first_new);
		for (size_t k = first_new; k < msg->nhdrs; k++)
			msg->hdrs[k].nvalues = nv;
	}
	for (size_t k = first_new; k < msg->nhdrs; k++)
		hdr_semantics(msg, ctx, &msg->hdrs[k]);
}

/* -- the message -----------------------------------------------------------*/

/*
 * First CR or LF in [p, end), or end. Lines are short (40-80 octets), so a
 * libc memchr call per line for LF and another for a stray CR cost more in
 * call overhead than the scan itself; this one inlines and does both.
 */
static inline const char *find_crlf(const char *p, const char *end)
{
#ifdef __SSE2__
	const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');

	while (end - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		unsigned m = (unsigned)_mm_movemask_epi8(
			_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));

		if (m)
			return p + __builtin_ctz(m);
		p += 16;
	}
#endif
	while (p < end && *p != '\r' && *p != '\n')
		p++;
	return p;
}

/*
 * Zero the message but the big members that their own parsers set in full
 * (ruri, via, from, to: a third of the bytes); msg_finish() zeroes those
 * that were not parsed. hdrs[] is never cleared: only [0, nhdrs) counts.
 * The ranges follow the member order of msg.h, checked here.
 */
#define OFF(m) offsetof(struct sip_msg, m)
#define END(m) (OFF(m) + sizeof(((struct sip_msg *)0)->m))
_Static_assert(END(ruri) <= OFF(hdrs) && END(hdrs) <= OFF(nhdrs) &&
	       OFF(nhdrs) < OFF(via) && END(via) <= OFF(nvia) &&
	       OFF(nvia) < OFF(from) && END(from) <= OFF(to) &&
	       END(to) <= OFF(from_tag), "struct sip_msg member order");

static void msg_reset(struct sip_msg *msg)
{
	char *b = (char *)msg;

	memset(b, 0, OFF(ruri));
	memset(b + END(ruri), 0, OFF(hdrs) - END(ruri));
	memset(b + OFF(nhdrs), 0, OFF(via) - OFF(nhdrs));
	memset(b + END(via), 0, OFF(from) - END(via));
	memset(b + END(to), 0, sizeof(*msg) - END(to));
	memset(msg->first, 0xff, sizeof(msg->first));
	msg->max_forwards = -1;
	msg->expires = -1;
}

static int msg_finish(struct sip_msg *msg, const struct parse_ctx *ctx,
		      int err)
{
	if (!ctx->ruri_parsed)
		memset(&msg->ruri, 0, sizeof(msg->ruri));
	if (!msg->nvia)
		memset(&msg->via, 0, sizeof(msg->via));
	if (!ctx->has_from)
		memset(&msg->from, 0, sizeof(msg->from));
	if (!ctx->has_to)
		memset(&msg->to, 0, sizeof(msg->to));
	return err;
}
#undef OFF
#undef END

static void check_mandatory(struct sip_msg *msg, struct parse_ctx *ctx)
{
	if (!msg->nvia)
		fail(msg, 400, "Missing Via");
	if (!ctx->has_from)
		fail(msg, 400, "Missing From");
	if (!ctx->has_to)
		fail(msg, 400, "Missing To");
	if (!ctx->has_callid)
		fail(msg, 400, "Missing Call-ID");
	if (!ctx->has_cseq)
		fail(msg, 400, "Missing CSeq");
	if (msg->is_request && ctx->cseq_ok &&
	    !pl_eq(msg->method, msg->cseq_method))
		fail(msg, 400, "CSeq method mismatch");
	msg->can_reply = ctx->via_ok && ctx->from_ok && ctx->to_ok &&
			 ctx->callid_ok && ctx->cseq_ok;
}

int sip_msg_parse(struct sip_msg *msg, const char *buf, size_t len,
		  bool stream)
{
	struct parse_ctx ctx = { 0 };
	const char *p, *end, *line, *nl, *body;
	size_t skip = 0, n, avail;

	msg_reset(msg);
	while (skip < len && (buf[skip] == '\r' || buf[skip] == '\n'))
		skip++;
	if (skip == len) {
		/* keepalives only: the caller consumes msg->len octets */
		msg->buf = buf;
		msg->len = skip;
		return msg_finish(msg, &ctx, (stream && !len) ? EAGAIN
							      : ENODATA);
	}
	p = buf + skip;
	n = len - skip;
	end = p + n;
	msg->buf = p;
	if (n > UINT32_MAX) {
		fail(msg, 400, "Message too large");
		return msg_finish(msg, &ctx, EBADMSG);
	}

	/* start line: CRLF (or a bare LF) ends it; a lone CR is an error */
	nl = find_crlf(p, end);
	if (nl == end || (*nl == '\r' && nl + 1 == end))
		goto incomplete;
	{
		size_t l = (size_t)(nl - p);

		if (*nl == '\r' && nl[1] == '\n') {
			nl++;
		} else if (*nl == '\r') {
			fail(msg, 400, "Bare CR in start line");
			nl = memchr(nl, '\n', (size_t)(end - nl));
			if (!nl)
				goto incomplete;
		}
		if (l >= 4 && sip_ieq(p, "sip/", 4))
			parse_status_line(msg, p, l);
		else
			parse_request_line(msg, &ctx, p, l);
	}

	/* header lines, each with its folded continuation lines */
	line = nl + 1;
	for (;;) {
		const char *q = line;
		size_t l;

		if (line == end)
			goto incomplete;
		if (*line == '\n') {
			body = line + 1;
			break;
		}
		if (*line == '\r') {
			if (line + 1 == end)
				goto incomplete;
			if (line[1] == '\n') {
				body = line + 2;
				break;
			}
		}
		for (;;) {
			nl = find_crlf(q, end);
			if (nl + 1 >= end)
				goto incomplete;
			if (*nl == '\r') {
				if (nl[1] != '\n') {
					/* a lone CR is a line end to some
					 * parsers downstream: refuse it rather
					 * than forward a hidden header */
					fail(msg, 400, "Bare CR in header");
					q = nl + 1;
					continue;
				}
				nl++;
				if (nl + 1 == end)
					goto incomplete;
			}
			if (nl[1] != ' ' && nl[1] != '\t')
				break;
			q = nl + 1;
		}
		l = (size_t)(nl - line);
		if (l && line[l - 1] == '\r')
			l--;
		parse_header_line(msg, &ctx, line, l, (size_t)(nl + 1 - line));
		line = nl + 1;
	}
	msg->hdrs_end = (uint32_t)(line - p);
	check_mandatory(msg, &ctx);

	/* body */
	avail = (size_t)(end - body);
	if (msg->has_content_length) {
		if (msg->content_length > avail) {
			if (stream && !msg->err_status)
				return msg_finish(msg, &ctx, EAGAIN);
			fail(msg, 400, "Content-Length beyond the datagram");
			msg->len = (size_t)(body - p);
			return msg_finish(msg, &ctx, EBADMSG);
		}
		msg->body = (struct pl){ body, msg->content_length };
	} else if (stream) {
		fail(msg, 400, "Missing Content-Length");
		msg->len = (size_t)(body - p);
		return msg_finish(msg, &ctx, EBADMSG);
	} else {
		msg->body = (struct pl){ body, avail };
		msg->content_length = avail;
	}
	msg->len = (size_t)(body - p) + msg->body.l;
	return msg_finish(msg, &ctx, msg->err_status ? EBADMSG : 0);

incomplete:
	if (stream)
		return msg_finish(msg, &ctx, EAGAIN);
	fail(msg, 400, "Truncated message");
	msg->len = n;
	return msg_finish(msg, &ctx, EBADMSG);
}
