/*
 * main.c - the pinhole daemon: command line, start-up order, signals,
 * reload, and the admin API's view of the running modules. Subcommands
 * other than `run` live in cli/.
 *
 * Start-up order follows the data flow: config -> store -> auth secret ->
 * loop -> transport -> transactions -> registrar (restores bindings) ->
 * proxy -> admin. Everything runs on one thread; signals arrive through a
 * signalfd so that handlers never interrupt the loop mid-change.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "alarm/alarm.h"
#include "auth/auth.h"
#include "auth/digest.h"
#include "cli/cli.h"
#include "conf/conf.h"
#include "core/loop.h"
#include "diag/ladder.h"
#include "log/log.h"
#include "nat/nat.h"
#include "proxy/proxy.h"
#include "proxy/refer.h"
#include "registrar/registrar.h"
#include "relay/relay.h"
#include "store/store.h"
#include "transport/transport.h"
#include "txn/txn.h"
#include "util/addr.h"

#define MAX_TXNS 200000

static struct {
	const char *conf_path;
	struct conf *conf;		/* current */
	struct conf *old_conf;		/* previous, freed at next reload */
	struct loop *loop;
	struct transport *tp;
	struct store *store;
	struct admin *admin;
	struct relay *relay;
	int sigfd;
	int64_t started;
} D;

static json_t *src_registrations(void *arg)
{
	(void)arg;
	return reg_to_json();
}

/* Calls: INVITEs being set up (proxy) and relayed media sessions. */
static json_t *src_calls(void *arg)
{
	json_t *calls = proxy_calls_json(), *media = nat_sessions_json();
	size_t i;
	json_t *m;

	(void)arg;
	json_array_foreach(media, i, m) {
		json_object_set_new(m, "id", json_string(json_string_value(
					json_object_get(m, "call_id"))));
		json_object_set(m, "legs", json_object_get(m, "streams"));
		json_object_set_new(m, "state", json_string(
			json_is_true(json_object_get(m, "answered")) ? "relaying"
								     : "early"));
		json_array_append(calls, m);
	}
	json_decref(media);
	return calls;
}

static void alarm_to_json(const struct store_alarm *a, void *arg)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_integer(a->id));
	json_object_set_new(o, "time", json_integer(a->time));
	json_object_set_new(o, "severity", json_string(a->severity));
	json_object_set_new(o, "code", json_string(a->code));
	json_object_set_new(o, "subject", json_string(a->subject));
	json_object_set_new(o, "text", json_string(a->text));
	json_array_append_new(arg, o);
}

static json_t *src_alarms(void *arg)
{
	json_t *arr = json_array();

	(void)arg;
	store_alarm_foreach(D.store, 200, alarm_to_json, arr);
	return arr;
}

static json_t *src_ladders(void *arg)
{
	(void)arg;
	return ladder_list_json();
}

static json_t *src_ladder(const char *call_id, void *arg)
{
	(void)arg;
	return ladder_json(call_id);
}

/* SIP ladders per [admin] ladder_calls; off = no tap on the transport. */
static void ladder_configure(void)
{
	ladder_set_limit(D.conf->ladder_calls);
	tp_set_tap(D.tp, D.conf->ladder_calls ? ladder_tap : NULL, NULL);
}

static json_t *src_status(void *arg)
{
	const struct reg_stats *rs = reg_stats();
	const struct txn_stats *ts = txn_stats();
	json_t *o = json_object();

	(void)arg;
	json_object_set_new(o, "version", json_string("0.1"));
	json_object_set_new(o, "domain", json_string(D.conf->domain));
	json_object_set_new(o, "node", json_string(D.conf->node_id));
	json_object_set_new(o, "sip_port", json_integer(D.conf->port));
	json_object_set_new(o, "uptime", json_integer((int64_t)time(NULL) - D.started));
	json_object_set_new(o, "aors", json_integer(rs->aors));
	json_object_set_new(o, "bindings", json_integer(rs->bindings));
	json_object_set_new(o, "transactions", json_integer(ts->active));
	json_object_set_new(o, "log_level",
			    json_string(log_level_name(log_current_level)));
	json_object_set_new(o, "near_end_nat", nat_public_json());
	json_object_set_new(o, "alarms_raised", json_integer((json_int_t)alarm_count()));
	return o;
}

static void count_verdict(struct reg_binding *b, void *arg)
{
	unsigned *by = arg;

	by[nat_verdict_from_name(b->verdict)]++;
}

static void src_metrics(struct admin_text *out, void *arg)
{
	const struct proxy_stats *ps = proxy_stats();
	const struct reg_stats *rs = reg_stats();
	const struct txn_stats *ts = txn_stats();
	const struct tp_stats *tps = tp_stats(D.tp);
	const struct auth_stats *as = auth_stats();
	static const char *const methods[] = { "OTHER", "INVITE", "ACK", "BYE",
		"CANCEL", "REGISTER", "OPTIONS", "INFO", "PRACK", "UPDATE",
		"SUBSCRIBE", "NOTIFY", "MESSAGE", "REFER", "PUBLISH" };

	(void)arg;
	{
		unsigned by[4] = { 0 };
		static const char *const v[] = { "local", "public", "behind-nat",
						 "nonat-suspect" };
		reg_foreach(count_verdict, by);
		admin_text_printf(out, "# TYPE pinhole_registrations gauge\n");
		for (unsigned i = 0; i < 4; i++)
			admin_text_printf(out, "pinhole_registrations{verdict=\"%s\"} %u\n",
					  v[i], by[i]);
	}
	admin_text_printf(out, "# TYPE pinhole_alarms_raised_total counter\n"
			  "pinhole_alarms_raised_total %llu\n",
			  (unsigned long long)alarm_count());
	admin_text_printf(out, "# TYPE pinhole_aors gauge\npinhole_aors %u\n",
			  rs->aors);
	admin_text_printf(out, "# TYPE pinhole_register_total counter\n"
			  "pinhole_register_total %llu\n",
			  (unsigned long long)rs->registers);
	admin_text_printf(out, "# TYPE pinhole_requests_total counter\n");
	for (unsigned i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		admin_text_printf(out, "pinhole_requests_total{method=\"%s\"} %llu\n",
				  methods[i], (unsigned long long)ps->requests[i]);
	admin_text_printf(out, "# TYPE pinhole_responses_total counter\n");
	for (unsigned c = 1; c <= 6; c++)
		admin_text_printf(out, "pinhole_responses_total{class=\"%uxx\"} %llu\n",
				  c, (unsigned long long)ps->responses_by_class[c]);
	admin_text_printf(out, "# TYPE pinhole_transactions gauge\n"
			  "pinhole_transactions %u\n", ts->active);
	admin_text_printf(out, "# TYPE pinhole_sip_messages_total counter\n"
			  "pinhole_sip_messages_total{dir=\"rx\"} %llu\n"
			  "pinhole_sip_messages_total{dir=\"tx\"} %llu\n"
			  "pinhole_sip_bad_messages_total %llu\n",
			  (unsigned long long)tps->rx_msgs,
			  (unsigned long long)tps->tx_msgs,
			  (unsigned long long)tps->rx_bad);
	admin_text_printf(out, "# TYPE pinhole_tcp_connections gauge\n"
			  "pinhole_tcp_connections %u\n", tps->tcp_open);
	admin_text_printf(out, "# TYPE pinhole_auth_failures_total counter\n"
			  "pinhole_auth_failures_total %lu\n"
			  "pinhole_auth_ok_total %lu\n", as->failed, as->ok);
	{
		struct relay_stats rs2;
		relay_get_stats(D.relay, &rs2);
		admin_text_printf(out, "# TYPE pinhole_relay_streams gauge\n"
				  "pinhole_relay_streams %u\n"
				  "pinhole_relay_sessions %u\n"
				  "pinhole_relay_ports_free %u\n"
				  "pinhole_relay_packets_total %llu\n"
				  "pinhole_relay_bytes_total %llu\n"
				  "pinhole_relay_dropped_total %llu\n"
				  "pinhole_relay_alloc_failures_total %llu\n",
				  rs2.streams, nat_session_count(), rs2.ports_free,
				  (unsigned long long)rs2.packets,
				  (unsigned long long)rs2.bytes,
				  (unsigned long long)rs2.dropped,
				  (unsigned long long)rs2.alloc_failures);
	}
	{
		uint64_t ks, ka, kf;
		nat_keepalive_stats(&ks, &ka, &kf);
		admin_text_printf(out, "# TYPE pinhole_keepalives_total counter\n"
				  "pinhole_keepalives_total{result=\"sent\"} %llu\n"
				  "pinhole_keepalives_total{result=\"answered\"} %llu\n"
				  "pinhole_keepalives_total{result=\"failed\"} %llu\n",
				  (unsigned long long)ks, (unsigned long long)ka,
				  (unsigned long long)kf);
		nat_probe_stats(&ks, &ka, &kf);
		admin_text_printf(out, "# TYPE pinhole_nat_active_checks_total counter\n"
				  "pinhole_nat_active_checks_total{result=\"sent\"} %llu\n"
				  "pinhole_nat_active_checks_total{result=\"answered\"} %llu\n"
				  "pinhole_nat_active_checks_total{result=\"filtered\"} %llu\n",
				  (unsigned long long)ks, (unsigned long long)ka,
				  (unsigned long long)kf);
	}
	{
		const struct refer_stats *rf = refer_stats();
		admin_text_printf(out, "# TYPE pinhole_refer_total counter\n"
				  "pinhole_refer_total{result=\"forwarded\"} %llu\n"
				  "pinhole_refer_total{result=\"rejected\"} %llu\n",
				  (unsigned long long)rf->forwarded,
				  (unsigned long long)rf->rejected);
	}
	admin_text_printf(out, "pinhole_loops_detected_total %llu\n"
			  "pinhole_relay_denied_total %llu\n",
			  (unsigned long long)ps->loops,
			  (unsigned long long)ps->relay_denied);
	{
		const struct ladder_stats *ls = ladder_stats();
		admin_text_printf(out, "# TYPE pinhole_ladders gauge\n"
				  "pinhole_ladders{kind=\"call\"} %u\n"
				  "pinhole_ladders{kind=\"other\"} %u\n"
				  "pinhole_ladder_bytes %zu\n"
				  "pinhole_ladder_messages_total %llu\n"
				  "pinhole_ladder_messages_dropped_total %llu\n"
				  "pinhole_ladders_evicted_total %llu\n",
				  ls->calls, ls->others, ls->bytes,
				  (unsigned long long)ls->recorded,
				  (unsigned long long)ls->dropped,
				  (unsigned long long)ls->evicted);
	}
}

static int src_loglevel(const char *level, void *arg)
{
	enum log_level l;

	(void)arg;
	if (log_level_parse(level, &l))
		return EINVAL;
	log_set_level(l);
	log_notice("main", "log level set to %s", log_level_name(l));
	return 0;
}

static void announce_node(void);

static int do_reload(char *msg, size_t cap)
{
	struct conf *nc = calloc(1, sizeof(*nc));
	struct conf_errors errs;
	const char *restart = "";

	if (!nc)
		return ENOMEM;
	memset(&errs, 0, sizeof(errs));
	if (conf_load(nc, D.conf_path, &errs)) {
		snprintf(msg, cap, "config has %u error(s); nothing changed "
			 "(run `pinhole check`)", errs.nerrors);
		conf_errors_print(&errs, D.conf_path, stderr);
		free(nc);
		return EINVAL;
	}
	if (nc->port != D.conf->port || strcmp(nc->listen, D.conf->listen) ||
	    nc->udp != D.conf->udp || nc->tcp != D.conf->tcp ||
	    strcmp(nc->store_path, D.conf->store_path) ||
	    strcmp(nc->admin_http, D.conf->admin_http))
		restart = "; listen/port/transports/store/admin changes need a restart";
	/* Keep the settings that need a restart as they run now. */
	nc->port = D.conf->port;
	nc->udp = D.conf->udp;
	nc->tcp = D.conf->tcp;
	memcpy(nc->listen, D.conf->listen, sizeof(nc->listen));
	memcpy(nc->store_path, D.conf->store_path, sizeof(nc->store_path));
	memcpy(nc->admin_http, D.conf->admin_http, sizeof(nc->admin_http));
	free(D.old_conf);
	D.old_conf = D.conf;
	D.conf = nc;
	proxy_set_conf(nc);
	reg_set_conf(nc);
	nat_set_conf(nc);
	ladder_configure();
	announce_node();
	log_set_level((enum log_level)nc->log_level);
	snprintf(msg, cap, "reloaded %s%s", D.conf_path, restart);
	log_notice("main", "%s", msg);
	return 0;
}

/* Record this node in the store, and warn when another node sharing it
 * uses an overlapping RTP range or the same SIP address (pinhole doctor
 * checks the same). */
static void announce_node(void)
{
	struct store_node me = { 0 }, others[16];
	unsigned n;

	snprintf(me.id, sizeof(me.id), "%s",
		 D.conf->node_id[0] ? D.conf->node_id : "default");
	snprintf(me.sip, sizeof(me.sip), "%s:%u", D.conf->listen,
		 D.conf->port);
	me.rtp_min = D.conf->rtp_port_min;
	me.rtp_max = D.conf->rtp_port_max;
	me.seen = (int64_t)time(NULL);
	if (store_node_put(D.store, &me))
		return;
	n = store_nodes(D.store, others, 16);
	for (unsigned i = 0; i < n; i++) {
		const struct store_node *o = &others[i];
		if (strcmp(o->id, me.id) == 0)
			continue;
		if (o->rtp_min <= me.rtp_max && me.rtp_min <= o->rtp_max)
			log_warn("main", "node %s shares this store and its RTP "
				 "range %u-%u overlaps ours %u-%u: give each node "
				 "its own [media] range", o->id, o->rtp_min,
				 o->rtp_max, me.rtp_min, me.rtp_max);
		if (strcmp(o->sip, me.sip) == 0)
			log_warn("main", "node %s shares this store and was "
				 "configured with our SIP address %s", o->id,
				 me.sip);
	}
}

static int src_reload(char *msg, size_t cap, void *arg)
{
	(void)arg;
	return do_reload(msg, cap);
}

static void on_signal(int fd, int events, void *arg)
{
	struct signalfd_siginfo si;
	char msg[256];

	(void)events;
	(void)arg;
	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			do_reload(msg, sizeof(msg));
		} else {
			log_notice("main", "signal %u: shutting down", si.ssi_signo);
			loop_stop(D.loop);
		}
	}
}

static json_t *src_selftest(bool start, void *arg)
{
	(void)arg;
	if (start && nat_selftest_start() == EBUSY)
		return NULL;
	return nat_selftest_json();
}

static int run_daemon(void)
{
	struct conf_errors errs;
	sigset_t mask;
	int err;
	struct admin_sources sources = {
		.registrations = src_registrations,
		.calls = src_calls,
		.alarms = src_alarms,
		.status = src_status,
		.ladders = src_ladders,
		.ladder = src_ladder,
		.metrics = src_metrics,
		.set_loglevel = src_loglevel,
		.reload = src_reload,
		.selftest = src_selftest,
	};

	D.conf = calloc(1, sizeof(*D.conf));
	if (!D.conf)
		return 1;
	memset(&errs, 0, sizeof(errs));
	err = conf_load(D.conf, D.conf_path, &errs);
	conf_errors_print(&errs, D.conf_path, stderr);
	if (err) {
		fprintf(stderr, "pinhole: cannot start: fix %s first "
			"(`pinhole check` explains each error)\n", D.conf_path);
		return 1;
	}
	log_set_level((enum log_level)D.conf->log_level);
	D.started = (int64_t)time(NULL);
	/* Keep freed heap instead of returning it to the kernel between
	 * bursts: re-faulting pages showed up in REGISTER profiles. */
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	mallopt(M_TOP_PAD, 16 << 20);
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	srand((unsigned)(time(NULL) ^ getpid()));

	if ((err = store_open(&D.store, D.conf->store_path))) {
		log_err("main", "cannot open store %s: %s", D.conf->store_path,
			strerror(err));
		return 1;
	}
	alarm_init(D.store);
	announce_node();
	if ((err = digest_init(D.conf->nonce_lifetime)) ||
	    (err = loop_create(&D.loop))) {
		log_err("main", "start-up failed: %s", strerror(err));
		return 1;
	}
	if ((err = tp_create(&D.tp, D.loop, D.conf->listen, D.conf->port,
			     D.conf->udp, D.conf->tcp, proxy_recv, NULL))) {
		log_err("main", "cannot listen on %s port %u: %s",
			D.conf->listen, D.conf->port, strerror(err));
		return 1;
	}
	ladder_configure();
	{
		struct relay_config rc;
		const char *bind_ip = D.conf->relay_address[0] ? D.conf->relay_address
							      : D.conf->listen;
		memset(&rc, 0, sizeof(rc));
		if (addr_parse(&rc.bind, bind_ip, 0)) {
			log_err("main", "bad relay address %s", bind_ip);
			return 1;
		}
		rc.port_min = D.conf->rtp_port_min;
		rc.port_max = D.conf->rtp_port_max;
		rc.workers = D.conf->relay_workers;
		if ((err = relay_create(&D.relay, &rc))) {
			log_err("main", "cannot start the media relay: %s",
				strerror(err));
			return 1;
		}
	}
	if ((err = nat_init(D.loop, D.tp, D.relay, D.conf)) ||
	    (err = txn_init(D.loop, D.tp, MAX_TXNS)) ||
	    (err = reg_init(D.loop, D.store, D.conf)) ||
	    (err = proxy_init(D.loop, D.tp, D.conf, D.store))) {
		log_err("main", "start-up failed: %s", strerror(err));
		return 1;
	}
	if (D.conf->admin_http[0] &&
	    (err = admin_start(&D.admin, D.loop, D.conf->admin_http, &sources))) {
		log_err("main", "cannot start admin http on %s: %s",
			D.conf->admin_http, strerror(err));
		return 1;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	D.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	loop_fd_set(D.loop, D.sigfd, LOOP_READ, on_signal, NULL);

	log_notice("main", "pinhole ready domain=%s sip=%s:%u admin=%s",
		   D.conf->domain, D.conf->listen, D.conf->port,
		   D.conf->admin_http[0] ? D.conf->admin_http : "off");
	loop_run(D.loop);

	if (D.admin)
		admin_stop(D.admin);
	proxy_close();
	reg_close();
	txn_close();
	nat_close();
	relay_destroy(D.relay);
	tp_destroy(D.tp);
	ladder_close();
	loop_destroy(D.loop);
	digest_close();
	store_close(D.store);
	free(D.conf);
	free(D.old_conf);
	log_notice("main", "stopped");
	return 0;
}

int main(int argc, char **argv)
{
	int i = 1;

	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			D.conf_path = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "-h") == 0 ||
			   strcmp(argv[i], "--help") == 0) {
			cli_usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "pinhole: unknown option %s\n", argv[i]);
			cli_usage(stderr);
			return 2;
		}
	}
	if (!D.conf_path)
		D.conf_path = cli_default_conf_path();
	if (i >= argc || strcmp(argv[i], "run") == 0)
		return run_daemon();
	return cli_main(argc - i, argv + i, D.conf_path);
}
