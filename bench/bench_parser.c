/*
 * bench_parser.c - micro-benchmark of the SIP message parser: a realistic
 * ~1 KB INVITE with SDP and a REGISTER with digest credentials, parsed N
 * times each (datagram mode), then the INVITE in stream mode and with the
 * accessors a proxy calls on every request. Prints ns per message (the
 * best of ROUNDS rounds, so a busy machine disturbs it less, and the mean);
 * asserts nothing. Usage: bench_parser [iterations]  (default 2,000,000)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sip/msg.h"

static const char invite[] =
	"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
	"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9a1c;rport\r\n"
	"Max-Forwards: 70\r\n"
	"From: \"Alice Liddell\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
	"To: Bob <sip:bob@biloxi.example.com>\r\n"
	"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
	"CSeq: 31862 INVITE\r\n"
	"Contact: <sip:alice@192.0.2.10:5060;transport=udp>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>\"\r\n"
	"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY, UPDATE, PRACK\r\n"
	"Supported: replaces, timer, 100rel\r\n"
	"User-Agent: Pinhole-Bench/1.0 (Linux)\r\n"
	"Session-Expires: 1800;refresher=uac\r\n"
	"Min-SE: 90\r\n"
	"P-Preferred-Identity: <sip:alice@atlanta.example.com>\r\n"
	"Content-Type: application/sdp\r\n"
	"Content-Length: 330\r\n"
	"\r\n"
	"v=0\r\n"
	"o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
	"s=-\r\n"
	"c=IN IP4 192.0.2.10\r\n"
	"t=0 0\r\n"
	"m=audio 49170 RTP/AVP 0 8 9 18 101\r\n"
	"a=rtpmap:0 PCMU/8000\r\n"
	"a=rtpmap:8 PCMA/8000\r\n"
	"a=rtpmap:9 G722/8000\r\n"
	"a=rtpmap:18 G729/8000\r\n"
	"a=fmtp:18 annexb=no\r\n"
	"a=rtpmap:101 telephone-event/8000\r\n"
	"a=fmtp:101 0-16\r\n"
	"a=ptime:20\r\n"
	"a=sendrecv\r\n"
	"a=rtcp:49171 IN IP4 192.0.2.10\r\n";

static const char reg[] =
	"REGISTER sip:atlanta.example.com SIP/2.0\r\n"
	"Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bKnashds7;rport\r\n"
	"Max-Forwards: 70\r\n"
	"From: Alice <sip:alice@atlanta.example.com>;tag=a73kszlfl\r\n"
	"To: Alice <sip:alice@atlanta.example.com>\r\n"
	"Call-ID: 1j9FpLxk3uxtm8tn@192.168.1.20\r\n"
	"CSeq: 2 REGISTER\r\n"
	"Contact: <sip:alice@192.168.1.20:5060;transport=udp>;expires=3600\r\n"
	"Authorization: Digest username=\"alice\", realm=\"atlanta.example.com\", "
	"nonce=\"ea9c8e88df84f1cec4341ae6cbe5a359\", "
	"uri=\"sip:atlanta.example.com\", "
	"response=\"dfe56131d1958046689d83306477ecc\", algorithm=MD5, "
	"qop=auth, nc=00000001, cnonce=\"0a4f113b\"\r\n"
	"Expires: 3600\r\n"
	"User-Agent: Pinhole-Bench/1.0\r\n"
	"Content-Length: 0\r\n"
	"\r\n";

#define ROUNDS 10

static struct sip_msg msg;
static volatile size_t sink;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int parse_loop(const char *buf, size_t len, long iters, bool stream,
		      bool accessors)
{
	int bad = 0;

	for (long i = 0; i < iters; i++) {
		if (sip_msg_parse(&msg, buf, len, stream))
			bad++;
		if (accessors) {
			struct sip_addr a;
			struct sip_auth au;
			const struct sip_hdr *h;

			h = sip_hdr_get(&msg, SIP_HDR_CONTACT);
			if (h && !sip_addr_parse(&a, h->value))
				sink += a.uri.host.l;
			h = sip_hdr_get(&msg, SIP_HDR_AUTHORIZATION);
			if (h && !sip_auth_parse(&au, h->value))
				sink += au.response.l;
		}
		sink += msg.nhdrs;
	}
	return bad;
}

static void run(const char *name, const char *text, size_t len, long iters,
		bool stream, bool accessors)
{
	long per = iters / ROUNDS > 0 ? iters / ROUNDS : 1;
	double best = 0, total = 0;
	int bad = 0;
	/* the buffer a socket would fill: exactly len bytes, no NUL */
	char *buf = malloc(len);

	memcpy(buf, text, len);
	for (int r = 0; r < ROUNDS; r++) {
		double t0 = now_ns(), dt;

		bad += parse_loop(buf, len, per, stream, accessors);
		dt = (now_ns() - t0) / (double)per;
		total += dt;
		if (r == 0 || dt < best)
			best = dt;
	}
	printf("%-34s %5zu bytes  best %7.1f ns/msg  mean %7.1f ns/msg%s\n",
	       name, len, best, total / ROUNDS,
	       bad ? "  (PARSE ERRORS!)" : "");
	free(buf);
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 2000000;

	if (iters <= 0)
		iters = 1;
	printf("sip_msg_parse, %ld iterations each\n", iters);
	run("INVITE+SDP (udp)", invite, sizeof(invite) - 1, iters, false,
	    false);
	run("INVITE+SDP (tcp)", invite, sizeof(invite) - 1, iters, true,
	    false);
	run("INVITE+SDP + Contact parse", invite, sizeof(invite) - 1, iters,
	    false, true);
	run("REGISTER (udp)", reg, sizeof(reg) - 1, iters, false, false);
	run("REGISTER + Contact + auth parse", reg, sizeof(reg) - 1, iters,
	    false, true);
	return 0;
}
