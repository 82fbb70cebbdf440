/*
 * test_sip_msg.c - unit tests of the SIP message parser (src/sip/): start
 * lines, header names and compact forms, list splitting, folding,
 * Content-Length framing on datagrams and streams, keepalives, URIs, Via,
 * name-addr, params, URI comparison and digest credentials.
 *
 * Every message is copied into a heap buffer of exactly its length, so
 * AddressSanitizer catches a parser that reads one byte too far.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sip/msg.h"

static struct sip_msg msg;
static char *cur;	/* the buffer of the last parse */

static int parse_n(const char *s, size_t n, bool stream)
{
	free(cur);
	cur = malloc(n ? n : 1);
	memcpy(cur, s, n);
	return sip_msg_parse(&msg, cur, n, stream);
}

static int parse(const char *s, bool stream)
{
	return parse_n(s, strlen(s), stream);
}

static int teardown(void **state)
{
	free(cur);
	cur = NULL;
	return 0;
}

static bool eq(struct pl x, const char *s)
{
	return pl_eq_str(x, s);
}

#define HDRS_REQ(method) \
	"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n" \
	"Max-Forwards: 70\r\n" \
	"To: Bob <sip:bob@example.com>\r\n" \
	"From: Alice <sip:alice@example.com>;tag=1928301774\r\n" \
	"Call-ID: a84b4c76e66710@pc33.example.com\r\n" \
	"CSeq: 314159 " method "\r\n"

static const char invite[] =
	"INVITE sip:bob@example.com SIP/2.0\r\n"
	HDRS_REQ("INVITE")
	"Contact: <sip:alice@192.0.2.1>\r\n"
	"Content-Type: application/sdp\r\n"
	"Content-Length: 4\r\n"
	"\r\n"
	"v=0\n";

/* -- start lines ---------------------------------------------------------*/

static void test_request_line(void **state)
{
	assert_int_equal(parse(invite, false), 0);
	assert_true(msg.is_request);
	assert_true(eq(msg.method, "INVITE"));
	assert_int_equal(msg.method_id, SIP_INVITE);
	assert_true(eq(msg.ruri_str, "sip:bob@example.com"));
	assert_true(eq(msg.ruri.user, "bob"));
	assert_true(eq(msg.ruri.host, "example.com"));
	assert_int_equal(msg.ruri.port, 0);
	assert_true(msg.can_reply);
	assert_int_equal(msg.len, strlen(invite));
	assert_true(msg.buf == cur);
	assert_true(eq(msg.body, "v=0\n"));
	assert_true(eq(msg.content_type, "application/sdp"));
	assert_int_equal(msg.max_forwards, 70);
	assert_int_equal(msg.expires, -1);
	assert_int_equal(msg.cseq, 314159);
	assert_int_equal(msg.cseq_method_id, SIP_INVITE);
	assert_true(eq(msg.call_id, "a84b4c76e66710@pc33.example.com"));
	assert_true(eq(msg.from_tag, "1928301774"));
	assert_false(pl_isset(msg.to_tag));
	assert_true(eq(msg.to.dname, "Bob"));
	assert_true(eq(msg.from.uri.user, "alice"));
	assert_int_equal(msg.nvia, 1);
	assert_true(eq(msg.via.branch, "z9hG4bK776asdhds"));
	assert_int_equal(msg.via.port, 5060);
	assert_int_equal(msg.hdrs_end,
			 (uint32_t)(strstr(invite, "\r\n\r\n") + 2 - invite));
}

static void test_status_line(void **state)
{
	static const char r200[] =
		"SIP/2.0 200 OK\r\n"
		"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx;received=1.2.3.4\r\n"
		"To: <sip:bob@example.com>;tag=abc\r\n"
		"From: <sip:alice@example.com>;tag=def\r\n"
		"Call-ID: x@y\r\n"
		"CSeq: 1 INVITE\r\n"
		"Content-Length: 0\r\n\r\n";

	assert_int_equal(parse(r200, false), 0);
	assert_false(msg.is_request);
	assert_int_equal(msg.status, 200);
	assert_true(eq(msg.reason, "OK"));
	assert_true(eq(msg.to_tag, "abc"));
	assert_true(eq(msg.via.received, "1.2.3.4"));
	assert_int_equal(msg.cseq_method_id, SIP_INVITE);
	assert_int_equal(msg.max_forwards, -1);
}

static const char resp_tail[] =
	"Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\nTo: <sip:b@h>\r\n"
	"From: <sip:a@h>;tag=1\r\nCall-ID: c\r\nCSeq: 1 BYE\r\n"
	"l: 0\r\n\r\n";

static int parse_resp(const char *line)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "%s\r\n%s", line, resp_tail);
	return parse(buf, false);
}

static void test_status_codes(void **state)
{
	assert_int_equal(parse_resp("SIP/2.0 100 Trying"), 0);
	assert_int_equal(parse_resp("SIP/2.0 699 Whatever"), 0);
	assert_int_equal(parse_resp("SIP/2.0 180 "), 0);
	assert_int_equal(msg.reason.l, 0);
	assert_int_equal(parse_resp("SIP/2.0 099 Low"), EBADMSG);
	assert_int_equal(parse_resp("SIP/2.0 700 High"), EBADMSG);
	assert_int_equal(parse_resp("SIP/2.0 20 Short"), EBADMSG);
	assert_int_equal(parse_resp("SIP/2.0 2000 Long"), EBADMSG);
	assert_int_equal(parse_resp("SIP/2.0 4294967496 Wrap"), EBADMSG);
	assert_int_equal(parse_resp("SIP/2.0 2x0 X"), EBADMSG);
	assert_int_equal(parse_resp("SIP/3.0 200 OK"), EBADMSG);
	assert_int_equal(parse_resp("SIP/2.0"), EBADMSG);
}

static int parse_req(const char *line, const char *method)
{
	char buf[1024];

	snprintf(buf, sizeof(buf),
		 "%s\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nTo: <sip:b@h>\r\n"
		 "From: <sip:a@h>;tag=1\r\nCall-ID: c\r\nCSeq: 1 %s\r\n"
		 "l: 0\r\n\r\n", line, method);
	return parse(buf, false);
}

static void test_request_line_errors(void **state)
{
	assert_int_equal(parse_req("OPTIONS sip:h SIP/2.0", "OPTIONS"), 0);
	/* two SP, leading SP in the URI, trailing SP */
	assert_int_equal(parse_req("OPTIONS  sip:h SIP/2.0", "OPTIONS"),
			 EBADMSG);
	assert_int_equal(msg.err_status, 400);
	assert_int_equal(parse_req("OPTIONS sip:h  SIP/2.0", "OPTIONS"),
			 EBADMSG);
	assert_int_equal(parse_req("OPTIONS sip:h SIP/2.0 ", "OPTIONS"),
			 EBADMSG);
	assert_int_equal(parse_req("OPTIONS sip:h", "OPTIONS"), EBADMSG);
	assert_int_equal(parse_req("OPTIONS <sip:h> SIP/2.0", "OPTIONS"),
			 EBADMSG);
	assert_int_equal(parse_req("OPTIONS sip:h;\tlr SIP/2.0", "OPTIONS"),
			 EBADMSG);
	/* method token characters */
	assert_int_equal(parse_req("OPT(ONS sip:h SIP/2.0", "OPT(ONS"),
			 EBADMSG);
	assert_int_equal(parse_req("FOO.bar-1!%*_+`'~ sip:h SIP/2.0",
				   "FOO.bar-1!%*_+`'~"), 0);
	assert_int_equal(msg.method_id, SIP_METHOD_OTHER);
	/* versions */
	assert_int_equal(parse_req("OPTIONS sip:h SIP/7.0", "OPTIONS"),
			 EBADMSG);
	assert_int_equal(msg.err_status, 505);
	assert_true(msg.can_reply);
	assert_int_equal(parse_req("OPTIONS sip:h SIP/2.1", "OPTIONS"),
			 EBADMSG);
	assert_int_equal(msg.err_status, 505);
	assert_int_equal(parse_req("OPTIONS sip:h HTTP/1.1", "OPTIONS"),
			 EBADMSG);
	assert_int_equal(msg.err_status, 400);
	assert_int_equal(parse_req("OPTIONS sip:h sip/2.0", "OPTIONS"), 0);
	/* headers in the Request-URI */
	assert_int_equal(parse_req("OPTIONS sip:h?Route=x SIP/2.0", "OPTIONS"),
			 EBADMSG);
	assert_int_equal(msg.err_status, 400);
	/* method vs CSeq method */
	assert_int_equal(parse_req("OPTIONS sip:h SIP/2.0", "INVITE"),
			 EBADMSG);
	assert_string_equal(msg.err_reason, "CSeq method mismatch");
	assert_int_equal(parse_req("invite sip:h SIP/2.0", "INVITE"),
			 EBADMSG);
	/* unknown scheme: accepted, opaque */
	assert_int_equal(parse_req("OPTIONS foo:bar%20baz SIP/2.0", "OPTIONS"),
			 0);
	assert_true(eq(msg.ruri.scheme, "foo"));
	assert_true(eq(msg.ruri.opaque, "bar%20baz"));
	assert_int_equal(msg.ruri.host.l, 0);
	/* IPv6 without [] */
	assert_int_equal(parse_req("OPTIONS sip:user@2001:db8::10 SIP/2.0",
				   "OPTIONS"), EBADMSG);
}

static void test_methods(void **state)
{
	static const enum sip_method all[] = {
		SIP_INVITE, SIP_ACK, SIP_BYE, SIP_CANCEL, SIP_REGISTER,
		SIP_OPTIONS, SIP_INFO, SIP_PRACK, SIP_UPDATE, SIP_SUBSCRIBE,
		SIP_NOTIFY, SIP_MESSAGE, SIP_REFER, SIP_PUBLISH,
	};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		const char *name = sip_method_name(all[i]);

		assert_true(strlen(name) > 0);
		assert_int_equal(sip_method_from_pl(pl_from_str(name)), all[i]);
	}
	assert_int_equal(sip_method_from_pl(PL("invite")), SIP_METHOD_OTHER);
	assert_int_equal(sip_method_from_pl(PL("INVITEX")), SIP_METHOD_OTHER);
	assert_int_equal(sip_method_from_pl(PL("")), SIP_METHOD_OTHER);
	assert_string_equal(sip_method_name(SIP_METHOD_OTHER), "");
	assert_string_equal(sip_method_name((enum sip_method)999), "");
}

/* -- header names ----------------------------------------------------------*/

static void test_compact_forms(void **state)
{
	static const char m[] =
		"INVITE sip:bob@example.com SIP/2.0\r\n"
		"v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
		"t: <sip:bob@example.com>\r\n"
		"F: <sip:alice@example.com>;tag=1\r\n"
		"i: cid\r\n"
		"CSeq: 1 INVITE\r\n"
		"m: <sip:alice@192.0.2.1>\r\n"
		"c: application/sdp\r\n"
		"e: gzip\r\n"
		"s: hi\r\n"
		"k: timer\r\n"
		"o: presence\r\n"
		"r: <sip:c@h>\r\n"
		"b: <sip:d@h>\r\n"
		"x: 90\r\n"
		"u: talk\r\n"
		"y: identity\r\n"
		"l: 0\r\n"
		"\r\n";
	static const struct { const char *name; enum sip_hdr_id id; } want[] = {
		{ "v", SIP_HDR_VIA }, { "t", SIP_HDR_TO }, { "F", SIP_HDR_FROM },
		{ "i", SIP_HDR_CALL_ID }, { "CSeq", SIP_HDR_CSEQ },
		{ "m", SIP_HDR_CONTACT }, { "c", SIP_HDR_CONTENT_TYPE },
		{ "e", SIP_HDR_CONTENT_ENCODING }, { "s", SIP_HDR_SUBJECT },
		{ "k", SIP_HDR_SUPPORTED }, { "o", SIP_HDR_EVENT },
		{ "r", SIP_HDR_REFER_TO }, { "b", SIP_HDR_REFERRED_BY },
		{ "x", SIP_HDR_SESSION_EXPIRES }, { "u", SIP_HDR_OTHER },
		{ "y", SIP_HDR_OTHER }, { "l", SIP_HDR_CONTENT_LENGTH },
	};

	assert_int_equal(parse(m, false), 0);
	assert_int_equal(msg.nhdrs, sizeof(want) / sizeof(want[0]));
	for (unsigned i = 0; i < msg.nhdrs; i++) {
		assert_true(eq(msg.hdrs[i].name, want[i].name));
		assert_int_equal(msg.hdrs[i].id, want[i].id);
	}
	assert_true(eq(msg.call_id, "cid"));
	assert_true(eq(msg.content_type, "application/sdp"));
}

static void test_long_names(void **state)
{
	static const struct { const char *name; enum sip_hdr_id id; } names[] = {
		{ "Via", SIP_HDR_VIA }, { "FROM", SIP_HDR_FROM },
		{ "to", SIP_HDR_TO }, { "call-id", SIP_HDR_CALL_ID },
		{ "CSEQ", SIP_HDR_CSEQ }, { "Contact", SIP_HDR_CONTACT },
		{ "max-FORWARDS", SIP_HDR_MAX_FORWARDS },
		{ "Content-Length", SIP_HDR_CONTENT_LENGTH },
		{ "Content-Type", SIP_HDR_CONTENT_TYPE },
		{ "Route", SIP_HDR_ROUTE }, { "Record-Route", SIP_HDR_RECORD_ROUTE },
		{ "Path", SIP_HDR_PATH }, { "Expires", SIP_HDR_EXPIRES },
		{ "Min-Expires", SIP_HDR_MIN_EXPIRES },
		{ "Authorization", SIP_HDR_AUTHORIZATION },
		{ "Proxy-Authorization", SIP_HDR_PROXY_AUTHORIZATION },
		{ "WWW-Authenticate", SIP_HDR_WWW_AUTHENTICATE },
		{ "Proxy-Authenticate", SIP_HDR_PROXY_AUTHENTICATE },
		{ "Require", SIP_HDR_REQUIRE },
		{ "Proxy-Require", SIP_HDR_PROXY_REQUIRE },
		{ "Supported", SIP_HDR_SUPPORTED },
		{ "Unsupported", SIP_HDR_UNSUPPORTED }, { "Allow", SIP_HDR_ALLOW },
		{ "User-Agent", SIP_HDR_USER_AGENT }, { "Server", SIP_HDR_SERVER },
		{ "Event", SIP_HDR_EVENT }, { "Refer-To", SIP_HDR_REFER_TO },
		{ "Referred-By", SIP_HDR_REFERRED_BY },
		{ "Replaces", SIP_HDR_REPLACES }, { "Subject", SIP_HDR_SUBJECT },
		{ "Content-Encoding", SIP_HDR_CONTENT_ENCODING },
		{ "Date", SIP_HDR_DATE }, { "Accept", SIP_HDR_ACCEPT },
		{ "Subscription-State", SIP_HDR_SUBSCRIPTION_STATE },
		{ "Session-Expires", SIP_HDR_SESSION_EXPIRES },
		/* near misses and the libre collisions: never known ids */
		{ "P-aqkz", SIP_HDR_OTHER }, { "P-akce", SIP_HDR_OTHER },
		{ "Vias", SIP_HDR_OTHER }, { "Fro", SIP_HDR_OTHER },
		{ "Content-Lengt", SIP_HDR_OTHER }, { "Contact2", SIP_HDR_OTHER },
		{ "Call_ID", SIP_HDR_OTHER }, { "X-To", SIP_HDR_OTHER },
		{ "Max-Forward", SIP_HDR_OTHER }, { "Contenu-Length", SIP_HDR_OTHER },
		{ "a", SIP_HDR_OTHER }, { "z", SIP_HDR_OTHER },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char buf[512];

		/* values chosen to be valid for whatever the name means */
		snprintf(buf, sizeof(buf),
			 "OPTIONS sip:h SIP/2.0\r\n"
			 "Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\nTo: <sip:b@h>\r\n"
			 "From: <sip:a@h>;tag=1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n"
			 "Content-Length: 0\r\n");
		if (names[i].id == SIP_HDR_OTHER) {
			snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf),
				 "%s: 99999\r\n\r\n", names[i].name);
			assert_int_equal(parse(buf, false), 0);
			assert_int_equal(msg.hdrs[msg.nhdrs - 1].id,
					 SIP_HDR_OTHER);
			assert_int_equal(msg.content_length, 0);
			assert_non_null(sip_hdr_find_name(&msg,
				pl_from_str(names[i].name)));
			continue;
		}
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf),
			 "X-Probe: 1\r\n\r\n");
		assert_int_equal(parse(buf, false), 0);
		/* the id lookup itself, through a message of one header */
		{
			char one[256];
			int n = snprintf(one, sizeof(one),
				"SIP/2.0 200 OK\r\n%s: <sip:x@h>\r\n\r\n",
				names[i].name);

			parse_n(one, (size_t)n, false);
			assert_true(msg.nhdrs >= 1);
			assert_int_equal(msg.hdrs[0].id, names[i].id);
			assert_int_equal(msg.first[names[i].id], 0);
		}
	}
}

static void test_unknown_headers_not_framing(void **state)
{
	/* libre read P-akce as Content-Length: a request smuggling vector */
	static const char m[] =
		"OPTIONS sip:h SIP/2.0\r\n"
		"Via: SIP/2.0/TCP h;branch=z9hG4bKx\r\nTo: <sip:b@h>\r\n"
		"From: <sip:a@h>;tag=1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n"
		"P-akce: 5\r\nP-aqkz: <sip:evil@h>\r\n"
		"Content-Length: 0\r\n\r\n"
		"OPTIONS";

	assert_int_equal(parse(m, true), 0);
	assert_int_equal(msg.content_length, 0);
	assert_int_equal(msg.len, strlen(m) - 7);
	assert_true(eq(msg.to.uri.user, "b"));
	assert_int_equal(msg.first[SIP_HDR_OTHER], 5);
	assert_int_equal(sip_hdr_next(&msg, 5, SIP_HDR_OTHER), 6);
	assert_int_equal(sip_hdr_next(&msg, 6, SIP_HDR_OTHER), -1);
}

static void test_first_absent(void **state)
{
	assert_int_equal(parse(invite, false), 0);
	assert_int_equal(msg.first[SIP_HDR_ROUTE], -1);
	assert_int_equal(msg.first[SIP_HDR_OTHER], -1);
	assert_null(sip_hdr_get(&msg, SIP_HDR_ROUTE));
	assert_int_equal(sip_hdr_next(&msg, -1, SIP_HDR_AUTHORIZATION), -1);
	assert_int_equal(msg.first[SIP_HDR_VIA], 0);
	assert_int_equal(sip_hdr_next(&msg, 0, SIP_HDR_VIA), -1);
	assert_null(sip_hdr_find_name(&msg, PL("X-Nope")));
	assert_non_null(sip_hdr_find_name(&msg, PL("call-id")));
}

static void test_header_syntax_errors(void **state)
{
	static const char *bad[] = {
		"NoColon\r\n",
		": empty name\r\n",
		"Bad Name: x\r\n",
		"Bad\x01Name: x\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char buf[512];

		snprintf(buf, sizeof(buf),
			 "OPTIONS sip:h SIP/2.0\r\n%s"
			 "Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\nTo: <sip:b@h>\r\n"
			 "From: <sip:a@h>;tag=1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n"
			 "l: 0\r\n\r\n", bad[i]);
		assert_int_equal(parse(buf, false), EBADMSG);
		assert_int_equal(msg.err_status, 400);
		/* the rest was still read: a 400 can be sent */
		assert_true(msg.can_reply);
	}
	/* a continuation line right after the start line */
	assert_int_equal(parse("OPTIONS sip:h SIP/2.0\r\n folded: x\r\n"
			       "Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\nTo: <sip:b@h>\r\n"
			       "From: <sip:a@h>;tag=1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n"
			       "l: 0\r\n\r\n", false), EBADMSG);
}

/* -- lists, folding --------------------------------------------------------*/

static void test_via_list_split(void **state)
{
	static const char m[] =
		"SIP/2.0 200 OK\r\n"
		"Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, "
		"SIP/2.0/TCP b.example.com:5070;branch=z9hG4bK2;x=\"q,q\"\r\n"
		"v: SIP/2.0/UDP [2001:db8::1]:5062;branch=z9hG4bK3\r\n"
		"To: <sip:b@h>;tag=2\r\nFrom: <sip:a@h>;tag=1\r\n"
		"Call-ID: c\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n";
	const struct sip_hdr *h0, *h1, *h2;
	struct sip_via v;

	assert_int_equal(parse(m, false), 0);
	assert_int_equal(msg.nvia, 3);
	assert_true(eq(msg.via.host, "a.example.com"));
	h0 = &msg.hdrs[0];
	h1 = &msg.hdrs[1];
	h2 = &msg.hdrs[2];
	assert_int_equal(h0->nvalues, 2);
	assert_int_equal(h1->nvalues, 2);
	assert_int_equal(h0->index, 0);
	assert_int_equal(h1->index, 1);
	assert_int_equal(h0->line_off, h1->line_off);
	assert_int_equal(h0->line_len, h1->line_len);
	assert_int_equal(h0->line_off, strlen("SIP/2.0 200 OK\r\n"));
	assert_int_equal(h0->line_len, strchr(m + h0->line_off, '\n') + 1 -
					(m + h0->line_off));
	assert_int_equal(h2->nvalues, 1);
	assert_int_equal(h2->index, 0);
	assert_int_equal(h2->line_off, h0->line_off + h0->line_len);
	assert_int_equal(sip_hdr_next(&msg, 0, SIP_HDR_VIA), 1);
	assert_int_equal(sip_hdr_next(&msg, 1, SIP_HDR_VIA), 2);
	assert_int_equal(sip_hdr_next(&msg, 2, SIP_HDR_VIA), -1);
	assert_true(eq(h0->value, "SIP/2.0/UDP a.example.com;branch=z9hG4bK1"));
	assert_int_equal(sip_via_parse(&v, h1->value), 0);
	assert_int_equal(v.port, 5070);
	assert_true(eq(v.transport, "TCP"));
	assert_int_equal(sip_via_parse(&v, h2->value), 0);
	assert_true(eq(v.host, "[2001:db8::1]"));
	assert_int_equal(v.port, 5062);
}

static void test_contact_list_split(void **state)
{
	static const char m[] =
		"REGISTER sip:example.com SIP/2.0\r\n" HDRS_REQ("REGISTER")
		"Contact: \"Doe, John\" <sip:j@h1;a=b,c>;q=0.5 , "
		"<sip:j@h2>;expires=60,sip:j@h3;q=0.1\r\n"
		"Contact: *\r\n"
		"Expires: 0\r\n"
		"l: 0\r\n\r\n";
	struct sip_addr a;
	int i, n = 0;
	const char *hosts[] = { "h1", "h2", "h3" };

	assert_int_equal(parse(m, false), 0);
	assert_int_equal(msg.expires, 0);
	for (i = sip_hdr_next(&msg, -1, SIP_HDR_CONTACT); i >= 0;
	     i = sip_hdr_next(&msg, i, SIP_HDR_CONTACT), n++) {
		const struct sip_hdr *h = &msg.hdrs[i];

		assert_int_equal(sip_addr_parse(&a, h->value), 0);
		if (n < 3) {
			assert_int_equal(h->nvalues, 3);
			assert_int_equal(h->index, n);
			assert_true(eq(a.uri.host, hosts[n]));
		} else {
			assert_int_equal(h->nvalues, 1);
			assert_true(a.star);
		}
	}
	assert_int_equal(n, 4);
	assert_int_equal(sip_addr_parse(&a, msg.hdrs[msg.first[SIP_HDR_CONTACT]]
					.value), 0);
	assert_true(eq(a.dname, "\"Doe, John\""));
	assert_true(eq(a.uri.params, ";a=b,c"));
	assert_true(eq(a.params, ";q=0.5"));
}

static void test_list_errors(void **state)
{
	static const char *bad[] = {
		"Via: SIP/2.0/UDP 192.0.2.15;;,;,,\r\n",
		"Contact: <sip:a@h>,,<sip:b@h>\r\n",
		"Contact: <sip:a@h>,\r\n",
		"Contact: \"open <sip:a@h>\r\n",
		"Contact: <sip:a@h\r\n",
		"Contact: \r\n",
		"Route: <sip:a@h>, ,<sip:b@h>\r\n",
		"Supported: timer,,100rel\r\n",
		"Contact: *, <sip:a@h>\r\n",
		"Contact: \"Joe\" <sip:joe@example.org>;;;;\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char buf[512];

		snprintf(buf, sizeof(buf),
			 "INVITE sip:h SIP/2.0\r\n" HDRS_REQ("INVITE") "%sl: 0\r\n\r\n",
			 bad[i]);
		if (parse(buf, false) != EBADMSG)
			fail_msg("accepted: %s", bad[i]);
		assert_int_equal(msg.err_status, 400);
	}
	/* empty option-tag lists are legal: one empty entry */
	assert_int_equal(parse("OPTIONS sip:h SIP/2.0\r\n" HDRS_REQ("OPTIONS")
			       "Supported: \r\nAllow:\r\nl: 0\r\n\r\n", false), 0);
	assert_int_equal(sip_hdr_get(&msg, SIP_HDR_SUPPORTED)->value.l, 0);
	assert_int_equal(sip_hdr_get(&msg, SIP_HDR_ALLOW)->nvalues, 1);
}

static void test_option_tags_split(void **state)
{
	assert_int_equal(parse("OPTIONS sip:h SIP/2.0\r\n" HDRS_REQ("OPTIONS")
			       "Require: 100rel ,\r\n timer\r\n"
			       "Allow: INVITE,ACK,BYE\r\nl: 0\r\n\r\n", false), 0);
	{
		const struct sip_hdr *r = sip_hdr_get(&msg, SIP_HDR_REQUIRE);
		int i = (int)(r - msg.hdrs);

		assert_true(eq(r->value, "100rel"));
		assert_int_equal(r->nvalues, 2);
		assert_true(eq(msg.hdrs[i + 1].value, "timer"));
		assert_int_equal(msg.hdrs[i + 1].index, 1);
		i = sip_hdr_next(&msg, -1, SIP_HDR_ALLOW);
		assert_true(eq(msg.hdrs[i].value, "INVITE"));
		assert_true(eq(msg.hdrs[i + 2].value, "BYE"));
		assert_int_equal(msg.hdrs[i + 2].nvalues, 3);
	}
	/* a non-list header keeps its commas */
	assert_int_equal(parse("OPTIONS sip:h SIP/2.0\r\n" HDRS_REQ("OPTIONS")
			       "Accept: a/b, c/d\r\nl: 0\r\n\r\n", false), 0);
	assert_true(eq(sip_hdr_get(&msg, SIP_HDR_ACCEPT)->value, "a/b, c/d"));
}

static void test_folding(void **state)
{
	static const char m[] =
		"INVITE sip:bob@example.com SIP/2.0\r\n"
		"Via: SIP/2.0/UDP\r\n 192.0.2.1\r\n\t;branch=z9hG4bK1\r\n"
		"Max-Forwards:\r\n 70\r\n"
		"To :\r\n <sip:bob@example.com>\r\n"
		"From: Alice\r\n <sip:alice@example.com>\r\n ;\r\n tag=9\r\n"
		"Call-ID: abc\r\n"
		"CSeq: 1\r\n  INVITE\r\n"
		"X-Long: one\r\n two\r\n"
		"Content-Length:   0   \r\n"
		"\r\n";
	const struct sip_hdr *h;

	assert_int_equal(parse(m, false), 0);
	assert_true(eq(msg.via.host, "192.0.2.1"));
	assert_true(eq(msg.via.branch, "z9hG4bK1"));
	assert_int_equal(msg.max_forwards, 70);
	assert_true(eq(msg.from_tag, "9"));
	assert_true(eq(msg.from.dname, "Alice"));
	assert_true(eq(msg.to.uri.user, "bob"));
	assert_int_equal(msg.cseq, 1);
	assert_true(eq(msg.cseq_method, "INVITE"));
	h = sip_hdr_find_name(&msg, PL("x-long"));
	assert_non_null(h);
	assert_true(eq(h->value, "one\r\n two"));
	assert_int_equal(h->line_len, strlen("X-Long: one\r\n two\r\n"));
	h = sip_hdr_get(&msg, SIP_HDR_VIA);
	assert_int_equal(h->line_len,
			 strlen("Via: SIP/2.0/UDP\r\n 192.0.2.1\r\n\t;branch=z9hG4bK1\r\n"));
}

static void test_bare_lf(void **state)
{
	static const char m[] =
		"OPTIONS sip:h SIP/2.0\n"
		"Via: SIP/2.0/UDP h;branch=z9hG4bKx\nTo: <sip:b@h>\n"
		"From: <sip:a@h>;tag=1\nCall-ID: c\nCSeq: 1 OPTIONS\n"
		"l: 2\n\nab";

	assert_int_equal(parse(m, false), 0);
	assert_true(eq(msg.body, "ab"));
	assert_true(eq(msg.call_id, "c"));
}

static void test_too_many_headers(void **state)
{
	static char buf[16384];
	size_t n;

	n = (size_t)snprintf(buf, sizeof(buf),
			     "OPTIONS sip:h SIP/2.0\r\n" HDRS_REQ("OPTIONS"));
	for (int i = 0; i < SIP_MAX_HDRS; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: %d\r\n",
				      i, i);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "l: 0\r\n\r\n");
	assert_int_equal(parse_n(buf, n, false), EBADMSG);
	assert_int_equal(msg.err_status, 400);
	assert_string_equal(msg.err_reason, "Too many headers");
	assert_int_equal(msg.nhdrs, SIP_MAX_HDRS);
	assert_true(msg.can_reply);

	/* values in a list count one each */
	n = (size_t)snprintf(buf, sizeof(buf),
			     "OPTIONS sip:h SIP/2.0\r\n" HDRS_REQ("OPTIONS")
			     "Allow: A");
	for (int i = 0; i < SIP_MAX_HDRS; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, ",A");
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\nl: 0\r\n\r\n");
	assert_int_equal(parse_n(buf, n, false), EBADMSG);
	assert_int_equal(msg.nhdrs, SIP_MAX_HDRS);
}

/* -- single-value headers --------------------------------------------------*/

static int parse_with(const char *extra)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), "OPTIONS sip:h SIP/2.0\r\n" HDRS_REQ("OPTIONS")
		 "%sl: 0\r\n\r\n", extra);
	return parse(buf, false);
}

static void test_scalars(void **state)
{
	assert_int_equal(parse_with("Expires: 4294967295\r\n"), 0);
	assert_int_equal(msg.expires, 4294967295LL);
	assert_int_equal(parse_with("Expires: 4294967296\r\n"), EBADMSG);
	assert_int_equal(parse_with("Expires: -1\r\n"), EBADMSG);
	assert_int_equal(parse_with("Expires: 10000000000000000000000000\r\n"),
			 EBADMSG);
	assert_int_equal(parse_with("Expires: 5\r\nExpires: 5\r\n"), EBADMSG);
	assert_int_equal(parse_with("Max-Forwards: 255\r\n"), EBADMSG);
	/* HDRS_REQ has Max-Forwards 70: a second one is a duplicate */
	assert_string_equal(msg.err_reason, "Multiple Max-Forwards");

	assert_int_equal(parse("OPTIONS sip:h SIP/2.0\r\n"
			       "Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\nTo: <sip:b@h>\r\n"
			       "From: <sip:a@h>;tag=1\r\nCall-ID: c\r\n"
			       "CSeq: 2147483647 OPTIONS\r\nMax-Forwards: 0255\r\n"
			       "l: 0\r\n\r\n", false), 0);
	assert_int_equal(msg.cseq, 2147483647u);
	assert_int_equal(msg.max_forwards, 255);
	assert_int_equal(parse("OPTIONS sip:h SIP/2.0\r\n"
			       "Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\nTo: <sip:b@h>\r\n"
			       "From: <sip:a@h>;tag=1\r\nCall-ID: c\r\n"
			       "CSeq: 1 OPTIONS\r\nMax-Forwards: 256\r\n"
			       "l: 0\r\n\r\n", false), EBADMSG);
	assert_string_equal(msg.err_reason, "Bad Max-Forwards");
	assert_int_equal(parse("OPTIONS sip:h SIP/2.0\r\n"
			       "Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\nTo: <sip:b@h>\r\n"
			       "From: <sip:a@h>;tag=1\r\nCall-ID: c\r\n"
			       "CSeq: 2147483648 OPTIONS\r\n"
			       "l: 0\r\n\r\n", false), EBADMSG);
	assert_string_equal(msg.err_reason, "Bad CSeq");
	assert_false(msg.can_reply);
	assert_int_equal(parse("OPTIONS sip:h SIP/2.0\r\n"
			       "Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\nTo: <sip:b@h>\r\n"
			       "From: <sip:a@h>;tag=1\r\nCall-ID: c\r\n"
			       "CSeq: OPTIONS\r\nl: 0\r\n\r\n", false), EBADMSG);
	assert_int_equal(parse("OPTIONS sip:h SIP/2.0\r\n"
			       "Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\nTo: <sip:b@h>\r\n"
			       "From: <sip:a@h>;tag=1\r\nCall-ID: c\r\n"
			       "CSeq: 1OPTIONS\r\nl: 0\r\n\r\n", false), EBADMSG);
	assert_int_equal(parse("OPTIONS sip:h SIP/2.0\r\n"
			       "Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\nTo: <sip:b@h>\r\n"
			       "From: <sip:a@h>;tag=1\r\nCall-ID: c\r\n"
			       "CSeq: 1 OPTIONS x\r\nl: 0\r\n\r\n", false), EBADMSG);
}

static void test_duplicates_and_mandatory(void **state)
{
	static const char *dups[] = {
		"From: <sip:x@h>;tag=2\r\n", "To: <sip:x@h>\r\n",
		"Call-ID: other\r\n", "CSeq: 2 OPTIONS\r\n",
		"c: a/b\r\nContent-Type: text/plain\r\n",
		"Expires: 1\r\nExpires: 2\r\n",
	};

	for (size_t i = 0; i < sizeof(dups) / sizeof(dups[0]); i++) {
		assert_int_equal(parse_with(dups[i]), EBADMSG);
		assert_int_equal(msg.err_status, 400);
		assert_true(strncmp(msg.err_reason, "Multiple", 8) == 0);
	}
	assert_int_equal(parse_with("Content-Type: a/b\r\n"), 0);

	/* each mandatory header missing in turn */
	static const char *lines[] = {
		"Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\n", "To: <sip:b@h>\r\n",
		"From: <sip:a@h>;tag=1\r\n", "Call-ID: c\r\n",
		"CSeq: 1 OPTIONS\r\n",
	};
	for (size_t skip = 0; skip < 5; skip++) {
		char buf[512] = "OPTIONS sip:h SIP/2.0\r\n";

		for (size_t i = 0; i < 5; i++)
			if (i != skip)
				strcat(buf, lines[i]);
		strcat(buf, "l: 0\r\n\r\n");
		assert_int_equal(parse(buf, false), EBADMSG);
		assert_true(strncmp(msg.err_reason, "Missing", 7) == 0);
		assert_false(msg.can_reply);
	}
	/* Max-Forwards is optional */
	assert_int_equal(parse("OPTIONS sip:h SIP/2.0\r\n"
			       "Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\nTo: <sip:b@h>\r\n"
			       "From: <sip:a@h>;tag=1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n"
			       "l: 0\r\n\r\n", false), 0);
	assert_int_equal(msg.max_forwards, -1);
}

static void test_call_id_date_ok(void **state)
{
	static const char head[] =
		"OPTIONS sip:h SIP/2.0\r\n"
		"Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\nTo: <sip:b@h>\r\n"
		"From: <sip:a@h>;tag=1\r\nCSeq: 1 OPTIONS\r\n";
	char buf[512];

	snprintf(buf, sizeof(buf), "%sCall-ID: %s\r\nl: 0\r\n\r\n", head,
		 "a!b%c*d_e+f`g'h~i(j)k<l>m:n\\o\"p/q[r]s?t{u}v@host");
	assert_int_equal(parse(buf, false), 0);
	snprintf(buf, sizeof(buf), "%sCall-ID: a b\r\nl: 0\r\n\r\n", head);
	assert_int_equal(parse(buf, false), EBADMSG);
	assert_string_equal(msg.err_reason, "Bad Call-ID");
	snprintf(buf, sizeof(buf), "%sCall-ID: a@b@c\r\nl: 0\r\n\r\n", head);
	assert_int_equal(parse(buf, false), EBADMSG);
	snprintf(buf, sizeof(buf), "%sCall-ID:\r\nl: 0\r\n\r\n", head);
	assert_int_equal(parse(buf, false), EBADMSG);

	snprintf(buf, sizeof(buf), "%sCall-ID: x\r\n"
		 "Date: Sat, 13 Nov 2010 23:29:00 GMT\r\nl: 0\r\n\r\n", head);
	assert_int_equal(parse(buf, false), 0);
	snprintf(buf, sizeof(buf), "%sCall-ID: x\r\n"
		 "Date: Fri, 01 Jan 2010 16:00:00 EST\r\nl: 0\r\n\r\n", head);
	assert_int_equal(parse(buf, false), EBADMSG);
	assert_string_equal(msg.err_reason, "Bad Date");
	snprintf(buf, sizeof(buf), "%sCall-ID: x\r\n"
		 "Date: Xyz, 01 Jan 2010 16:00:00 GMT\r\nl: 0\r\n\r\n", head);
	assert_int_equal(parse(buf, false), EBADMSG);
}

static void test_from_to(void **state)
{
	assert_int_equal(parse("OPTIONS sip:h SIP/2.0\r\n"
			       "Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\n"
			       "To: sip:b@h ; tag = 77\r\n"
			       "From: \"A \\\"q\\\" B\" <sip:a@h>;tag=1;x\r\n"
			       "Call-ID: c\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n",
			       false), 0);
	assert_true(eq(msg.to_tag, "77"));
	assert_false(msg.to.angle);
	assert_true(eq(msg.from.dname, "\"A \\\"q\\\" B\""));
	assert_true(msg.from.angle);
	/* star, unterminated quote, bad display name, spaces in <> */
	assert_int_equal(parse_req("OPTIONS sip:h SIP/2.0", "OPTIONS"), 0);
	assert_int_equal(parse("OPTIONS sip:h SIP/2.0\r\n"
			       "Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\nTo: *\r\n"
			       "From: <sip:a@h>;tag=1\r\n"
			       "Call-ID: c\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n",
			       false), EBADMSG);
	assert_string_equal(msg.err_reason, "Bad To");
	assert_int_equal(parse("OPTIONS sip:h SIP/2.0\r\n"
			       "Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\nTo: <sip:b@h>\r\n"
			       "From: <sip:a@h>;tag=\r\n"
			       "Call-ID: c\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n",
			       false), EBADMSG);
}

/* What real phones and WebRTC clients send must pass. */
static void test_real_world(void **state)
{
	static const char *ok[] = {
		"Contact: <sip:jsip@df7jal23ls0d.invalid;transport=ws>;+sip.ice;"
		"reg-id=1;+sip.instance=\"<urn:uuid:3e7f7c4a-1b2c>\";expires=600\r\n",
		"Contact: \"Mr. Watson\" <sip:watson@worcester.example.com>;q=0.7;"
		" expires=3600, \"Mr. Watson\" <mailto:watson@example.com> ;q=0.1\r\n",
		"Contact: <sip:u@h>;methods=\"INVITE, BYE\";+g.oma.sip-im\r\n",
		"Route: <sip:[2001:db8::1];lr>, <sip:p2.example.com;lr;transport=tcp>\r\n",
		"Record-Route: <sip:p1.example.com;lr;ftag=abc;did=1.2>\r\n",
		"Allow-Events: presence, dialog\r\n",
		"P-Asserted-Identity: \"Ann\" <sip:ann@example.com>, <tel:+123>\r\n",
		"X_Custom-Header: anything, at all; really\r\n",
		"Supported: path, gruu, outbound\r\n",
		"Session-Expires: 1800;refresher=uac\r\n",
		"Proxy-Authorization: Digest username=\"a\",realm=\"r\",nonce=\"n\","
		"uri=\"sip:h\",response=\"x\"\r\n",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (parse_with(ok[i]) != 0)
			fail_msg("rejected (%s): %s", msg.err_reason, ok[i]);
	assert_int_equal(parse("INVITE tel:+12015550123 SIP/2.0\r\n"
			       HDRS_REQ("INVITE") "l: 0\r\n\r\n", false), 0);
	assert_true(eq(msg.ruri.scheme, "tel"));
	assert_int_equal(parse("REGISTER sip:example.com SIP/2.0\r\n"
			       "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKa;rport\r\n"
			       "From: <sip:u@example.com>;tag=x\r\nTo: <sip:u@example.com>\r\n"
			       "Call-ID: 5d2c@df7jal23ls0d.invalid\r\nCSeq: 1 REGISTER\r\n"
			       "Content-Length: 0\r\n\r\n", true), 0);
	assert_true(eq(msg.via.transport, "WSS"));
	assert_true(msg.via.has_rport);
}

/* -- Content-Length and framing ---------------------------------------------*/

static void test_content_length_udp(void **state)
{
	static const char head[] =
		"MESSAGE sip:h SIP/2.0\r\n" HDRS_REQ("MESSAGE");
	char buf[1024];

	/* absent: the body is the rest of the datagram */
	snprintf(buf, sizeof(buf), "%s\r\nhello", head);
	assert_int_equal(parse(buf, false), 0);
	assert_false(msg.has_content_length);
	assert_true(eq(msg.body, "hello"));
	assert_int_equal(msg.len, strlen(buf));
	/* shorter: trailing octets ignored */
	snprintf(buf, sizeof(buf), "%sContent-Length: 3\r\n\r\nhello", head);
	assert_int_equal(parse(buf, false), 0);
	assert_true(eq(msg.body, "hel"));
	assert_int_equal(msg.len, strlen(buf) - 2);
	/* longer: error */
	snprintf(buf, sizeof(buf), "%sContent-Length: 6\r\n\r\nhello", head);
	assert_int_equal(parse(buf, false), EBADMSG);
	assert_int_equal(msg.err_status, 400);
	assert_true(msg.can_reply);
	/* negative, non-numeric, empty, huge */
	static const char *bad[] = { "-1", "abc", "", "1 2", "0x10",
				     "99999999999999999999999", "+5" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf), "%sContent-Length: %s\r\n\r\n", head,
			 bad[i]);
		assert_int_equal(parse(buf, false), EBADMSG);
		assert_string_equal(msg.err_reason, "Bad Content-Length");
	}
	/* duplicates: equal is fine, conflicting is not */
	snprintf(buf, sizeof(buf), "%sl: 5\r\nContent-Length: 5\r\n\r\nhello",
		 head);
	assert_int_equal(parse(buf, false), 0);
	snprintf(buf, sizeof(buf), "%sl: 5\r\nContent-Length: 4\r\n\r\nhello",
		 head);
	assert_int_equal(parse(buf, false), EBADMSG);
	assert_string_equal(msg.err_reason, "Conflicting Content-Length");
	/* leading zeros */
	snprintf(buf, sizeof(buf), "%sContent-Length: 0005\r\n\r\nhello", head);
	assert_int_equal(parse(buf, false), 0);
	assert_int_equal(msg.content_length, 5);
}

static void test_content_length_stream(void **state)
{
	static const char head[] =
		"MESSAGE sip:h SIP/2.0\r\n" HDRS_REQ("MESSAGE");
	char buf[1024];
	size_t full;

	/* mandatory on a stream */
	snprintf(buf, sizeof(buf), "%s\r\nhello", head);
	assert_int_equal(parse(buf, true), EBADMSG);
	assert_string_equal(msg.err_reason, "Missing Content-Length");

	/* every prefix of a complete message is EAGAIN */
	snprintf(buf, sizeof(buf), "%sContent-Length: 5\r\n\r\nhello", head);
	full = strlen(buf);
	for (size_t n = 1; n < full; n++) {
		int err = parse_n(buf, n, true);

		if (err != EAGAIN)
			fail_msg("prefix %zu/%zu: err %d", n, full, err);
	}
	assert_int_equal(parse_n(buf, full, true), 0);
	assert_int_equal(msg.len, full);
	assert_true(eq(msg.body, "hello"));
	/* a datagram cut anywhere is an error, never EAGAIN */
	for (size_t n = 1; n < full; n++)
		assert_int_equal(parse_n(buf, n, false), EBADMSG);
}

static void test_stream_back_to_back(void **state)
{
	static const char one[] =
		"MESSAGE sip:h SIP/2.0\r\n" HDRS_REQ("MESSAGE")
		"Content-Length: 5\r\n\r\nhello";
	static const char two[] =
		"SIP/2.0 200 OK\r\n"
		"Via: SIP/2.0/TCP h;branch=z9hG4bKx\r\nTo: <sip:b@h>;tag=2\r\n"
		"From: <sip:a@h>;tag=1\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\n"
		"Content-Length: 0\r\n\r\n";
	char buf[2048];
	size_t n1 = strlen(one), n2 = strlen(two), off;

	snprintf(buf, sizeof(buf), "\r\n\r\n%s%s\r\n", one, two);
	assert_int_equal(parse(buf, true), 0);
	assert_true(msg.is_request);
	/* keepalive skipped, not counted: consumed = (buf - cur) + len */
	assert_true(msg.buf == cur + 4);
	assert_int_equal(msg.len, n1);
	assert_true(eq(msg.body, "hello"));
	off = (size_t)(msg.buf - cur) + msg.len;
	{
		int err = sip_msg_parse(&msg, cur + off, strlen(buf) - off, true);

		assert_int_equal(err, 0);
	}
	assert_false(msg.is_request);
	assert_int_equal(msg.status, 200);
	assert_int_equal(msg.len, n2);
	assert_true(msg.buf == cur + off);
	off += msg.len;
	assert_int_equal(sip_msg_parse(&msg, cur + off, strlen(buf) - off, true),
			 ENODATA);
	assert_int_equal(msg.len, 2);
	assert_true(msg.buf == cur + off);
	/* half of the second message: EAGAIN */
	assert_int_equal(sip_msg_parse(&msg, cur + n1 + 4, n2 / 2, true),
			 EAGAIN);
}

static void test_keepalives(void **state)
{
	assert_int_equal(parse("\r\n\r\n", false), ENODATA);
	assert_int_equal(msg.len, 4);
	assert_true(msg.buf == cur);
	assert_int_equal(parse("\r\n", true), ENODATA);
	assert_int_equal(msg.len, 2);
	assert_int_equal(parse_n("", 0, true), EAGAIN);
	assert_int_equal(parse_n("", 0, false), ENODATA);
	/* keepalive then a message on UDP */
	{
		char buf[1024];

		snprintf(buf, sizeof(buf), "\r\n%s", invite);
		assert_int_equal(parse(buf, false), 0);
		assert_int_equal(msg.len, strlen(invite));
		assert_true(msg.buf == cur + 2);
		assert_int_equal(msg.hdrs[0].line_off,
				 strlen("INVITE sip:bob@example.com SIP/2.0\r\n"));
	}
}

static void test_body_binary(void **state)
{
	static const char head[] =
		"MESSAGE sip:h SIP/2.0\r\n" HDRS_REQ("MESSAGE")
		"Content-Length: 6\r\n\r\n";
	char buf[512];
	size_t n = strlen(head);

	memcpy(buf, head, n);
	memcpy(buf + n, "a\0\r\n\0b", 6);
	assert_int_equal(parse_n(buf, n + 6, true), 0);
	assert_int_equal(msg.body.l, 6);
	assert_int_equal(memcmp(msg.body.p, "a\0\r\n\0b", 6), 0);
	/* a lone CR inside a header line would hide a header downstream */
	assert_int_equal(parse("OPTIONS sip:h SIP/2.0\r\n" HDRS_REQ("OPTIONS")
			       "X-A: a\rVia: SIP/2.0/UDP evil\r\nl: 0\r\n\r\n",
			       false), EBADMSG);
	assert_string_equal(msg.err_reason, "Bare CR in header");
	assert_int_equal(parse("OPTIONS sip:h SIP/2.0\r\n" HDRS_REQ("OPTIONS")
			       "X-A: a\r\n b\r\r\nl: 0\r\n\r\n",
			       false), EBADMSG);
	assert_int_equal(parse("OPTIONS sip:h SIP/2.0\rX: y\r\n"
			       HDRS_REQ("OPTIONS") "l: 0\r\n\r\n", false),
			 EBADMSG);
	assert_string_equal(msg.err_reason, "Bare CR in start line");
	/* long lines take the vector path of the line scanner */
	assert_int_equal(parse("OPTIONS sip:h SIP/2.0\r\n" HDRS_REQ("OPTIONS")
			       "X-Long: 0123456789abcdef0123456789abcdef\r012\r\n"
			       "l: 0\r\n\r\n", false), EBADMSG);
	assert_string_equal(msg.err_reason, "Bare CR in header");
	/* a NUL in the header block is not a terminator either */
	assert_int_equal(parse_n("OPTIONS sip:h SIP/2.0\r\nX: a\0b\r\n", 30,
				 false), EBADMSG);
}

/* -- URIs ------------------------------------------------------------------*/

static void test_uri_parse(void **state)
{
	struct sip_uri u;

	assert_int_equal(sip_uri_parse(&u,
		PL("sips:alice:secret@Example.COM:5061;transport=tcp;lr?subject=x&a=b")), 0);
	assert_true(eq(u.scheme, "sips"));
	assert_true(eq(u.user, "alice"));
	assert_true(eq(u.password, "secret"));
	assert_true(eq(u.host, "Example.COM"));
	assert_int_equal(u.port, 5061);
	assert_true(eq(u.params, ";transport=tcp;lr"));
	assert_true(eq(u.headers, "subject=x&a=b"));
	assert_false(u.host_is_ipv6);

	assert_int_equal(sip_uri_parse(&u, PL("sip:example.com")), 0);
	assert_false(pl_isset(u.user));
	assert_false(pl_isset(u.headers));
	assert_int_equal(u.params.l, 0);

	assert_int_equal(sip_uri_parse(&u, PL("sip:[2001:db8::1]:5060;lr")), 0);
	assert_true(eq(u.host, "[2001:db8::1]"));
	assert_true(u.host_is_ipv6);
	assert_int_equal(u.port, 5060);
	assert_int_equal(sip_uri_parse(&u, PL("sip:u@[::ffff:192.0.2.1]")), 0);
	assert_true(u.host_is_ipv6);
	assert_int_equal(sip_uri_parse(&u, PL("sip:u@[2001:db8:::192.0.2.1]")),
			 0);

	assert_int_equal(sip_uri_parse(&u, PL("sip:user;par=u%40e.net@h")), 0);
	assert_true(eq(u.user, "user;par=u%40e.net"));
	assert_int_equal(sip_uri_parse(&u, PL("sip:%00@h")), 0);
	assert_int_equal(u.user.l, 3);

	/* feature codes: '#' tolerated in the user part, never in a host */
	assert_int_equal(sip_uri_parse(&u, PL("sip:*72#1234@example.com")), 0);
	assert_true(eq(u.user, "*72#1234"));
	assert_int_equal(sip_uri_parse(&u, PL("sip:h#x")), EBADMSG);
	assert_int_equal(sip_uri_parse(&u,
		PL("sip:+1-201-555-0123;phone-context=example.com@example.com;user=phone")), 0);
	assert_true(eq(u.user, "+1-201-555-0123;phone-context=example.com"));
	assert_true(eq(u.params, ";user=phone"));
	assert_int_equal(sip_uri_parse(&u, PL("tel:+1-201-555-0123;x=y")), 0);
	assert_true(eq(u.scheme, "tel"));
	assert_true(eq(u.opaque, "+1-201-555-0123;x=y"));
	assert_int_equal(u.host.l, 0);
	assert_int_equal(sip_uri_parse(&u, PL("soap.beep://192.0.2.103:3002")),
			 0);

	static const char *bad[] = {
		"", "sip:", "sip", ":x", "1sip:h", "sip:@h", "sip:u@", "sip:h:",
		"sip:h:65536", "sip:h:123456", "sip:h:5x", "sip:2001:db8::10",
		"sip:u@2001:db8::10", "sip:[2001:db8::1", "sip:[zz::1]",
		"sip:[]", "sip:h;", "sip:h;;lr", "sip:h;=x", "sip:h?",
		"sip:h x", "sip:h>", "sip:h\"", "sip:u@h@h", "sip:%4@h",
		"sip:%g0@h", "sip:h/x", "foo:", "foo:a b", "foo:<x>",
		"sip:h\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (sip_uri_parse(&u, pl_from_str(bad[i])) != EBADMSG)
			fail_msg("accepted URI \"%s\"", bad[i]);
}

static void test_uri_equal(void **state)
{
	static const char *same[][2] = {
		{ "sip:%61lice@atlanta.com;transport=TCP",
		  "sip:alice@AtLanTa.CoM;Transport=tcp" },
		{ "sip:carol@chicago.com",
		  "sip:carol@chicago.com;newparam=5" },
		{ "sip:carol@chicago.com;security=on",
		  "sip:carol@chicago.com;newparam=5" },
		{ "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
		  "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com" },
		{ "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
		  "sip:alice@atlanta.com?priority=urgent&subject=project%20x" },
		{ "sip:u@h;%6C%72", "sip:u@h;lr" },
		{ "tel:+1234", "TEL:+1234" },
	};
	static const char *diff[][2] = {
		{ "SIP:ALICE@AtLanTa.CoM;Transport=udp",
		  "sip:alice@AtLanTa.CoM;Transport=UDP" },
		{ "sip:bob@biloxi.com", "sip:bob@biloxi.com:5060" },
		{ "sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp;user=ip" },
		{ "sip:bob@biloxi.com", "sip:bob@biloxi.com;maddr=1.2.3.4" },
		{ "sip:carol@chicago.com", "sips:carol@chicago.com" },
		{ "sip:carol@chicago.com;security=on",
		  "sip:carol@chicago.com;security=off" },
		{ "sip:carol@chicago.com",
		  "sip:carol@chicago.com?Subject=next%20meeting" },
		{ "sip:bob@phone21.boxesbybob.com",
		  "sip:bob@192.0.2.4" },
		{ "sip:a:x@h", "sip:a:y@h" },
		{ "sip:a@h", "sip:a:@h" },
		{ "tel:+1234", "tel:+1235" },
		{ "sip:h?a=1&a=1", "sip:h?a=1&b=2" },
	};
	struct sip_uri a, b;

	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		assert_int_equal(sip_uri_parse(&a, pl_from_str(same[i][0])), 0);
		assert_int_equal(sip_uri_parse(&b, pl_from_str(same[i][1])), 0);
		if (!sip_uri_equal(&a, &b) || !sip_uri_equal(&b, &a))
			fail_msg("not equal: %s %s", same[i][0], same[i][1]);
	}
	/* fuzzer find: a repeated param made a URI differ from itself */
	assert_int_equal(sip_uri_parse(&a, PL("sip:u@h;x=1;x=2;lr;lr=3?a=1&a=1")),
			 0);
	assert_true(sip_uri_equal(&a, &a));
	for (size_t i = 0; i < sizeof(diff) / sizeof(diff[0]); i++) {
		assert_int_equal(sip_uri_parse(&a, pl_from_str(diff[i][0])), 0);
		assert_int_equal(sip_uri_parse(&b, pl_from_str(diff[i][1])), 0);
		if (sip_uri_equal(&a, &b) || sip_uri_equal(&b, &a))
			fail_msg("equal: %s %s", diff[i][0], diff[i][1]);
	}
}

static void test_param_get(void **state)
{
	struct pl v;
	struct pl params = PL(";transport=tcp;lr;Branch=z9hG4bK1 ; x = \"q;r\" ;rport");

	assert_true(sip_param_get(params, "transport", &v));
	assert_true(eq(v, "tcp"));
	assert_true(sip_param_get(params, "LR", &v));
	assert_int_equal(v.l, 0);
	assert_true(sip_param_get(params, "branch", &v));
	assert_true(eq(v, "z9hG4bK1"));
	assert_true(sip_param_get(params, "x", &v));
	assert_true(eq(v, "\"q;r\""));
	assert_true(sip_param_get(params, "rport", NULL));
	assert_false(sip_param_get(params, "r", &v));
	assert_false(sip_param_get(params, "q", &v));
	assert_false(sip_param_get(params, "transpor", &v));
	assert_false(sip_param_get(PL(""), "lr", &v));
	assert_false(sip_param_get(PL_NULL, "lr", &v));
}

/* -- Via -------------------------------------------------------------------*/

static void test_via_parse(void **state)
{
	struct sip_via v;

	assert_int_equal(sip_via_parse(&v,
		PL("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport;received=1.2.3.4")), 0);
	assert_true(eq(v.protocol, "SIP/2.0"));
	assert_true(eq(v.transport, "UDP"));
	assert_true(eq(v.host, "10.0.0.1"));
	assert_int_equal(v.port, 5060);
	assert_true(eq(v.branch, "z9hG4bK1"));
	assert_true(eq(v.received, "1.2.3.4"));
	assert_true(v.has_rport);
	assert_int_equal(v.rport.l, 0);
	assert_true(eq(v.params, ";branch=z9hG4bK1;rport;received=1.2.3.4"));

	assert_int_equal(sip_via_parse(&v, PL("SIP / 2.0 / TCP h : 5070 ; rport=1234 ;branch = z9hG4bK2")), 0);
	assert_true(eq(v.transport, "TCP"));
	assert_int_equal(v.port, 5070);
	assert_true(eq(v.rport, "1234"));
	assert_true(eq(v.branch, "z9hG4bK2"));

	assert_int_equal(sip_via_parse(&v, PL("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3")), 0);
	assert_true(eq(v.received, "2001:db8::9:255"));
	assert_true(eq(v.branch, "z9hG4bKas3"));
	assert_int_equal(sip_via_parse(&v, PL("SIP/2.0/UDP h")), 0);
	assert_false(pl_isset(v.branch));
	assert_false(v.has_rport);

	static const char *bad[] = {
		"", "SIP/2.0", "SIP/2.0/UDP", "SIP/2.0/UDP ", "SIP/2.0/UDPh",
		"SIP/2.0 UDP h", "SIP/2.0/UDP h;", "SIP/2.0/UDP h;;",
		"SIP/2.0/UDP h;branch", "SIP/2.0/UDP h;branch=",
		"SIP/2.0/UDP h;rport=x", "SIP/2.0/UDP h:99999",
		"SIP/2.0/UDP h junk", "SIP/2.0/UDP h;x=\"open",
		"SIP/2.0/UDP h;x=a<b", "SIP/2.0/UDP [::1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (sip_via_parse(&v, pl_from_str(bad[i])) != EBADMSG)
			fail_msg("accepted Via \"%s\"", bad[i]);
}

/* -- name-addr --------------------------------------------------------------*/

static void test_addr_parse(void **state)
{
	struct sip_addr a;

	assert_int_equal(sip_addr_parse(&a,
		PL("\"Alice \\\"A\\\"\" <sip:alice@h;lr>;tag=1;expires=60")), 0);
	assert_true(eq(a.dname, "\"Alice \\\"A\\\"\""));
	assert_true(eq(a.uri_str, "sip:alice@h;lr"));
	assert_true(eq(a.uri.params, ";lr"));
	assert_true(eq(a.params, ";tag=1;expires=60"));
	assert_true(a.angle);
	assert_false(a.star);

	assert_int_equal(sip_addr_parse(&a, PL("caller<sip:c@h>")), 0);
	assert_true(eq(a.dname, "caller"));
	assert_int_equal(sip_addr_parse(&a, PL("token1~` token2'+_ <sip:c@h>")),
			 0);
	assert_true(eq(a.dname, "token1~` token2'+_"));
	assert_int_equal(sip_addr_parse(&a, PL("<sip:c@h>")), 0);
	assert_int_equal(a.dname.l, 0);

	/* without <>: ';' starts header params */
	assert_int_equal(sip_addr_parse(&a, PL("sip:+1972@gw1.example.net;unknownparam")), 0);
	assert_false(a.angle);
	assert_true(eq(a.uri_str, "sip:+1972@gw1.example.net"));
	assert_true(eq(a.params, ";unknownparam"));
	assert_int_equal(a.uri.params.l, 0);
	assert_int_equal(sip_addr_parse(&a, PL("<sip:+1972@gw1.example.net;unknownparam>")), 0);
	assert_true(eq(a.uri.params, ";unknownparam"));
	assert_int_equal(a.params.l, 0);

	assert_int_equal(sip_addr_parse(&a, PL(" * ")), 0);
	assert_true(a.star);
	assert_int_equal(sip_addr_parse(&a, PL("<isbn:2983792873>")), 0);
	assert_int_equal(sip_addr_parse(&a, PL("isbn:2983792873;tag=x")), 0);
	assert_true(eq(a.uri.scheme, "isbn"));
	assert_true(eq(a.params, ";tag=x"));
	assert_int_equal(sip_addr_parse(&a, PL("<sip:u@h?Route=%3Csip:x%3E>")), 0);
	assert_true(eq(a.uri.headers, "Route=%3Csip:x%3E"));
	assert_int_equal(sip_addr_parse(&a, PL("\"x\" <sip:h>;p=\"\xd1\x80\"")), 0);

	static const char *bad[] = {
		"", "\"open <sip:h>", "Bell, Alexander <sip:h>", "< sip:h >",
		"<sip:h", "sip:h?Route=x", "\"x\" sip:h", "x y", "<sip:h> x",
		"<sip:h>;", "<sip:h>;;", "<sip:h>;=1", "<sip:h>;a=", "**",
		"A B sip:h", "<sip:h>;tag=\"x", "sip:h, sip:i", "a@b <sip:h>",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (sip_addr_parse(&a, pl_from_str(bad[i])) != EBADMSG)
			fail_msg("accepted addr \"%s\"", bad[i]);
}

/* -- credentials -------------------------------------------------------------*/

static void test_auth_parse(void **state)
{
	struct sip_auth au;

	assert_int_equal(sip_auth_parse(&au, PL(
		"Digest username=\"bob\", realm=\"biloxi.com\",\r\n"
		" nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", "
		"uri=\"sip:bob@biloxi.com\", qop=auth, nc=00000001, "
		"cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", "
		"opaque=\"5ccc069c403ebaf9f0171e9517f40e41\",algorithm=MD5,"
		"unknown=\"x, y\"")), 0);
	assert_true(eq(au.scheme, "Digest"));
	assert_true(eq(au.username, "bob"));
	assert_true(eq(au.realm, "biloxi.com"));
	assert_true(eq(au.nonce, "dcd98b7102dd2f0e8b11d0f600bfb0c093"));
	assert_true(eq(au.uri, "sip:bob@biloxi.com"));
	assert_true(eq(au.qop, "auth"));
	assert_true(eq(au.nc, "00000001"));
	assert_true(eq(au.cnonce, "0a4f113b"));
	assert_true(eq(au.response, "6629fae49393a05397450978507c4ef1"));
	assert_true(eq(au.opaque, "5ccc069c403ebaf9f0171e9517f40e41"));
	assert_true(eq(au.algorithm, "MD5"));

	assert_int_equal(sip_auth_parse(&au, PL("Digest username=\"\"")), 0);
	assert_true(pl_isset(au.username));
	assert_int_equal(au.username.l, 0);
	assert_false(pl_isset(au.realm));

	assert_int_equal(sip_auth_parse(&au,
		PL("NoOneKnowsThisScheme opaque-data=here")), 0);
	assert_true(eq(au.scheme, "NoOneKnowsThisScheme"));
	assert_false(pl_isset(au.username));

	static const char *bad[] = {
		"", "Digest username=\"bob", "Digest username", "Digest =x",
		"Digest a=b c=d", "Digest a=b,,", "Digest a=", "Dig,est a=b",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (sip_auth_parse(&au, pl_from_str(bad[i])) != EBADMSG)
			fail_msg("accepted credentials \"%s\"", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_request_line, teardown),
		cmocka_unit_test_teardown(test_status_line, teardown),
		cmocka_unit_test_teardown(test_status_codes, teardown),
		cmocka_unit_test_teardown(test_request_line_errors, teardown),
		cmocka_unit_test(test_methods),
		cmocka_unit_test_teardown(test_compact_forms, teardown),
		cmocka_unit_test_teardown(test_long_names, teardown),
		cmocka_unit_test_teardown(test_unknown_headers_not_framing,
					  teardown),
		cmocka_unit_test_teardown(test_first_absent, teardown),
		cmocka_unit_test_teardown(test_header_syntax_errors, teardown),
		cmocka_unit_test_teardown(test_via_list_split, teardown),
		cmocka_unit_test_teardown(test_contact_list_split, teardown),
		cmocka_unit_test_teardown(test_list_errors, teardown),
		cmocka_unit_test_teardown(test_option_tags_split, teardown),
		cmocka_unit_test_teardown(test_folding, teardown),
		cmocka_unit_test_teardown(test_bare_lf, teardown),
		cmocka_unit_test_teardown(test_too_many_headers, teardown),
		cmocka_unit_test_teardown(test_scalars, teardown),
		cmocka_unit_test_teardown(test_duplicates_and_mandatory,
					  teardown),
		cmocka_unit_test_teardown(test_call_id_date_ok, teardown),
		cmocka_unit_test_teardown(test_from_to, teardown),
		cmocka_unit_test_teardown(test_real_world, teardown),
		cmocka_unit_test_teardown(test_content_length_udp, teardown),
		cmocka_unit_test_teardown(test_content_length_stream, teardown),
		cmocka_unit_test_teardown(test_stream_back_to_back, teardown),
		cmocka_unit_test_teardown(test_keepalives, teardown),
		cmocka_unit_test_teardown(test_body_binary, teardown),
		cmocka_unit_test(test_uri_parse),
		cmocka_unit_test(test_uri_equal),
		cmocka_unit_test(test_param_get),
		cmocka_unit_test(test_via_parse),
		cmocka_unit_test(test_addr_parse),
		cmocka_unit_test(test_auth_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
