/*
 * test_conf.c - the config file: defaults, a full valid file, every kind of
 * finding with its line, suggestions, cross-key checks, and the queries
 * (intranet addresses and domains, route lookup).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "log/log.h"

static struct conf conf;
static struct conf_errors errs;

/* Print findings when a test fails, so the message shows what we got. */
static void dump(void)
{
	conf_errors_print(&errs, "test.conf", stderr);
}

static int load(const char *text)
{
	return conf_load_string(&conf, "test.conf", text, &errs);
}

/* Is there a finding on this line (kind, text containing needle)? */
static bool found(int line, bool warning, const char *needle)
{
	for (unsigned i = 0; i < errs.n; i++) {
		const struct conf_error *e = &errs.items[i];

		if (e->line == line && e->warning == warning &&
		    strstr(e->text, needle))
			return true;
	}
	dump();
	return false;
}

static void expect_error(const char *text, int line, const char *needle)
{
	assert_int_equal(load(text), EINVAL);
	assert_true(found(line, false, needle));
}

static void expect_warning(const char *text, int line, const char *needle)
{
	int rc = load(text);

	if (rc != 0)
		dump();
	assert_int_equal(rc, 0);
	assert_true(found(line, true, needle));
}

static void expect_clean(const char *text)
{
	int rc = load(text);

	if (rc != 0 || errs.n)
		dump();
	assert_int_equal(rc, 0);
	assert_int_equal(errs.n, 0);
}

/* ---------------------------------------------------------------------- */

static void test_defaults(void **state)
{
	expect_clean("");
	assert_string_equal(conf.path, "test.conf");
	assert_string_equal(conf.domain, "localhost");
	assert_string_equal(conf.listen, "0.0.0.0");
	assert_int_equal(conf.port, 5060);
	assert_true(conf.udp);
	assert_true(conf.tcp);
	assert_false(conf.tls);
	assert_true(conf.nat_enabled);
	assert_false(conf.behind_nat);
	assert_string_equal(conf.public_ip, "");
	assert_int_equal(conf.stun_refresh, 60);
	assert_int_equal(conf.nsubnets, 1);
	assert_int_equal(conf.subnets[0].family, AF_INET);
	assert_int_equal(conf.subnets[0].addr[0], 10);
	assert_int_equal(conf.subnets[0].prefix, 8);
	assert_int_equal(conf.subnets_line, 0);
	assert_int_equal(conf.ndomains, 0);
	assert_int_equal(conf.keepalive_interval, 15);
	assert_true(conf.relay);
	assert_int_equal(conf.rtp_port_min, 30000);
	assert_int_equal(conf.rtp_port_max, 31000);
	assert_int_equal(conf.idle_timeout, 60);
	assert_int_equal(conf.min_expires, 60);
	assert_int_equal(conf.max_expires, 3600);
	assert_int_equal(conf.default_expires, 3600);
	assert_true(conf.auth_required);
	assert_int_equal(conf.nonce_lifetime, 300);
	assert_string_equal(conf.store_path, "var/pinhole.db");
	assert_string_equal(conf.admin_http, "127.0.0.1:8080");
	assert_int_equal(conf.log_level, LOG_INFO);
	assert_int_equal(conf.nroutes, 0);

	/* conf_defaults alone gives the same. */
	struct conf d;
	conf_defaults(&d);
	assert_int_equal(d.port, 5060);
	assert_string_equal(d.domain, "localhost");
}

static const char full[] =
	"; a complete file\n"
	"[sip]\n"
	"domain = Example.com\n"
	"listen = 192.0.2.10\n"
	"port = 5070\n"
	"transports = UDP , tcp\n"
	"\n"
	"[nat]\n"
	"enabled = on\n"
	"behind_nat = true             ; with a static WAN address\n"
	"public_ip = 203.0.113.7\n"
	"stun_server = stun.example.net:3478\n"
	"stun_refresh = 120\n"
	"intranet_subnets = 192.168.0.0/16, 10.0.0.0/8, fd00::/8\n"
	"intranet_domains = lan.example.com, *.corp.example.com\n"
	"keepalive_interval = 15\n"
	"\n"
	"[media]\n"
	"relay = 1\n"
	"relay_address = 192.0.2.11\n"
	"rtp_port_min = 20000\n"
	"rtp_port_max = 29999\n"
	"idle_timeout = 90\n"
	"\n"
	"[registrar]\n"
	"min_expires = 30\n"
	"max_expires = 7200\n"
	"default_expires = 600\n"
	"\n"
	"[auth]\n"
	"required = yes\n"
	"nonce_lifetime = 600\n"
	"\n"
	"[store]\n"
	"path = /var/lib/pinhole/pinhole.db\n"
	"redis = redis://10.0.0.5:6379\n"
	"node_id = node-1\n"
	"\n"
	"[routes]\n"
	"9 = sip:10.0.0.50:5060\n"
	"+33 = sip:gw.example.com;transport=tcp\n"
	"*31# = sips:[2001:db8::1]:5061\n"
	"\n"
	"[admin]\n"
	"http = [::1]:8081\n"
	"\n"
	"[log]\n"
	"level = debug   # shell-style comment\n";

static void test_full_file(void **state)
{
	expect_clean(full);
	assert_string_equal(conf.domain, "Example.com");
	assert_string_equal(conf.listen, "192.0.2.10");
	assert_int_equal(conf.port, 5070);
	assert_true(conf.udp && conf.tcp && !conf.tls);
	assert_true(conf.behind_nat);
	assert_string_equal(conf.public_ip, "203.0.113.7");
	assert_string_equal(conf.stun_server, "stun.example.net:3478");
	assert_int_equal(conf.stun_refresh, 120);
	assert_int_equal(conf.nsubnets, 3);
	assert_int_equal(conf.subnets_line, 14);
	assert_int_equal(conf.subnets[2].family, AF_INET6);
	assert_int_equal(conf.subnets[2].prefix, 8);
	assert_int_equal(conf.ndomains, 2);
	assert_string_equal(conf.domains[1], "*.corp.example.com");
	assert_int_equal(conf.keepalive_interval, 15);
	assert_string_equal(conf.relay_address, "192.0.2.11");
	assert_int_equal(conf.rtp_port_min, 20000);
	assert_int_equal(conf.rtp_port_max, 29999);
	assert_int_equal(conf.idle_timeout, 90);
	assert_int_equal(conf.min_expires, 30);
	assert_int_equal(conf.max_expires, 7200);
	assert_int_equal(conf.default_expires, 600);
	assert_int_equal(conf.nonce_lifetime, 600);
	assert_string_equal(conf.store_path, "/var/lib/pinhole/pinhole.db");
	assert_string_equal(conf.redis, "redis://10.0.0.5:6379");
	assert_string_equal(conf.node_id, "node-1");
	assert_int_equal(conf.nroutes, 3);
	assert_string_equal(conf.routes[0].prefix, "9");
	assert_string_equal(conf.routes[0].uri, "sip:10.0.0.50:5060");
	assert_int_equal(conf.routes[0].line, 40);
	assert_string_equal(conf.routes[2].prefix, "*31#");
	assert_string_equal(conf.admin_http, "[::1]:8081");
	assert_int_equal(conf.log_level, LOG_DEBUG);
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/test_conf_XXXXXX";
	int fd = mkstemp(path);
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("[sip]\nport = 5080\n\n[log]\nlevel = loud\n", f);
	fclose(f);
	assert_int_equal(conf_load(&conf, path, &errs), EINVAL);
	assert_string_equal(conf.path, path);
	assert_int_equal(conf.port, 5080);
	assert_true(found(5, false, "expected error, warning, notice, info "
			  "or debug"));
	unlink(path);

	assert_int_equal(conf_load(&conf, path, &errs), ENOENT);
	assert_int_equal(errs.nerrors, 1);
	assert_true(found(0, false, "cannot open"));
	assert_true(found(0, false, "-c FILE"));
}

static void test_print(void **state)
{
	char buf[1024] = "";
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	load("[sip]\nport = x\n[nat]\nbehind_nat = no\npublic_ip = 1.2.3.4\n");
	conf_errors_print(&errs, "my.conf", f);
	fclose(f);
	assert_non_null(strstr(buf, "my.conf:2: error: port = 'x' is not a "
			       "number: expected 1-65535\n"));
	assert_non_null(strstr(buf, "my.conf:5: warning: public_ip is set "
			       "but behind_nat = no"));

	memset(&errs, 0, sizeof(errs));
	conf_errors_add(&errs, 0, true, "hello %d", 42);
	f = fmemopen(buf, sizeof(buf), "w");
	conf_errors_print(&errs, "my.conf", f);
	fclose(f);
	assert_string_equal(buf, "my.conf: warning: hello 42\n");
	assert_int_equal(errs.nerrors, 0);
}

/* ---------------------------------------------------------------------- */
/* Syntax */

static void test_syntax(void **state)
{
	expect_error("[sip]\nport 5060\n", 2, "expected 'key = value'");
	expect_error("[sip]\n\n[nat\nenabled = yes\n", 3,
		     "section header '[nat' is malformed");
	expect_error("[sip] extra\n", 1, "malformed");
	expect_error("domain = x.com\n", 1,
		     "'domain' is outside any section: put it under [sip]");
	expect_error("[routes]\n = sip:1.2.3.4\n", 2,
		     "a key name is missing before '='");
	expect_error("[sip]\ndomain: example.com\n", 2,
		     "expected 'key = value'");
}

static void test_long_line(void **state)
{
	char text[600];

	strcpy(text, "[sip]\n\ndomain = ");
	memset(text + strlen(text), 'a', 300);
	strcpy(text + 16 + 300, "\nport = 5061\n");
	expect_error(text, 3, "line is too long (309 characters, at most "
		     "197");
	/* Not split into a second bogus line, and the next line is read. */
	assert_int_equal(errs.nerrors, 1);
	assert_int_equal(conf.port, 5061);

	/* A long comment does not count. */
	strcpy(text, "[sip]\nport = 5062 ; ");
	memset(text + strlen(text), 'c', 300);
	strcpy(text + 20 + 300, "\n");
	expect_clean(text);
	assert_int_equal(conf.port, 5062);
}

static void test_comments_and_blanks(void **state)
{
	/* An indented key is a key, not a continuation of the previous
	 * value (inih's multi-line mode would glue it on). */
	expect_clean("\xef\xbb\xbf[sip]\r\n"
		     "  domain = example.org\r\n"
		     "\tport = 5090   ; the port\r\n"
		     "# a comment\n"
		     "; another\n"
		     "[ nat ]\n"
		     "stun_server = stun.example.org ;x\n"
		     "behind_nat = yes\n");
	assert_string_equal(conf.domain, "example.org");
	assert_int_equal(conf.port, 5090);
	assert_true(conf.behind_nat);
	/* "a;b" has no blank before ';': not a comment; here it is then
	 * a bad host name. */
	expect_error("[nat]\nstun_server = stun;x\n", 2, "stun_server");
}

static void test_unknown(void **state)
{
	expect_error("[sip]\ndomian = x.com\n", 2,
		     "unknown key 'domian' in [sip]; did you mean 'domain'? "
		     "known keys: domain, listen, port, transports");
	expect_error("[sip]\nfrobnicate = 1\n", 2,
		     "unknown key 'frobnicate' in [sip]; known keys: domain, "
		     "listen, port, transports");
	expect_error("[nat]\nkeepalive = 10\n", 2,
		     "unknown key 'keepalive' in [nat]; known keys:");
	expect_error("[sip]\nPort = 5060\n", 2, "did you mean 'port'?");
	expect_error("[sip]\npublic_ip = 1.2.3.4\n", 2,
		     "'public_ip' belongs in [nat], not [sip]");
	expect_error("[sip]\n[mdia]\nrelay = yes\n", 2,
		     "unknown section [mdia]; did you mean [media]? known "
		     "sections: [sip], [nat]");
	/* Keys of an unknown section are not reported one by one. */
	assert_int_equal(errs.nerrors, 1);
	expect_error("[zzzzzzzz]\n", 1, "unknown section [zzzzzzzz]; known");
}

static void test_duplicate(void **state)
{
	expect_error("[sip]\nport = 5060\n\nport = 5061\n", 4,
		     "port is already set at line 2: remove one of them");
	expect_error("[routes]\n9 = sip:a.example.com\n9 = sip:b.example.com\n",
		     3, "route prefix '9' is already defined at line 2");
	/* The same section twice is fine. */
	expect_clean("[sip]\nport = 5060\n[nat]\n[sip]\ndomain = a.b\n");
}

/* ---------------------------------------------------------------------- */
/* Values */

static void test_bool(void **state)
{
	static const char *const yes[] = { "yes", "YES", "true", "on", "1" };
	static const char *const no[] = { "no", "False", "off", "0" };
	char text[64];

	for (unsigned i = 0; i < 5; i++) {
		snprintf(text, sizeof(text), "[media]\nrelay = %s\n", yes[i]);
		conf.relay = false;
		expect_clean(text);
		assert_true(conf.relay);
	}
	for (unsigned i = 0; i < 4; i++) {
		snprintf(text, sizeof(text), "[media]\nrelay = %s\n", no[i]);
		expect_clean(text);
		assert_false(conf.relay);
	}
	expect_error("[media]\n\nrelay = maybe\n", 3,
		     "relay = 'maybe' is not a yes/no value: expected yes or "
		     "no");
	expect_error("[auth]\nrequired =\n", 2, "is not a yes/no value");
}

static void test_numbers(void **state)
{
	expect_error("[sip]\nport = 0\n", 2,
		     "port = 0 is out of range: expected 1-65535");
	expect_error("[sip]\nport = 65536\n", 2, "out of range");
	expect_error("[sip]\nport = 50a\n", 2, "port = '50a' is not a number");
	expect_error("[sip]\nport = -1\n", 2, "is not a number");
	expect_error("[sip]\nport = 99999999999999999999999\n", 2,
		     "out of range");
	expect_error("[nat]\nstun_refresh = 1\n", 2,
		     "stun_refresh = 1 is out of range: expected 5-86400 "
		     "(seconds)");
	expect_error("[media]\nrtp_port_min = 80\n", 2,
		     "expected 1024-65535");
	expect_clean("[nat]\nkeepalive_interval = 0\n");
	assert_int_equal(conf.keepalive_interval, 0);
}

static void test_addresses(void **state)
{
	expect_error("[sip]\nlisten = myhost\n", 2,
		     "listen = 'myhost' is not an IP address");
	expect_clean("[sip]\nlisten = ::\n");
	expect_error("[nat]\nbehind_nat = yes\npublic_ip = 203.0.113.300\n", 3,
		     "public_ip = '203.0.113.300' is not an IP address");
	expect_clean("[media]\nrelay_address =\n");
	expect_error("[media]\nrelay_address = eth0\n", 2, "not an IP");
	expect_error("[sip]\ndomain =\n", 2, "domain is empty");
	expect_error("[sip]\ndomain = bad_domain!\n", 2,
		     "is not a domain name or IP address");

	expect_clean("[nat]\nbehind_nat = yes\nstun_server = 198.51.100.1\n");
	expect_clean("[nat]\nbehind_nat = yes\nstun_server = [2001:db8::1]:3478\n");
	expect_error("[nat]\nstun_server = stun.example.com:0\n", 2,
		     "the port must be a number 1-65535");
	expect_error("[nat]\nstun_server = 300.1.1.1\n", 2,
		     "not a valid IPv4 address");
	expect_error("[nat]\nstun_server = -bad-.com\n", 2, "not a valid host");

	expect_error("[admin]\nhttp = localhost:8080\n", 2,
		     "the host must be an IP address");
	expect_error("[admin]\nhttp = 127.0.0.1\n", 2, "the port is missing");
	expect_error("[admin]\nhttp = 127.0.0.1:0\n", 2, "1-65535");
	expect_error("[admin]\nhttp = [::1:8080\n", 2, "'[' without ']'");
	expect_clean("[admin]\nhttp =\n");
	assert_string_equal(conf.admin_http, "");
	expect_warning("[admin]\nhttp = 0.0.0.0:8080\n", 2,
		       "the admin API has no password");

	expect_error("[store]\npath =\n", 2, "path is empty");
	expect_error("[store]\nredis = 10.0.0.1:6379\nnode_id = a\n", 2,
		     "must start with redis://");
	expect_error("[store]\nredis = redis://:6379\nnode_id = a\n", 2,
		     "the host is missing");
	expect_error("[store]\nnode_id = node 1\n", 2, "node_id = 'node 1'");
}

static void test_transports(void **state)
{
	expect_clean("[sip]\ntransports = tcp\n");
	assert_false(conf.udp);
	assert_true(conf.tcp);
	expect_error("[sip]\ntransports =\n", 2, "transports is empty");
	expect_error("[sip]\ntransports = udp, sctp\n", 2,
		     "unknown transport 'sctp'");
	expect_error("[sip]\ntransports = udp,,tcp\n", 2, "an empty item");
	expect_error("[sip]\ntransports = udp, ws\n", 2,
		     "transport 'ws' is not implemented yet");
	expect_warning("[sip]\ntransports = udp, tls\n", 2,
		       "tls is not implemented yet");
	assert_true(conf.tls);
	expect_error("[sip]\ntransports = tls\n", 2,
		     "transports = tls leaves no working transport");
}

static void test_log_level(void **state)
{
	static const char *const names[] = {
		"error", "warning", "notice", "info", "debug",
	};
	char text[64];

	for (int i = 0; i < 5; i++) {
		snprintf(text, sizeof(text), "[log]\nlevel = %s\n", names[i]);
		expect_clean(text);
		assert_int_equal(conf.log_level, i);
	}
	expect_error("[log]\nlevel = verbose\n", 2,
		     "level = 'verbose' is not a log level");
}

/* ---------------------------------------------------------------------- */
/* Subnets and domains */

static struct sockaddr_storage sa(const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	return ss;
}

static bool local(const char *ip)
{
	struct sockaddr_storage ss = sa(ip);

	return conf_is_intranet_addr(&conf, &ss);
}

static void test_cidr_parse(void **state)
{
	expect_warning("[nat]\nintranet_subnets = 10.1.2.3/8\n", 2,
		       "'10.1.2.3/8' has host bits set, using 10.0.0.0/8");
	assert_int_equal(conf.nsubnets, 1);
	assert_int_equal(conf.subnets[0].addr[1], 0);
	expect_warning("[nat]\nintranet_subnets = fd00::1/8\n", 2,
		       "host bits set, using fd00::/8");
	expect_error("[nat]\nintranet_subnets = 10.0.0.0\n", 2,
		     "'10.0.0.0' has no prefix length: write ADDRESS/BITS "
		     "such as 10.0.0.0/24 (or /32");
	expect_error("[nat]\nintranet_subnets = 10.0.0.0/33\n", 2,
		     "the prefix length must be a number 0-32");
	expect_error("[nat]\nintranet_subnets = fd00::/129\n", 2, "0-128");
	expect_error("[nat]\nintranet_subnets = 10.0.0.0/\n", 2,
		     "prefix length");
	expect_error("[nat]\nintranet_subnets = lan/24\n", 2,
		     "'lan/24' is not a subnet");
	expect_warning("[nat]\nintranet_subnets = 0.0.0.0/0\n", 2,
		       "covers every address");
	expect_warning("[nat]\nintranet_subnets =\n", 2,
		       "intranet_subnets is empty");
	assert_int_equal(conf.nsubnets, 0);
	assert_false(local("10.0.0.1"));

	char text[2048] = "[nat]\nintranet_subnets = ";
	for (int i = 0; i < 40; i++)
		sprintf(text + strlen(text), "%s10.%d.0.0/16", i ? "," : "", i);
	/* too long for one line: the line limit speaks first */
	expect_error(text, 2, "line is too long");
}

static void test_cidr_match(void **state)
{
	expect_clean("[nat]\nintranet_subnets = 192.168.1.0/24, 172.16.0.0/12, "
		     "fd00::/8, 2001:db8:1::/48, 100.64.0.1/32\n");
	assert_true(local("192.168.1.1"));
	assert_true(local("192.168.1.255"));
	assert_false(local("192.168.2.1"));
	assert_true(local("172.31.255.255"));
	assert_false(local("172.32.0.0"));
	assert_true(local("100.64.0.1"));
	assert_false(local("100.64.0.2"));
	assert_true(local("fd12:3456::1"));
	assert_false(local("fe80::1"));
	assert_true(local("2001:db8:1:ffff::1"));
	assert_false(local("2001:db8:2::1"));
	/* IPv4-mapped IPv6 (a dual-stack socket) matches IPv4 subnets. */
	assert_true(local("::ffff:192.168.1.7"));
	assert_false(local("::ffff:8.8.8.8"));
	assert_false(local("8.8.8.8"));

	/* A subnet written in mapped form matches plain IPv4 too. */
	expect_clean("[nat]\nintranet_subnets = ::ffff:10.0.0.0/104\n");
	assert_true(local("10.9.9.9"));
	assert_true(local("::ffff:10.9.9.9"));
	assert_false(local("11.0.0.1"));

	/* Odd prefix lengths. */
	expect_clean("[nat]\nintranet_subnets = 10.0.0.128/25\n");
	assert_true(local("10.0.0.200"));
	assert_false(local("10.0.0.127"));

	struct sockaddr_storage unix_addr;
	memset(&unix_addr, 0, sizeof(unix_addr));
	unix_addr.ss_family = AF_UNIX;
	assert_false(conf_is_intranet_addr(&conf, &unix_addr));
}

static void test_domains(void **state)
{
	expect_clean("[nat]\nintranet_domains = Example.COM, *.corp.test, "
		     "lan.\n");
	assert_int_equal(conf.ndomains, 3);
	assert_string_equal(conf.domains[0], "example.com");
	assert_string_equal(conf.domains[2], "lan");
	assert_true(conf_is_intranet_domain(&conf, "example.com"));
	assert_true(conf_is_intranet_domain(&conf, "EXAMPLE.com."));
	assert_true(conf_is_intranet_domain(&conf, "a.b.example.com"));
	assert_false(conf_is_intranet_domain(&conf, "badexample.com"));
	assert_false(conf_is_intranet_domain(&conf, "example.com.evil"));
	assert_false(conf_is_intranet_domain(&conf, "corp.test"));
	assert_true(conf_is_intranet_domain(&conf, "pbx.corp.test"));
	assert_false(conf_is_intranet_domain(&conf, "xcorp.test"));
	assert_true(conf_is_intranet_domain(&conf, "phone.lan"));
	assert_false(conf_is_intranet_domain(&conf, ""));
	assert_false(conf_is_intranet_domain(&conf, "."));

	expect_error("[nat]\nintranet_domains = .example.com\n", 2,
		     "write *.example.com for the subdomains only");
	expect_error("[nat]\nintranet_domains = a.*.com\n", 2,
		     "is not a domain name");
	expect_error("[nat]\nintranet_domains = exa mple.com\n", 2,
		     "is not a domain name");
}

/* ---------------------------------------------------------------------- */
/* Routes */

static void test_routes(void **state)
{
	const struct conf_route *r;

	expect_clean("[routes]\n"
		     "9 = sip:10.0.0.50:5060\n"
		     "90 = sip:gw90.example.com\n"
		     "900 = sip:gw900.example.com;transport=tcp;lr\n"
		     "+1 = sips:[2001:db8::5]\n"
		     "abc = sip:host.example.com\n");
	assert_int_equal(conf.nroutes, 5);

	r = conf_route_lookup(&conf, "9123", 4);
	assert_non_null(r);
	assert_string_equal(r->prefix, "9");
	assert_int_equal(r->line, 2);
	r = conf_route_lookup(&conf, "9012", 4);
	assert_string_equal(r->prefix, "90");
	r = conf_route_lookup(&conf, "9001", 4);
	assert_string_equal(r->uri, "sip:gw900.example.com;transport=tcp;lr");
	/* Only user_len bytes count: "900" with length 2 is "90". */
	r = conf_route_lookup(&conf, "900", 2);
	assert_string_equal(r->prefix, "90");
	r = conf_route_lookup(&conf, "900", 3);
	assert_string_equal(r->prefix, "900");
	assert_null(conf_route_lookup(&conf, "123", 3));
	assert_null(conf_route_lookup(&conf, "", 0));
	assert_string_equal(conf_route_lookup(&conf, "+14155550100", 12)->uri,
			    "sips:[2001:db8::5]");
	assert_string_equal(conf_route_lookup(&conf, "abcd", 4)->prefix, "abc");
	assert_null(conf_route_lookup(&conf, "ABCD", 4));	/* exact */

	expect_clean("");
	assert_null(conf_route_lookup(&conf, "9", 1));
}

static void test_route_errors(void **state)
{
	expect_error("[routes]\n9 = http://x\n", 2,
		     "route 9 = 'http://x': it must start with sip: or sips:");
	expect_error("[routes]\n9 = sip:gw@10.0.0.1\n", 2, "no user@ part");
	expect_error("[routes]\n9 = sip:10.0.0.1:99999\n", 2,
		     "the port must be a number 1-65535");
	expect_error("[routes]\n9 = sip:10.0.0.1;transport=carrier-pigeon\n",
		     2, ";transport= must be udp, tcp or tls");
	expect_error("[routes]\n9 = sip:10.0.0.1;;lr\n", 2, "an empty ;param");
	expect_error("[routes]\n9 = sip:10.0.0.1?x=y\n", 2, "URI headers");
	expect_error("[routes]\n9 = sip:\n", 2, "the address is empty");
	expect_error("[routes]\n9 =\n", 2, "route 9 has no target");
	expect_error("[routes]\n9-1 = sip:10.0.0.1\n", 2,
		     "route prefix '9-1' has '-'");
	expect_error("[routes]\n12345678901234567890123456789012 = sip:a.b\n",
		     2, "is too long");

	char text[8192] = "[routes]\n";
	for (int i = 0; i < 65; i++)
		sprintf(text + strlen(text), "%d = sip:10.0.0.1\n", 100 + i);
	expect_error(text, 66, "too many routes (at most 64)");
}

/* ---------------------------------------------------------------------- */
/* Across keys */

static void test_behind_nat(void **state)
{
	expect_error("[nat]\n\nbehind_nat = yes\n", 3,
		     "behind_nat = yes but neither public_ip nor stun_server "
		     "is set: remote phones cannot reach this server; set one "
		     "of them");
	expect_clean("[nat]\nbehind_nat = yes\npublic_ip = 198.51.100.20\n");
	expect_clean("[nat]\nbehind_nat = yes\nstun_server = stun.l.google.com:19302\n");
	expect_warning("[nat]\nbehind_nat = yes\npublic_ip = 192.168.1.1\n", 3,
		       "public_ip = 192.168.1.1 is not a public address");
	expect_warning("[nat]\nbehind_nat = yes\npublic_ip = fd00::1\n", 3,
		       "is not a public address");
	expect_warning("[nat]\nenabled = no\nbehind_nat = yes\n"
		       "public_ip = 198.51.100.20\n", 3, "has no effect");
	expect_warning("[nat]\npublic_ip = 198.51.100.20\n", 2,
		       "public_ip is set but behind_nat = no");
	expect_warning("[nat]\nkeepalive_interval = 300\n", 2,
		       "most NATs forget");
}

static void test_rtp_range(void **state)
{
	expect_error("[media]\nrtp_port_min = 40000\nrtp_port_max = 30000\n",
		     3, "rtp_port_min (40000) is above rtp_port_max (30000)");
	expect_error("[media]\nrtp_port_min = 40000\n", 2,
		     "is above rtp_port_max (31000)");
	expect_warning("[media]\nrtp_port_min = 30001\n", 2,
		       "rtp_port_min = 30001 is odd");
	expect_warning("[media]\nrtp_port_min = 30000\nrtp_port_max = 30009\n",
		       2, "holds only 10 ports");
	/* No relay, no media ports needed. */
	expect_clean("[media]\nrelay = no\nrtp_port_min = 30001\n"
		     "rtp_port_max = 30009\n");
	expect_error("[sip]\nport = 30500\n", 2,
		     "the SIP port 30500 is inside the RTP range 30000-31000");
}

static void test_expires(void **state)
{
	expect_error("[registrar]\nmin_expires = 600\nmax_expires = 300\n", 3,
		     "min_expires (600) is above max_expires (300)");
	expect_error("[registrar]\ndefault_expires = 30\n", 2,
		     "default_expires (30) must lie between min_expires (60) "
		     "and max_expires (3600)");
	expect_clean("[registrar]\nmin_expires = 10\ndefault_expires = 30\n");
}

static void test_other_cross(void **state)
{
	expect_warning("[auth]\nrequired = no\n", 2,
		       "anyone who can reach this server");
	expect_error("[store]\nredis = redis://127.0.0.1\n", 2,
		     "node_id is empty");
	expect_error("[sip]\nport = 8080\n", 0,
		     "uses the SIP TCP port 8080");
	expect_clean("[sip]\nport = 8080\ntransports = udp\n");
}

static void test_many_errors(void **state)
{
	char text[8192] = "[sip]\n";

	for (int i = 0; i < 100; i++)
		strcat(text, "bad line\n");
	assert_int_equal(load(text), EINVAL);
	assert_int_equal(errs.nerrors, 100);
	assert_int_equal(errs.n, 64);
	assert_true(errs.items[63].warning);
	assert_non_null(strstr(errs.items[63].text, "too many findings"));
	assert_int_equal(errs.items[62].line, 64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_print),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_comments_and_blanks),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_duplicate),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_transports),
		cmocka_unit_test(test_log_level),
		cmocka_unit_test(test_cidr_parse),
		cmocka_unit_test(test_cidr_match),
		cmocka_unit_test(test_domains),
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_route_errors),
		cmocka_unit_test(test_behind_nat),
		cmocka_unit_test(test_rtp_range),
		cmocka_unit_test(test_expires),
		cmocka_unit_test(test_other_cross),
		cmocka_unit_test(test_many_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
