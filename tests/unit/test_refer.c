/*
 * test_refer.c - the REFER policy (proxy/refer.c): which Refer-To targets
 * pass, which are refused and with which reason phrase, and that
 * refer_policy = allow turns the check off.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "proxy/refer.h"
#include "sip/msg.h"

static const char conf_text[] =
	"[sip]\ndomain = example.com\n"
	"[nat]\nintranet_subnets = 10.10.0.0/24\n"
	"intranet_domains = *.corp.example\n"
	"[routes]\n9 = sip:198.51.100.7:5060\n";

/* Stands in for the proxy: our domain only. */
static bool is_ours(const struct sip_uri *u)
{
	return pl_caseeq_str(u->host, "example.com");
}

static struct conf conf;
static char buf[2048];
static struct sip_msg msg;

static enum refer_verdict check(const char *refer_to, unsigned *status,
				const char **reason)
{
	int n = snprintf(buf, sizeof(buf),
			 "REFER sip:bob@203.0.113.23:5060 SIP/2.0\r\n"
			 "Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK1\r\n"
			 "From: <sip:alice@example.com>;tag=a\r\n"
			 "To: <sip:bob@example.com>;tag=b\r\n"
			 "Call-ID: refer-test\r\nCSeq: 1 REFER\r\n"
			 "Max-Forwards: 70\r\n%s%s%s"
			 "Content-Length: 0\r\n\r\n",
			 refer_to ? "Refer-To: " : "", refer_to ? refer_to : "",
			 refer_to ? "\r\n" : "");
	assert_int_equal(sip_msg_parse(&msg, buf, (size_t)n, false), 0);
	*status = 0;
	*reason = NULL;
	return refer_check(&msg, &conf, is_ours, status, reason);
}

static int setup(void **state)
{
	struct conf_errors errs;
	(void)state;

	return conf_load_string(&conf, "test", conf_text, &errs);
}

static void test_forwarded(void **state)
{
	static const char *const ok[] = {
		"<sip:carol@example.com>",
		"sip:carol@example.com",
		"<sip:carol@example.com?Replaces=x%40y%3Bto-tag%3D1>",
		"\"Desk\" <sip:desk@10.10.0.21:5060>",
		"<sip:9123@198.51.100.7>",
		"<sip:pbx@voice.corp.example>",
		"<tel:+15551234>",
	};
	unsigned status;
	const char *reason;
	(void)state;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (check(ok[i], &status, &reason) != REFER_FORWARD)
			fail_msg("not forwarded: %s (%s)", ok[i], reason);
	}
}

static void test_refused(void **state)
{
	static const struct {
		const char *refer_to;
		enum refer_verdict v;
		unsigned status;
		const char *reason;
	} bad[] = {
		{ "<sip:x@192.168.1.1>", REFER_PRIVATE, 403,
		  "Refer-To Private Address Outside Intranet" },
		{ "<sip:x@10.20.0.1:5060>", REFER_PRIVATE, 403,
		  "Refer-To Private Address Outside Intranet" },
		{ "<sip:x@evil.example.net>", REFER_FOREIGN, 403,
		  "Refer-To Foreign Domain" },
		{ "<sip:x@203.0.113.99>", REFER_FOREIGN, 403,
		  "Refer-To Foreign Domain" },
		{ "<http://192.168.1.1/>", REFER_SCHEME, 403,
		  "Refer-To Scheme Not Allowed" },
		{ NULL, REFER_BAD, 400, "Missing Refer-To" },
	};
	unsigned status;
	const char *reason;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(check(bad[i].refer_to, &status, &reason),
				 bad[i].v);
		assert_int_equal(status, bad[i].status);
		assert_string_equal(reason, bad[i].reason);
	}
}

static void test_two_refer_to_is_bad(void **state)
{
	unsigned status;
	const char *reason;
	(void)state;

	assert_int_equal(check("<sip:a@example.com>\r\nRefer-To: "
			       "<sip:b@example.com>", &status, &reason),
			 REFER_BAD);
	assert_int_equal(status, 400);
}

static void test_allow_forwards_everything(void **state)
{
	unsigned status;
	const char *reason;
	uint64_t rejected = refer_stats()->rejected;
	(void)state;

	conf.refer_allow = true;
	assert_int_equal(check("<sip:x@192.168.1.1>", &status, &reason),
			 REFER_FORWARD);
	conf.refer_allow = false;
	assert_int_equal(refer_stats()->rejected, rejected);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forwarded),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_two_refer_to_is_bad),
		cmocka_unit_test(test_allow_forwards_everything),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
