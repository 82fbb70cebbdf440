/*
 * bench_relay.c - media relay throughput on loopback: relayed packets per
 * second and per CPU-second of the relay, for 172-byte RTP packets over
 * STREAMS streams, with 1 and 2 worker threads, next to a bare
 * recvmmsg/sendmmsg forwarder written here as the anchor (the same epoll
 * and batching with no latching, no counters, no streams).
 *
 * One sender thread pushes TOTAL packets round-robin to the side-A ports
 * (sendmmsg batches) and stops by itself; one receiver thread on the
 * B side counts. The sender keeps at most WINDOW packets in flight, so the
 * kernel queues do not overflow and the figure is the forwarding rate,
 * not a loss rate. CPU of the relay = process CPU (getrusage) minus the
 * sender, receiver and main threads (each measures RUSAGE_THREAD).
 * Memory per stream counts our structures only; kernel socket buffers
 * (up to 1 MB each, allocated as packets queue) are not counted.
 * No assertions: numbers only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"
#include "relay/internal.h"
#include "relay/relay.h"

#define STREAMS 50
#define TOTAL 2000000
#define PKT_LEN 172
#define WINDOW 8192
#define BATCH 32
#define PORT_MIN 42000
#define PORT_MAX 42999

struct run {
	uint16_t ports[STREAMS];	/* where the sender sends */
	int tx_fd, rx_fd;
	_Atomic uint64_t sent, received;
	_Atomic int stop;
	double cpu_sender, cpu_receiver;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double tv_s(struct timeval tv)
{
	return tv.tv_sec + tv.tv_usec / 1e6;
}

static double cpu_of(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
}

static struct sockaddr_in loopback(uint16_t port)
{
	struct sockaddr_in in = { .sin_family = AF_INET,
				  .sin_port = htons(port) };

	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return in;
}

static int udp_socket(uint16_t port)
{
	struct sockaddr_in in = loopback(port);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	int size = 4 << 20;

	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (bind(fd, (struct sockaddr *)&in, sizeof(in)) < 0) {
		perror("bind");
		exit(1);
	}
	return fd;
}

static uint16_t local_port(int fd)
{
	struct sockaddr_in in;
	socklen_t len = sizeof(in);

	getsockname(fd, (struct sockaddr *)&in, &len);
	return ntohs(in.sin_port);
}

static void *sender(void *arg)
{
	struct run *run = arg;
	static unsigned char pkt[PKT_LEN];
	struct sockaddr_in to[STREAMS];
	struct mmsghdr msg[BATCH];
	struct iovec iov = { pkt, PKT_LEN };
	double cpu0 = cpu_of(RUSAGE_THREAD);
	uint64_t sent = 0;
	unsigned next = 0;

	pkt[0] = 0x80;		/* RTP version 2 */
	pkt[1] = 0;		/* PCMU */
	for (int i = 0; i < STREAMS; i++)
		to[i] = loopback(run->ports[i]);
	memset(msg, 0, sizeof(msg));
	while (sent < TOTAL) {
		unsigned n = BATCH;
		int r;

		if (sent + n > TOTAL)
			n = TOTAL - sent;
		while (sent - atomic_load(&run->received) > WINDOW &&
		       !atomic_load(&run->stop))
			sched_yield();	/* closed loop on the receiver */
		if (atomic_load(&run->stop))
			break;
		for (unsigned i = 0; i < n; i++) {
			msg[i].msg_hdr.msg_iov = &iov;
			msg[i].msg_hdr.msg_iovlen = 1;
			msg[i].msg_hdr.msg_name = &to[next];
			msg[i].msg_hdr.msg_namelen = sizeof(to[next]);
			next = (next + 1) % STREAMS;
		}
		r = sendmmsg(run->tx_fd, msg, n, 0);
		if (r > 0)
			sent += (unsigned)r;
		atomic_store(&run->sent, sent);
	}
	run->cpu_sender = cpu_of(RUSAGE_THREAD) - cpu0;
	return NULL;
}

static void *receiver(void *arg)
{
	struct run *run = arg;
	static unsigned char buf[BATCH][2048];
	struct mmsghdr msg[BATCH];
	struct iovec iov[BATCH];
	double cpu0 = cpu_of(RUSAGE_THREAD);
	uint64_t got = 0;

	memset(msg, 0, sizeof(msg));
	for (int i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){ buf[i], sizeof(buf[i]) };
		msg[i].msg_hdr.msg_iov = &iov[i];
		msg[i].msg_hdr.msg_iovlen = 1;
	}
	while (got < TOTAL) {
		struct pollfd pfd = { .fd = run->rx_fd, .events = POLLIN };
		int r;

		/* 1 s without a packet: the rest was lost, stop. */
		if (poll(&pfd, 1, 1000) != 1)
			break;
		r = recvmmsg(run->rx_fd, msg, BATCH, MSG_DONTWAIT, NULL);
		if (r > 0) {
			got += (unsigned)r;
			atomic_store(&run->received, got);
		}
	}
	atomic_store(&run->stop, 1);
	run->cpu_receiver = cpu_of(RUSAGE_THREAD) - cpu0;
	return NULL;
}

/* The anchor: what a forwarder without any relay logic does. */
struct bare {
	int in_fd[STREAMS], out_fd[STREAMS];
	struct sockaddr_in dst;
	unsigned first, count;		/* streams of this thread */
	int stop_fd;
};

static void *bare_forwarder(void *arg)
{
	struct bare *bare = arg;
	static _Thread_local unsigned char buf[BATCH][2048];
	struct mmsghdr rmsg[BATCH], smsg[BATCH];
	struct iovec riov[BATCH], siov[BATCH];
	struct sockaddr_in src[BATCH];
	struct epoll_event ev, events[64];
	int ep = epoll_create1(0);

	memset(rmsg, 0, sizeof(rmsg));
	memset(smsg, 0, sizeof(smsg));
	for (int i = 0; i < BATCH; i++) {
		riov[i] = (struct iovec){ buf[i], sizeof(buf[i]) };
		rmsg[i].msg_hdr.msg_iov = &riov[i];
		rmsg[i].msg_hdr.msg_iovlen = 1;
		rmsg[i].msg_hdr.msg_name = &src[i];
		smsg[i].msg_hdr.msg_iov = &siov[i];
		smsg[i].msg_hdr.msg_iovlen = 1;
		smsg[i].msg_hdr.msg_name = &bare->dst;
		smsg[i].msg_hdr.msg_namelen = sizeof(bare->dst);
	}
	for (unsigned i = bare->first; i < bare->first + bare->count; i++) {
		ev = (struct epoll_event){ .events = EPOLLIN, .data.u32 = i };
		epoll_ctl(ep, EPOLL_CTL_ADD, bare->in_fd[i], &ev);
	}
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u32 = 9999 };
	epoll_ctl(ep, EPOLL_CTL_ADD, bare->stop_fd, &ev);
	for (;;) {
		int n = epoll_wait(ep, events, 64, -1);

		for (int e = 0; e < n; e++) {
			unsigned s = events[e].data.u32;
			int r;

			if (s == 9999) {
				close(ep);
				return NULL;
			}
			for (int i = 0; i < BATCH; i++)
				rmsg[i].msg_hdr.msg_namelen = sizeof(src[i]);
			r = recvmmsg(bare->in_fd[s], rmsg, BATCH, MSG_DONTWAIT,
				     NULL);
			for (int i = 0; i < r; i++) {
				siov[i].iov_base = buf[i];
				siov[i].iov_len = rmsg[i].msg_len;
			}
			if (r > 0)
				sendmmsg(bare->out_fd[s], smsg, (unsigned)r, 0);
		}
	}
}

struct result {
	double pps, cpu, per_cpu_s;
	uint64_t received;
};

/* Sender + receiver around whatever forwards; CPU of the forwarder. */
static struct result drive(struct run *run)
{
	pthread_t tx, rx;
	double cpu0 = cpu_of(RUSAGE_SELF), main0 = cpu_of(RUSAGE_THREAD);
	double t0 = now_s(), elapsed, cpu;
	struct result res;

	pthread_create(&rx, NULL, receiver, run);
	pthread_create(&tx, NULL, sender, run);
	pthread_join(tx, NULL);
	pthread_join(rx, NULL);
	elapsed = now_s() - t0;
	cpu = cpu_of(RUSAGE_SELF) - cpu0 - run->cpu_sender -
	      run->cpu_receiver - (cpu_of(RUSAGE_THREAD) - main0);
	res.received = atomic_load(&run->received);
	res.pps = res.received / elapsed;
	res.cpu = cpu;
	res.per_cpu_s = cpu > 0 ? res.received / cpu : 0;
	return res;
}

static struct result bench_relay(unsigned workers)
{
	struct relay_config cfg = { 0 };
	struct sockaddr_in *in = (struct sockaddr_in *)&cfg.bind;
	struct relay *relay;
	struct run run = { 0 };
	struct sockaddr_storage a = { 0 }, b = { 0 };
	struct sockaddr_in ta, rb;
	struct result res;
	int err;

	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cfg.port_min = PORT_MIN;
	cfg.port_max = PORT_MAX;
	cfg.workers = workers;
	err = relay_create(&relay, &cfg);
	if (err) {
		fprintf(stderr, "relay_create: %s\n", strerror(err));
		exit(1);
	}
	run.tx_fd = udp_socket(0);
	run.rx_fd = udp_socket(0);
	ta = loopback(local_port(run.tx_fd));
	rb = loopback(local_port(run.rx_fd));
	memcpy(&a, &ta, sizeof(ta));
	memcpy(&b, &rb, sizeof(rb));
	for (int i = 0; i < STREAMS; i++) {
		uint32_t id;
		uint16_t port_b;

		err = relay_stream_alloc(relay, true, &id, &run.ports[i],
					 &port_b);
		if (err) {
			fprintf(stderr, "alloc: %s\n", strerror(err));
			exit(1);
		}
		relay_stream_set_peer(relay, id, RELAY_A, &a, 0);
		relay_stream_set_peer(relay, id, RELAY_B, &b, 0);
	}
	res = drive(&run);
	relay_destroy(relay);
	close(run.tx_fd);
	close(run.rx_fd);
	return res;
}

static struct result bench_bare(unsigned threads)
{
	static struct bare bare[2];
	pthread_t th[2];
	struct run run = { 0 };
	struct result res;
	int stop[2];
	uint64_t one = 1;

	run.tx_fd = udp_socket(0);
	run.rx_fd = udp_socket(0);
	if (pipe(stop) < 0)
		exit(1);
	for (unsigned t = 0; t < threads; t++) {
		memset(&bare[t], 0, sizeof(bare[t]));
		bare[t].dst = loopback(local_port(run.rx_fd));
		bare[t].stop_fd = stop[0];
	}
	for (int i = 0; i < STREAMS; i++) {
		int in_fd = udp_socket(0), out_fd = udp_socket(0);

		run.ports[i] = local_port(in_fd);
		for (unsigned t = 0; t < threads; t++) {
			bare[t].in_fd[i] = in_fd;
			bare[t].out_fd[i] = out_fd;
		}
	}
	for (unsigned t = 0; t < threads; t++) {
		bare[t].first = t * STREAMS / threads;
		bare[t].count = (t + 1) * STREAMS / threads - bare[t].first;
		pthread_create(&th[t], NULL, bare_forwarder, &bare[t]);
	}
	res = drive(&run);
	(void)!write(stop[1], &one, sizeof(one));
	for (unsigned t = 0; t < threads; t++)
		pthread_join(th[t], NULL);
	for (int i = 0; i < STREAMS; i++) {
		close(bare[0].in_fd[i]);
		close(bare[0].out_fd[i]);
	}
	close(stop[0]);
	close(stop[1]);
	close(run.tx_fd);
	close(run.rx_fd);
	return res;
}

static void print(const char *what, unsigned threads, struct result r)
{
	printf("%-14s threads=%u  relayed=%8llu/%u  %9.0f pkt/s  "
	       "forwarder cpu=%5.2f s  %9.0f pkt per CPU-second\n",
	       what, threads, (unsigned long long)r.received, TOTAL, r.pps,
	       r.cpu, r.per_cpu_s);
}

int main(void)
{
	size_t per_stream = sizeof(struct relay_stream) +
			    sizeof(struct relay_stream *) + 2 * sizeof(uint32_t);

	log_set_level(LOG_WARNING);
	printf("bench_relay: %d streams, %d packets of %d bytes, loopback, "
	       "at most %d in flight; %ld CPUs\n", STREAMS, TOTAL, PKT_LEN,
	       WINDOW, sysconf(_SC_NPROCESSORS_ONLN));
	for (unsigned workers = 1; workers <= 2; workers++) {
		print("bare forwarder", workers, bench_bare(workers));
		print("pinhole relay", workers, bench_relay(workers));
	}
	printf("memory per stream (2 sides x RTP+RTCP): %zu bytes "
	       "(struct relay_stream %zu + table slot %zu); a set_peer "
	       "command of %zu bytes lives until the worker applies it. "
	       "Kernel socket memory (4 sockets, buffers up to 1 MB each "
	       "as packets queue) is not counted.\n",
	       per_stream, sizeof(struct relay_stream),
	       per_stream - sizeof(struct relay_stream),
	       sizeof(struct relay_cmd));
	return 0;
}
