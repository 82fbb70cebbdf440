/*
 * conf.h - the one config file (INI, DESIGN.md section 2): load, validate,
 * and explain every mistake with file:line and the fix. Owns struct conf;
 * nobody else parses the file.
 */
#ifndef PINHOLE_CONF_H
#define PINHOLE_CONF_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

#define CONF_MAX_SUBNETS 32
#define CONF_MAX_DOMAINS 16
#define CONF_MAX_ROUTES 64

struct conf_subnet {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t addr[16];	/* network address, host bits cleared */
	unsigned prefix;
};

struct conf_route {
	char prefix[32];	/* dialled user-part prefix; "" never used */
	char uri[256];		/* sip:host[:port][;transport=tcp] */
	int line;		/* where it was defined */
};

struct conf {
	char path[512];		/* file it was loaded from */

	/* [sip] */
	char domain[128];	/* default "localhost" */
	char listen[64];	/* default "0.0.0.0" */
	uint16_t port;		/* default 5060 */
	bool udp, tcp, tls;	/* transports; default udp+tcp */

	/* [nat] */
	bool nat_enabled;	/* default yes */
	bool behind_nat;	/* default no */
	char public_ip[64];
	char stun_server[128];
	unsigned stun_refresh;	/* default 60 */
	struct conf_subnet subnets[CONF_MAX_SUBNETS];
	unsigned nsubnets;	/* default 10.0.0.0/8 */
	int subnets_line;	/* where intranet_subnets was set, 0 = default */
	char domains[CONF_MAX_DOMAINS][128];
	unsigned ndomains;
	unsigned keepalive_interval;	/* default 15 */
	unsigned nated_max_expires;	/* bound for NAT'ed phones, default 600;
					   0 = max_expires */
	bool active_check;	/* OPTIONS from another port to phones that
				   look public; default yes */

	/* [media] */
	bool relay;		/* default yes */
	char relay_address[64];
	uint16_t rtp_port_min;	/* default 30000 */
	uint16_t rtp_port_max;	/* default 31000 */
	unsigned idle_timeout;	/* default 60 */
	unsigned relay_workers;	/* data-path threads, default 1 */
	bool same_nat_direct;	/* two phones behind one NAT talk directly;
				   default no (hairpinning is unreliable) */

	/* [registrar] (pinhole extension of DESIGN.md section 2) */
	unsigned min_expires;	/* default 60 */
	unsigned max_expires;	/* default 3600 */
	unsigned default_expires; /* default 3600 */

	/* [auth] */
	bool auth_required;	/* default yes */
	unsigned nonce_lifetime;	/* seconds, default 300 */

	/* [features] */
	char pickup_prefix[16];	/* directed pickup: prefix + extension,
				   default "*78" */
	char group_pickup_code[16];	/* group pickup, default "*8" */
	bool refer_allow;	/* refer_policy = allow: forward every REFER;
				   default reject (see proxy/refer.h) */

	/* [store] */
	char store_path[512];	/* default "var/pinhole.db" */
	char redis[256];
	char node_id[64];

	/* [routes] */
	struct conf_route routes[CONF_MAX_ROUTES];
	unsigned nroutes;

	/* [admin] */
	char admin_http[64];	/* default "127.0.0.1:8080"; empty = off */
	unsigned ladder_calls;	/* SIP ladders kept, default 200; 0 = off */

	/* [log] */
	int log_level;		/* enum log_level, default LOG_INFO */
};

/* One finding of the validator. */
struct conf_error {
	int line;		/* 0 when not tied to a line */
	bool warning;		/* warnings do not fail `check` */
	char text[512];		/* "what is wrong; how to fix it" */
};

struct conf_errors {
	struct conf_error items[64];
	unsigned n;
	unsigned nerrors;	/* items that are not warnings */
};

/* Fill with the embedded defaults. */
void conf_defaults(struct conf *conf);

/*
 * Load and validate path into conf (defaults first, then the file).
 * Every problem is appended to errs; returns 0 when there is no error
 * (warnings allowed), EINVAL when there are errors, or the errno of
 * opening the file (ENOENT...) with an entry explaining it.
 */
int conf_load(struct conf *conf, const char *path, struct conf_errors *errs);

/* Same, from text in memory; name is used in findings (tests, fuzzing). */
int conf_load_string(struct conf *conf, const char *name, const char *text,
		     struct conf_errors *errs);

/* Append a finding (printf-style text). Keeps counting errors once the
 * list is full, so nerrors stays right. */
void conf_errors_add(struct conf_errors *errs, int line, bool warning,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Print findings as "file:line: error: text" to the stream. */
void conf_errors_print(const struct conf_errors *errs, const char *path,
		       void *file /* FILE * */);

/* Is this address inside one of the intranet subnets? */
bool conf_is_intranet_addr(const struct conf *conf,
			   const struct sockaddr_storage *addr);
/* Is this host name inside one of the intranet domains (suffix match,
 * "*.example.com" or "example.com")? */
bool conf_is_intranet_domain(const struct conf *conf, const char *host);

/* Longest-prefix route for a dialled user part, or NULL. */
const struct conf_route *conf_route_lookup(const struct conf *conf,
					   const char *user, size_t user_len);

#endif
