/*
 * test_sdp.c - SDP parsing for the relay: addresses, ports, rtcp,
 * rtcp-mux, direction/hold, ICE lines, multipart/mixed bodies.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sdp/sdp.h"

static const char offer[] =
	"v=0\r\n"
	"o=alice 2890844526 2890844526 IN IP4 192.168.1.20\r\n"
	"s=-\r\n"
	"c=IN IP4 192.168.1.20\r\n"
	"t=0 0\r\n"
	"a=ice-ufrag:abcd\r\n"
	"m=audio 49170 RTP/AVP 0 8\r\n"
	"a=rtcp:49171 IN IP4 192.168.1.20\r\n"
	"a=candidate:1 1 UDP 2130706431 192.168.1.20 49170 typ host\r\n"
	"a=sendrecv\r\n"
	"m=video 51372 RTP/AVP 31\r\n"
	"c=IN IP4 192.168.1.21\r\n"
	"a=rtcp-mux\r\n"
	"a=sendonly\r\n"
	"m=video 0 RTP/AVP 31\r\n";

static void test_parse_offer(void **state)
{
	struct sdp sdp;
	(void)state;

	assert_int_equal(sdp_parse(&sdp, (struct pl){ offer, sizeof(offer) - 1 }), 0);
	assert_int_equal(sdp.nmedia, 3);
	assert_true(pl_eq_str(sdp.origin_addr, "192.168.1.20"));
	assert_true(pl_eq_str(sdp.conn_addr, "192.168.1.20"));
	assert_true(pl_eq_str(sdp.media[0].media, "audio"));
	assert_int_equal(sdp.media[0].port, 49170);
	assert_true(pl_eq_str(sdp.media[0].port_str, "49170"));
	assert_int_equal(sdp.media[0].rtcp_port, 49171);
	assert_true(pl_eq_str(sdp.media[0].rtcp_addr, "192.168.1.20"));
	assert_true(pl_eq_str(sdp_media_addr(&sdp, 0), "192.168.1.20"));
	assert_false(sdp_media_on_hold(&sdp, 0));
	assert_true(pl_eq_str(sdp_media_addr(&sdp, 1), "192.168.1.21"));
	assert_true(sdp.media[1].rtcp_mux);
	assert_int_equal(sdp_media_dir(&sdp, 1), SDP_SENDONLY);
	assert_true(sdp_media_on_hold(&sdp, 1));
	assert_int_equal(sdp.media[2].port, 0);
	assert_int_equal(sdp.ndrop, 2);	/* ice-ufrag + candidate */
	assert_true(sdp.drop[0].l > 0 && sdp.drop[0].p[sdp.drop[0].l - 1] == '\n');
}

static void test_hold_2543(void **state)
{
	static const char s[] = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 0.0.0.0\n"
				"t=0 0\nm=audio 4000 RTP/AVP 0\n";
	struct sdp sdp;
	(void)state;

	assert_int_equal(sdp_parse(&sdp, (struct pl){ s, sizeof(s) - 1 }), 0);
	assert_true(sdp_media_on_hold(&sdp, 0));
}

static void test_not_sdp(void **state)
{
	struct sdp sdp;
	(void)state;

	assert_int_equal(sdp_parse(&sdp, PL("hello world")), EBADMSG);
	assert_int_equal(sdp_parse(&sdp, PL("v=0\r\nm=audio x RTP/AVP 0\r\n")),
			 EBADMSG);
}

static void test_too_many_media(void **state)
{
	char buf[2048];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "v=0\r\n");
	struct sdp sdp;
	(void)state;

	for (int i = 0; i < SDP_MAX_MEDIA + 1; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n,
				      "m=audio %d RTP/AVP 0\r\n", 4000 + 2 * i);
	assert_int_equal(sdp_parse(&sdp, (struct pl){ buf, n }), EBADMSG);
}

static int parse_msg(struct sip_msg *msg, const char *s)
{
	return sip_msg_parse(msg, s, strlen(s), false);
}

static void test_find_plain_and_multipart(void **state)
{
	static char plain[1024], multi[2048];
	static struct sip_msg msg;
	struct pl body;
	const char *sdp_text = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n"
			       "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
	const char *hdr = "INVITE sip:b@example.com SIP/2.0\r\n"
			  "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
			  "From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n"
			  "Call-ID: x\r\nCSeq: 1 INVITE\r\n";
	char part[1024];
	int n;
	(void)state;

	snprintf(plain, sizeof(plain), "%sContent-Type: application/sdp\r\n"
		 "Content-Length: %zu\r\n\r\n%s", hdr, strlen(sdp_text), sdp_text);
	assert_int_equal(parse_msg(&msg, plain), 0);
	assert_int_equal(sdp_find(&msg, &body), 0);
	assert_int_equal(body.l, strlen(sdp_text));

	n = snprintf(part, sizeof(part),
		     "--XyZ\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
		     "--XyZ\r\nContent-Type: application/sdp\r\n\r\n%s\r\n"
		     "--XyZ--\r\n", sdp_text);
	snprintf(multi, sizeof(multi), "%sContent-Type: multipart/mixed;boundary=XyZ\r\n"
		 "Content-Length: %d\r\n\r\n%s", hdr, n, part);
	assert_int_equal(parse_msg(&msg, multi), 0);
	assert_int_equal(sdp_find(&msg, &body), 0);
	assert_int_equal(body.l, strlen(sdp_text));
	assert_memory_equal(body.p, sdp_text, body.l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_offer),
		cmocka_unit_test(test_hold_2543),
		cmocka_unit_test(test_not_sdp),
		cmocka_unit_test(test_too_many_media),
		cmocka_unit_test(test_find_plain_and_multipart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
