/*
 * test_relay.c - the media relay over loopback: even port pairs, two-way
 * forwarding with counters (1 and 2 workers), latching (NAT port change,
 * strays, re-latch after silence, first source in the window, signalling
 * beating a window latch, re-INVITE keeping or dropping a latch), RTCP on
 * port + 1, rtcp-mux streams, exhaustion, ports coming back after free,
 * and destroy with live streams. All traffic stays on 127.0.0.1 (one test
 * also uses 127.0.0.2, which Linux routes to loopback too).
 *
 * Waits are poll() with generous deadlines; nothing asserts on timing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log/log.h"
#include "relay/relay.h"

#define DEADLINE_MS 5000
#define PORT_MIN 41000
#define PORT_MAX 41099

static struct relay *make_relay(unsigned workers, uint16_t min, uint16_t max,
				unsigned window_ms, unsigned silence_ms)
{
	struct relay_config cfg = { 0 };
	struct sockaddr_in *in = (struct sockaddr_in *)&cfg.bind;
	struct relay *relay = NULL;

	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cfg.port_min = min;
	cfg.port_max = max;
	cfg.workers = workers;
	cfg.latch_window_ms = window_ms;
	cfg.relatch_silence_ms = silence_ms;
	assert_int_equal(relay_create(&relay, &cfg), 0);
	return relay;
}

static struct sockaddr_storage ip_port(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;

	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
	return ss;
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/* A "phone" socket on ip:port (0 = any port). */
static int phone_on(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss = ip_port(ip, port);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	int size = 1 << 20;

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (bind(fd, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int phone(void)
{
	int fd = phone_on("127.0.0.1", 0);

	assert_true(fd >= 0);
	return fd;
}

/* Two sockets on consecutive ports P (even or odd) and P + 1. */
static void phone_pair(int *rtp, int *rtcp)
{
	for (int i = 0; i < 50; i++) {
		int fd = phone();
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);

		getsockname(fd, (struct sockaddr *)&ss, &len);
		if (port_of(&ss) < 65535) {
			*rtcp = phone_on("127.0.0.1", port_of(&ss) + 1);
			if (*rtcp >= 0) {
				*rtp = fd;
				return;
			}
		}
		close(fd);
	}
	fail_msg("no consecutive free ports");
}

static struct sockaddr_storage local_addr(int fd)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len = sizeof(ss);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	return ss;
}

static uint16_t local_port(int fd)
{
	struct sockaddr_storage ss = local_addr(fd);

	return port_of(&ss);
}

static void send_to(int fd, uint16_t port, const char *payload)
{
	struct sockaddr_storage to = ip_port("127.0.0.1", port);

	assert_int_equal(sendto(fd, payload, strlen(payload), 0,
				(struct sockaddr *)&to,
				sizeof(struct sockaddr_in)),
			 (ssize_t)strlen(payload));
}

/* One datagram within DEADLINE_MS: its length, or -1 on timeout. */
static int recv_from(int fd, char *buf, size_t cap,
		     struct sockaddr_storage *from)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	socklen_t len = sizeof(*from);
	ssize_t n;

	if (poll(&pfd, 1, DEADLINE_MS) != 1)
		return -1;
	n = recvfrom(fd, buf, cap - 1, 0, (struct sockaddr *)from, &len);
	if (n >= 0)
		buf[n] = '\0';
	return (int)n;
}

/* Nothing waiting on fd right now. */
static bool idle(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 0;
}

/* Receive `count` datagrams, each from 127.0.0.1:from_port. */
static void expect_packets(int fd, int count, uint16_t from_port,
			   size_t len)
{
	for (int i = 0; i < count; i++) {
		char buf[2048];
		struct sockaddr_storage from;
		int n = recv_from(fd, buf, sizeof(buf), &from);

		assert_int_equal(n, (int)len);
		assert_int_equal(port_of(&from), from_port);
	}
}

static void info(struct relay *relay, uint32_t id,
		 struct relay_stream_info *si)
{
	assert_int_equal(relay_stream_info(relay, id, si), 0);
}

/* Counters are published after the send: wait until they settle. */
typedef bool (*info_pred)(const struct relay_stream_info *si,
			  uint64_t arg);

static void wait_info(struct relay *relay, uint32_t id, info_pred pred,
		      uint64_t arg, struct relay_stream_info *si)
{
	for (int waited = 0; waited < DEADLINE_MS; waited += 5) {
		info(relay, id, si);
		if (pred(si, arg))
			return;
		poll(NULL, 0, 5);
	}
	fail_msg("relay stream state never reached the expected value");
}

static bool a_rtp_dropped(const struct relay_stream_info *si, uint64_t n)
{
	return si->side[RELAY_A].rtp.dropped == n;
}

static bool a_rtp_packets(const struct relay_stream_info *si, uint64_t n)
{
	return si->side[RELAY_A].rtp.packets == n;
}

static bool both_rtp_packets(const struct relay_stream_info *si, uint64_t n)
{
	return si->side[RELAY_A].rtp.packets == n &&
	       si->side[RELAY_B].rtp.packets == n;
}

static bool b_rtp_dropped(const struct relay_stream_info *si, uint64_t n)
{
	return si->side[RELAY_B].rtp.dropped == n;
}

static bool both_rtcp_packets(const struct relay_stream_info *si, uint64_t n)
{
	return si->side[RELAY_A].rtcp.packets == n &&
	       si->side[RELAY_B].rtcp.packets == n;
}

static bool a_unlatched(const struct relay_stream_info *si, uint64_t unused)
{
	return !si->side[RELAY_A].latched;
}

static int setup(void **state)
{
	log_set_level(LOG_WARNING);
	return 0;
}

static void test_alloc_even_ports(void **state)
{
	struct relay *relay = make_relay(1, PORT_MIN, PORT_MAX, 0, 0);
	struct relay_stream_info si;
	struct relay_stats st;
	uint32_t id, id2;
	uint16_t a, b, a2, b2;

	relay_get_stats(relay, &st);
	assert_int_equal(st.ports_total, 100);
	assert_int_equal(relay_stream_alloc(relay, true, &id, &a, &b), 0);
	assert_int_equal(a % 2, 0);
	assert_int_equal(b % 2, 0);
	assert_int_not_equal(a, b);
	assert_true(a >= PORT_MIN && a + 1 <= PORT_MAX);
	assert_true(b >= PORT_MIN && b + 1 <= PORT_MAX);
	assert_true(b != a + 1 && a != b + 1);
	assert_int_equal(relay_stream_alloc(relay, true, &id2, &a2, &b2), 0);
	assert_int_not_equal(id, id2);
	assert_true(a2 != a && a2 != b && b2 != a && b2 != b);
	info(relay, id, &si);
	assert_int_equal(si.id, id);
	assert_true(si.rtcp);
	assert_int_equal(si.side[RELAY_A].port, a);
	assert_int_equal(si.side[RELAY_B].port, b);
	assert_false(si.side[RELAY_A].latched);
	assert_int_equal(si.side[RELAY_A].expected.ss_family, AF_UNSPEC);
	relay_get_stats(relay, &st);
	assert_int_equal(st.streams, 2);
	assert_true(st.ports_free <= 100 - 8);
	assert_int_equal(relay_stream_info(relay, id + 12345, &si), ENOENT);
	relay_destroy(relay);
}

static void forward_both_ways(unsigned workers)
{
	struct relay *relay = make_relay(workers, PORT_MIN, PORT_MAX, 0, 0);
	struct relay_stream_info si;
	struct relay_stats st;
	int pa = phone(), pb = phone();
	struct sockaddr_storage aa = local_addr(pa), ab = local_addr(pb);
	const char *payload = "0123456789abcdef0123456789abcdef";
	uint32_t id, other;
	uint16_t a, b, oa, ob;

	/* A second stream so that with 2 workers both are busy. */
	assert_int_equal(relay_stream_alloc(relay, true, &other, &oa, &ob), 0);
	assert_int_equal(relay_stream_alloc(relay, true, &id, &a, &b), 0);
	assert_int_equal(relay_stream_set_peer(relay, id, RELAY_A, &aa, 0), 0);
	assert_int_equal(relay_stream_set_peer(relay, id, RELAY_B, &ab, 0), 0);
	for (int i = 0; i < 100; i++)
		send_to(pa, a, payload);
	expect_packets(pb, 100, b, strlen(payload));
	for (int i = 0; i < 100; i++)
		send_to(pb, b, payload);
	expect_packets(pa, 100, a, strlen(payload));

	wait_info(relay, id, both_rtp_packets, 100, &si);
	for (int side = 0; side < 2; side++) {
		assert_int_equal(si.side[side].rtp.bytes,
				 100 * strlen(payload));
		assert_int_equal(si.side[side].rtp.dropped, 0);
		assert_true(si.side[side].rtp.last_seen_ms > 0);
		assert_int_equal(si.side[side].rtcp.packets, 0);
		assert_true(si.side[side].latched);
		assert_int_equal(si.side[side].relatches, 0);
	}
	assert_int_equal(port_of(&si.side[RELAY_A].latched_addr),
			 port_of(&aa));
	assert_int_equal(port_of(&si.side[RELAY_B].latched_addr),
			 port_of(&ab));
	assert_int_equal(port_of(&si.side[RELAY_A].expected), port_of(&aa));
	relay_get_stats(relay, &st);
	assert_int_equal(st.packets, 200);
	assert_int_equal(st.bytes, 200 * strlen(payload));
	assert_int_equal(st.streams, 2);
	close(pa);
	close(pb);
	relay_destroy(relay);
}

static void test_forward_1_worker(void **state)
{
	forward_both_ways(1);
}

static void test_forward_2_workers(void **state)
{
	forward_both_ways(2);
}

/* SDP says 127.0.0.1:X, the NAT sends from 127.0.0.1:Y: latch Y. */
static void test_nat_port_latch(void **state)
{
	struct relay *relay = make_relay(1, PORT_MIN, PORT_MAX, 0, 0);
	struct relay_stream_info si;
	int sdp_a = phone(), nat_a = phone(), pb = phone();
	struct sockaddr_storage xa = local_addr(sdp_a), ab = local_addr(pb);
	uint32_t id;
	uint16_t a, b;

	assert_int_equal(relay_stream_alloc(relay, false, &id, &a, &b), 0);
	assert_int_equal(relay_stream_set_peer(relay, id, RELAY_A, &xa, 0), 0);
	assert_int_equal(relay_stream_set_peer(relay, id, RELAY_B, &ab, 0), 0);
	/* Before A latches, B's media goes where A's SDP said. */
	send_to(pb, b, "early");
	expect_packets(sdp_a, 1, a, 5);
	/* A's packets come from another port: they latch it. */
	send_to(nat_a, a, "hello");
	expect_packets(pb, 1, b, 5);
	send_to(pb, b, "reply");
	expect_packets(nat_a, 1, a, 5);
	assert_true(idle(sdp_a));
	info(relay, id, &si);
	assert_true(si.side[RELAY_A].latched);
	assert_int_equal(port_of(&si.side[RELAY_A].latched_addr),
			 local_port(nat_a));
	assert_int_equal(port_of(&si.side[RELAY_A].expected), port_of(&xa));

	/* re-INVITE with the same IP: the latch stays. */
	assert_int_equal(relay_stream_set_peer(relay, id, RELAY_A, &xa, 0), 0);
	send_to(pb, b, "again");
	expect_packets(nat_a, 1, a, 5);
	info(relay, id, &si);
	assert_true(si.side[RELAY_A].latched);

	/* re-INVITE moving A to another IP: latch dropped, media goes
	 * to the new address until A's new source latches. */
	{
		int moved = phone_on("127.0.0.2", 0);
		struct sockaddr_storage ma;

		if (moved < 0) {
			close(sdp_a);
			close(nat_a);
			close(pb);
			relay_destroy(relay);
			skip();
		}
		ma = local_addr(moved);
		assert_int_equal(relay_stream_set_peer(relay, id, RELAY_A, &ma,
						       0), 0);
		wait_info(relay, id, a_unlatched, 0, &si);
		send_to(pb, b, "moved");
		expect_packets(moved, 1, a, 5);
		assert_true(idle(nat_a));
		close(moved);
	}
	close(sdp_a);
	close(nat_a);
	close(pb);
	relay_destroy(relay);
}

/* Latched: another source is dropped and counted, not forwarded. */
static void test_stray_dropped(void **state)
{
	struct relay *relay = make_relay(2, PORT_MIN, PORT_MAX, 0, 600000);
	struct relay_stream_info si;
	int pa = phone(), pb = phone(), stray = phone();
	struct sockaddr_storage aa = local_addr(pa), ab = local_addr(pb);
	char buf[64];
	struct sockaddr_storage from;
	uint32_t id;
	uint16_t a, b;

	assert_int_equal(relay_stream_alloc(relay, true, &id, &a, &b), 0);
	assert_int_equal(relay_stream_set_peer(relay, id, RELAY_A, &aa, 0), 0);
	assert_int_equal(relay_stream_set_peer(relay, id, RELAY_B, &ab, 0), 0);
	send_to(pa, a, "latch");
	expect_packets(pb, 1, b, 5);
	for (int i = 0; i < 10; i++)
		send_to(stray, a, "stray");
	/* Queued behind the strays on the same relay socket. */
	send_to(pa, a, "marker");
	assert_int_equal(recv_from(pb, buf, sizeof(buf), &from), 6);
	assert_string_equal(buf, "marker");
	wait_info(relay, id, a_rtp_dropped, 10, &si);
	wait_info(relay, id, a_rtp_packets, 2, &si);
	assert_int_equal(si.side[RELAY_A].rtp.dropped, 10);
	assert_int_equal(si.side[RELAY_A].relatches, 0);
	assert_int_equal(port_of(&si.side[RELAY_A].latched_addr),
			 port_of(&aa));
	/* B's media still goes to A, not to the stray. */
	send_to(pb, b, "reply");
	expect_packets(pa, 1, a, 5);
	assert_true(idle(stray));
	close(pa);
	close(pb);
	close(stray);
	relay_destroy(relay);
}

/* The latched source falls silent: a new one takes over. */
static void test_relatch_after_silence(void **state)
{
	struct relay *relay = make_relay(1, PORT_MIN, PORT_MAX, 0, 100);
	struct relay_stream_info si;
	int pa = phone(), pb = phone(), roamed = phone();
	struct sockaddr_storage aa = local_addr(pa), ab = local_addr(pb);
	bool through = false;
	uint32_t id;
	uint16_t a, b;

	assert_int_equal(relay_stream_alloc(relay, true, &id, &a, &b), 0);
	assert_int_equal(relay_stream_set_peer(relay, id, RELAY_A, &aa, 0), 0);
	assert_int_equal(relay_stream_set_peer(relay, id, RELAY_B, &ab, 0), 0);
	send_to(pa, a, "latch");
	expect_packets(pb, 1, b, 5);
	/* The new source retries until the silence rule lets it in. */
	for (int i = 0; i < 100 && !through; i++) {
		struct pollfd pfd = { .fd = pb, .events = POLLIN };

		send_to(roamed, a, "roamed");
		if (poll(&pfd, 1, 50) == 1) {
			expect_packets(pb, 1, b, 6);
			through = true;
		}
	}
	assert_true(through);
	info(relay, id, &si);
	assert_int_equal(si.side[RELAY_A].relatches, 1);
	assert_int_equal(port_of(&si.side[RELAY_A].latched_addr),
			 local_port(roamed));
	send_to(pb, b, "reply");
	expect_packets(roamed, 1, a, 5);
	close(pa);
	close(pb);
	close(roamed);
	relay_destroy(relay);
}

/* No expected address: the first source within the window latches;
 * after the window a source that matches nothing is a stray. */
static void test_window_first_source(void **state)
{
	struct relay *relay = make_relay(1, PORT_MIN, PORT_MAX, 600000, 0);
	struct relay *late = make_relay(1, PORT_MIN + 50, PORT_MAX, 1, 0);
	struct relay_stream_info si;
	int pa = phone(), pb = phone();
	struct sockaddr_storage ab = local_addr(pb);
	uint32_t id;
	uint16_t a, b;

	assert_int_equal(relay_stream_alloc(relay, false, &id, &a, &b), 0);
	assert_int_equal(relay_stream_set_peer(relay, id, RELAY_B, &ab, 0), 0);
	/* B's media has nowhere to go yet: dropped, counted on B. */
	send_to(pb, b, "early");
	wait_info(relay, id, b_rtp_dropped, 1, &si);
	send_to(pa, a, "first");
	expect_packets(pb, 1, b, 5);
	send_to(pb, b, "reply");
	expect_packets(pa, 1, a, 5);
	wait_info(relay, id, both_rtp_packets, 1, &si);
	assert_true(si.side[RELAY_A].latched);
	assert_int_equal(port_of(&si.side[RELAY_A].latched_addr),
			 local_port(pa));
	assert_int_equal(si.side[RELAY_B].rtp.dropped, 1);

	/* Window of 1 ms, long gone: the source is a stray. */
	assert_int_equal(relay_stream_alloc(late, false, &id, &a, &b), 0);
	assert_int_equal(relay_stream_set_peer(late, id, RELAY_B, &ab, 0), 0);
	poll(NULL, 0, 20);
	send_to(pa, a, "late");
	wait_info(late, id, a_rtp_dropped, 1, &si);
	assert_false(si.side[RELAY_A].latched);
	assert_true(idle(pb));
	close(pa);
	close(pb);
	relay_destroy(late);
	relay_destroy(relay);
}

/* A latch by the window yields to a source with the signalled IP. */
static void test_expected_ip_beats_window_latch(void **state)
{
	struct relay *relay = make_relay(1, PORT_MIN, PORT_MAX, 600000,
					 600000);
	struct relay_stream_info si;
	int early = phone(), real = phone_on("127.0.0.2", 0), pb = phone();
	struct sockaddr_storage ra, ab = local_addr(pb);
	uint32_t id;
	uint16_t a, b;

	if (real < 0) {
		close(early);
		close(pb);
		relay_destroy(relay);
		skip();
	}
	ra = local_addr(real);
	assert_int_equal(relay_stream_alloc(relay, false, &id, &a, &b), 0);
	assert_int_equal(relay_stream_set_peer(relay, id, RELAY_A, &ra, 0), 0);
	assert_int_equal(relay_stream_set_peer(relay, id, RELAY_B, &ab, 0), 0);
	send_to(early, a, "early");
	expect_packets(pb, 1, b, 5);
	info(relay, id, &si);
	assert_int_equal(port_of(&si.side[RELAY_A].latched_addr),
			 local_port(early));
	send_to(real, a, "real");
	expect_packets(pb, 1, b, 4);
	info(relay, id, &si);
	assert_int_equal(si.side[RELAY_A].relatches, 1);
	assert_int_equal(port_of(&si.side[RELAY_A].latched_addr),
			 port_of(&ra));
	/* Now strong: the early source is a stray again. */
	send_to(early, a, "early");
	send_to(real, a, "marker");
	expect_packets(pb, 1, b, 6);
	wait_info(relay, id, a_rtp_dropped, 1, &si);
	close(early);
	close(real);
	close(pb);
	relay_destroy(relay);
}

static void test_rtcp_port_plus_one(void **state)
{
	struct relay *relay = make_relay(2, PORT_MIN, PORT_MAX, 0, 0);
	struct relay_stream_info si;
	int a_rtp, a_rtcp, b_rtp, b_rtcp;
	struct sockaddr_storage aa, ab;
	uint32_t id;
	uint16_t a, b;

	phone_pair(&a_rtp, &a_rtcp);
	phone_pair(&b_rtp, &b_rtcp);
	aa = local_addr(a_rtp);
	ab = local_addr(b_rtp);
	assert_int_equal(relay_stream_alloc(relay, true, &id, &a, &b), 0);
	assert_int_equal(relay_stream_set_peer(relay, id, RELAY_A, &aa, 0), 0);
	/* B gives its RTCP port explicitly (a=rtcp). */
	assert_int_equal(relay_stream_set_peer(relay, id, RELAY_B, &ab,
					       port_of(&ab) + 1), 0);
	send_to(a_rtcp, a + 1, "rtcp-from-a");
	expect_packets(b_rtcp, 1, b + 1, 11);
	send_to(b_rtcp, b + 1, "rtcp-from-b");
	expect_packets(a_rtcp, 1, a + 1, 11);
	assert_true(idle(a_rtp) && idle(b_rtp));
	wait_info(relay, id, both_rtcp_packets, 1, &si);
	assert_int_equal(si.side[RELAY_A].rtp.packets, 0);
	assert_int_equal(port_of(&si.side[RELAY_A].latched_rtcp),
			 port_of(&aa) + 1);
	/* RTP did not latch from RTCP. */
	assert_false(si.side[RELAY_A].latched);
	close(a_rtp);
	close(a_rtcp);
	close(b_rtp);
	close(b_rtcp);
	relay_destroy(relay);
}

static void test_no_rtcp_two_ports(void **state)
{
	struct relay *relay = make_relay(1, PORT_MIN, PORT_MAX, 0, 0);
	struct relay_stream_info si;
	struct relay_stats before, after;
	uint32_t id;
	uint16_t a, b;

	relay_get_stats(relay, &before);
	assert_int_equal(relay_stream_alloc(relay, false, &id, &a, &b), 0);
	relay_get_stats(relay, &after);
	assert_int_equal(before.ports_free - after.ports_free, 2);
	assert_int_equal(a % 2, 0);
	assert_int_equal(b % 2, 0);
	info(relay, id, &si);
	assert_false(si.rtcp);
	relay_destroy(relay);
}

static void test_exhaustion(void **state)
{
	/* 16 ports: 4 streams with RTCP (fewer if others hold some). */
	struct relay *relay = make_relay(2, 41100, 41115, 0, 0);
	struct relay_stats st;
	uint32_t ids[8], id;
	uint16_t a[8], b[8], x, y;
	int n = 0, err = 0;
	int pa = phone(), pb = phone();
	struct sockaddr_storage aa = local_addr(pa), ab = local_addr(pb);

	while (n < 8 && (err = relay_stream_alloc(relay, true, &ids[n],
						  &a[n], &b[n])) == 0)
		n++;
	assert_int_equal(err, ENOSPC);
	assert_true(n >= 1 && n <= 4);
	if (n == 4)	/* all 16 taken: not even a 2-port stream fits */
		assert_int_equal(relay_stream_alloc(relay, false, &id, &x, &y),
				 ENOSPC);
	relay_get_stats(relay, &st);
	assert_true(st.alloc_failures >= 1);
	assert_int_equal(st.streams, (unsigned)n);
	/* The streams that exist still forward. */
	assert_int_equal(relay_stream_set_peer(relay, ids[0], RELAY_A, &aa, 0),
			 0);
	assert_int_equal(relay_stream_set_peer(relay, ids[0], RELAY_B, &ab, 0),
			 0);
	send_to(pa, a[0], "still");
	expect_packets(pb, 1, b[0], 5);
	close(pa);
	close(pb);
	relay_destroy(relay);
}

static void test_free_returns_ports(void **state)
{
	/* 8 ports: 2 streams with RTCP. */
	struct relay *relay = make_relay(1, 41120, 41127, 0, 0);
	struct relay_stream_info si;
	struct sockaddr_storage any = ip_port("127.0.0.1", 4000);
	uint32_t id1, id2, id3 = 0;
	uint16_t a, b;
	int err = ENOSPC;

	assert_int_equal(relay_stream_alloc(relay, true, &id1, &a, &b), 0);
	if (relay_stream_alloc(relay, true, &id2, &a, &b) != 0) {
		relay_destroy(relay);
		skip();		/* someone else holds ports of this range */
	}
	assert_int_equal(relay_stream_alloc(relay, true, &id3, &a, &b),
			 ENOSPC);
	assert_int_equal(relay_stream_free(relay, id1), 0);
	assert_int_equal(relay_stream_free(relay, id1), ENOENT);
	assert_int_equal(relay_stream_info(relay, id1, &si), ENOENT);
	assert_int_equal(relay_stream_set_peer(relay, id1, RELAY_A, &any, 0),
			 ENOENT);
	/* The worker closes the sockets, then the ports come back. */
	for (int waited = 0; waited < DEADLINE_MS && err == ENOSPC;
	     waited += 5) {
		err = relay_stream_alloc(relay, true, &id3, &a, &b);
		if (err == ENOSPC)
			poll(NULL, 0, 5);
	}
	assert_int_equal(err, 0);
	assert_int_not_equal(id3, id1);
	assert_int_not_equal(id3, id2);
	info(relay, id2, &si);
	assert_int_equal(relay_stream_free(relay, id2), 0);
	assert_int_equal(relay_stream_free(relay, id3), 0);
	relay_destroy(relay);
}

static void test_destroy_with_live_streams(void **state)
{
	struct relay *relay = make_relay(2, PORT_MIN, PORT_MAX, 0, 0);
	int pa = phone(), pb = phone();
	struct sockaddr_storage aa = local_addr(pa), ab = local_addr(pb);
	uint32_t id;
	uint16_t a, b;

	for (int i = 0; i < 6; i++) {
		assert_int_equal(relay_stream_alloc(relay, i % 2, &id, &a, &b),
				 0);
		assert_int_equal(relay_stream_set_peer(relay, id, RELAY_A, &aa,
						       0), 0);
		assert_int_equal(relay_stream_set_peer(relay, id, RELAY_B, &ab,
						       0), 0);
		send_to(pa, a, "live");
	}
	/* One freed just before destroy: its FREE is still queued. */
	assert_int_equal(relay_stream_free(relay, id), 0);
	relay_destroy(relay);
	close(pa);
	close(pb);
}

static void test_bad_arguments(void **state)
{
	struct relay_config cfg = { 0 };
	struct relay *relay = NULL;

	assert_int_equal(relay_create(&relay, &cfg), EINVAL);
	cfg.workers = 1;
	assert_int_equal(relay_create(&relay, &cfg), EAFNOSUPPORT);
	cfg.bind.ss_family = AF_INET;
	cfg.port_min = 5000;
	cfg.port_max = 4000;
	assert_int_equal(relay_create(&relay, &cfg), EINVAL);
	relay = make_relay(1, PORT_MIN, PORT_MAX, 0, 0);
	{
		struct sockaddr_storage sa = ip_port("127.0.0.1", 4000);
		uint32_t id;

		assert_int_equal(relay_stream_alloc(relay, true, &id, NULL,
						    NULL), 0);
		assert_int_equal(relay_stream_set_peer(relay, id, 2, &sa, 0),
				 EINVAL);
	}
	relay_destroy(relay);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_even_ports),
		cmocka_unit_test(test_forward_1_worker),
		cmocka_unit_test(test_forward_2_workers),
		cmocka_unit_test(test_nat_port_latch),
		cmocka_unit_test(test_stray_dropped),
		cmocka_unit_test(test_relatch_after_silence),
		cmocka_unit_test(test_window_first_source),
		cmocka_unit_test(test_expected_ip_beats_window_latch),
		cmocka_unit_test(test_rtcp_port_plus_one),
		cmocka_unit_test(test_no_rtcp_two_ports),
		cmocka_unit_test(test_exhaustion),
		cmocka_unit_test(test_free_returns_ports),
		cmocka_unit_test(test_destroy_with_live_streams),
		cmocka_unit_test(test_bad_arguments),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
