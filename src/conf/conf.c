/*
 * conf.c - the config file: load, validate, explain (see conf.h and
 * docs/pinhole.conf.5.md, which lists every key and every message).
 *
 * inih splits the file into section / key / value; everything else is
 * ours. Debian's inih calls the handler without a line number, so the file
 * is fed through our own reader, which counts lines. The reader also does
 * the part of the syntax inih could only report as "error on line N"
 * (missing '=', unclosed '['), strips comments, and strips leading blanks
 * so that inih's multi-line continuation never glues an indented
 * "key = value" onto the previous value. inih's line buffer is a fixed 200
 * bytes (a compile-time constant in Debian's build: setting ini_max_line
 * has no effect), so longer lines are refused here rather than silently
 * split in two. The handler therefore only ever sees well-formed lines,
 * and the reader's counter is the handler's line.
 *
 * Validation has three layers: per value (the key table says the form and
 * range of each key), per file (unknown sections and keys with the closest
 * known name suggested, duplicates), and across keys (check_cross: RTP
 * range, expiry bounds, behind_nat without an address...). Every finding
 * says what is wrong and how to fix it, and parsing goes on after an error
 * so that one `pinhole check` shows them all.
 */
#include "conf/conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log/log.h"
#include "util/pl.h"

/* inih's compiled-in line buffer (INI_MAX_LINE): content + '\n' + NUL. */
#define INIH_LINE_MAX 200

/* ---------------------------------------------------------------------- */
/* Findings */

void conf_errors_add(struct conf_errors *errs, int line, bool warning,
		     const char *fmt, ...)
{
	const unsigned cap = sizeof(errs->items) / sizeof(errs->items[0]);
	struct conf_error *e;
	va_list ap;

	if (!warning)
		errs->nerrors++;
	if (errs->n >= cap)
		return;
	e = &errs->items[errs->n++];
	if (errs->n == cap) {
		/* The last slot says that the list was cut. */
		e->line = 0;
		e->warning = true;
		snprintf(e->text, sizeof(e->text),
			 "too many findings, the rest are not shown; "
			 "fix these and check again");
		return;
	}
	e->line = line;
	e->warning = warning;
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
}

void conf_errors_print(const struct conf_errors *errs, const char *path,
		       void *file)
{
	FILE *out = file;

	for (unsigned i = 0; i < errs->n; i++) {
		const struct conf_error *e = &errs->items[i];
		const char *kind = e->warning ? "warning" : "error";

		if (e->line > 0)
			fprintf(out, "%s:%d: %s: %s\n", path, e->line, kind,
				e->text);
		else
			fprintf(out, "%s: %s: %s\n", path, kind, e->text);
	}
}

/* ---------------------------------------------------------------------- */
/* Small parsers shared by several keys */

static bool parse_ip(const char *s, int *family, uint8_t addr[16])
{
	if (inet_pton(AF_INET, s, addr) == 1) {
		*family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, addr) == 1) {
		*family = AF_INET6;
		return true;
	}
	return false;
}

static bool is_ip(const char *s)
{
	uint8_t addr[16];
	int family;

	return parse_ip(s, &family, addr);
}

/* RFC 1123 host name: dot-separated labels of letters, digits and '-',
 * no label empty, starting or ending with '-'. */
static bool valid_hostname(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-')
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && s[len - 1] != '-';
}

static bool all_digits_dots(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isdigit((unsigned char)s[i]) && s[i] != '.')
			return false;
	return true;
}

struct hostport {
	char host[256];		/* without brackets */
	unsigned port;		/* 0 when absent */
	bool is_ip;
};

/*
 * Split "host[:port]", "[v6]:port" or a bare IPv6 address. Returns NULL on
 * success or a short description of what is wrong.
 */
static const char *split_hostport(const char *s, size_t len,
				  struct hostport *hp)
{
	const char *colon = NULL, *port = NULL;
	size_t hostlen;
	unsigned ncolons = 0;

	memset(hp, 0, sizeof(*hp));
	if (len == 0)
		return "the address is empty";
	for (size_t i = 0; i < len; i++)
		if (s[i] == ':') {
			ncolons++;
			colon = s + i;
		}
	if (s[0] == '[') {
		const char *end = memchr(s, ']', len);
		uint8_t addr[16];

		if (!end)
			return "'[' without ']'";
		hostlen = (size_t)(end - s - 1);
		if (hostlen >= sizeof(hp->host))
			return "the address is too long";
		memcpy(hp->host, s + 1, hostlen);
		hp->host[hostlen] = '\0';
		if (inet_pton(AF_INET6, hp->host, addr) != 1)
			return "the address in [...] is not a valid IPv6 address";
		hp->is_ip = true;
		if (end + 1 < s + len) {
			if (end[1] != ':')
				return "expected ':PORT' after ']'";
			port = end + 2;
		}
	} else if (ncolons > 1) {
		if (len >= sizeof(hp->host))
			return "the address is too long";
		memcpy(hp->host, s, len);
		hp->host[len] = '\0';
		if (!is_ip(hp->host))
			return "not a valid IPv6 address (write [ADDRESS]:PORT "
			       "for an IPv6 address with a port)";
		hp->is_ip = true;
	} else {
		hostlen = colon ? (size_t)(colon - s) : len;
		if (hostlen == 0)
			return "the host is missing before ':'";
		if (hostlen >= sizeof(hp->host))
			return "the host name is too long";
		memcpy(hp->host, s, hostlen);
		hp->host[hostlen] = '\0';
		if (is_ip(hp->host))
			hp->is_ip = true;
		else if (all_digits_dots(hp->host, hostlen))
			return "not a valid IPv4 address";
		else if (!valid_hostname(hp->host, hostlen))
			return "not a valid host name (letters, digits, '-' "
			       "and '.')";
		if (colon)
			port = colon + 1;
	}
	if (port) {
		uint64_t v;
		struct pl p = { port, (size_t)(s + len - port) };

		if (pl_u64(p, 65535, &v) != 0 || v == 0)
			return "the port must be a number 1-65535";
		hp->port = (unsigned)v;
	}
	return NULL;
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (unsigned i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* Mask of the host part of an address, applied in place; tells whether
 * any host bit was set. */
static bool clear_host_bits(uint8_t *addr, unsigned nbytes, unsigned prefix)
{
	bool had = false;

	for (unsigned i = 0; i < nbytes; i++) {
		unsigned bits = prefix > i * 8 ? prefix - i * 8 : 0;
		uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));

		if (addr[i] & (uint8_t)~mask)
			had = true;
		addr[i] &= mask;
	}
	return had;
}

static bool prefix_match(const uint8_t *a, const uint8_t *net,
			 unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;

	if (memcmp(a, net, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[full] ^ net[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

/* Private, loopback, link-local or shared (CGNAT) space: such a public_ip
 * cannot be what phones on the Internet reach. */
static bool is_private_ip(int family, const uint8_t *a)
{
	struct in6_addr a6;

	if (family == AF_INET)
		return a[0] == 10 || a[0] == 127 ||
		       (a[0] == 172 && (a[1] & 0xf0) == 16) ||
		       (a[0] == 192 && a[1] == 168) ||
		       (a[0] == 169 && a[1] == 254) ||
		       (a[0] == 100 && (a[1] & 0xc0) == 64) || a[0] == 0;
	memcpy(&a6, a, sizeof(a6));	/* the macros need alignment */
	return (a[0] & 0xfe) == 0xfc ||			/* fc00::/7 ULA */
	       (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) ||	/* fe80::/10 */
	       IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_UNSPECIFIED(&a6);
}

/* ---------------------------------------------------------------------- */
/* Edit distance, for "did you mean" */

static unsigned edit_distance(const char *a, const char *b)
{
	unsigned row[64], la = (unsigned)strlen(a), lb = (unsigned)strlen(b);

	if (la >= 63 || lb >= 63)
		return 99;
	for (unsigned j = 0; j <= lb; j++)
		row[j] = j;
	for (unsigned i = 1; i <= la; i++) {
		unsigned diag = row[0];

		row[0] = i;
		for (unsigned j = 1; j <= lb; j++) {
			unsigned up = row[j];
			unsigned cost = tolower((unsigned char)a[i - 1]) ==
					tolower((unsigned char)b[j - 1]) ? 0 : 1;
			unsigned best = diag + cost;

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* ---------------------------------------------------------------------- */
/* The key table */

enum key_kind {
	K_DOMAIN,	/* host name or IP: the SIP domain */
	K_IP,		/* IP address, required */
	K_IP_OPT,	/* IP address or empty */
	K_BOOL,
	K_U16,		/* number into uint16_t */
	K_UINT,		/* number into unsigned */
	K_TRANSPORTS,
	K_SUBNETS,
	K_DOMAINS,
	K_HOSTPORT_OPT,	/* host[:port] or empty */
	K_ADMIN,	/* ip:port or empty */
	K_PATH,		/* non-empty file path */
	K_REDIS,	/* redis://host[:port] or empty */
	K_NODE_ID,
	K_LOGLEVEL,
	K_DIALCODE,	/* feature code: digits, letters, '*', '#', '+' */
	K_REFER_POLICY,	/* reject | allow */
};

struct key_def {
	const char *section;
	const char *name;
	enum key_kind kind;
	size_t offset;
	size_t size;
	unsigned min, max;	/* numbers */
	const char *unit;	/* numbers: shown in range messages */
};

#define FIELD(f) offsetof(struct conf, f), sizeof(((struct conf *)0)->f)
#define KEY(sec, name, kind, f) { sec, name, kind, FIELD(f), 0, 0, NULL }
#define NUM(sec, name, kind, f, lo, hi, unit) \
	{ sec, name, kind, FIELD(f), lo, hi, unit }

static const struct key_def keys[] = {
	KEY("sip", "domain", K_DOMAIN, domain),
	KEY("sip", "listen", K_IP, listen),
	NUM("sip", "port", K_U16, port, 1, 65535, NULL),
	KEY("sip", "transports", K_TRANSPORTS, udp),

	KEY("nat", "enabled", K_BOOL, nat_enabled),
	KEY("nat", "behind_nat", K_BOOL, behind_nat),
	KEY("nat", "public_ip", K_IP_OPT, public_ip),
	KEY("nat", "stun_server", K_HOSTPORT_OPT, stun_server),
	NUM("nat", "stun_refresh", K_UINT, stun_refresh, 5, 86400, "seconds"),
	KEY("nat", "intranet_subnets", K_SUBNETS, subnets),
	KEY("nat", "intranet_domains", K_DOMAINS, domains),
	NUM("nat", "keepalive_interval", K_UINT, keepalive_interval, 0, 3600,
	    "seconds, 0 = off"),
	NUM("nat", "nated_max_expires", K_UINT, nated_max_expires, 0, 604800,
	    "seconds, 0 = max_expires"),
	KEY("nat", "active_check", K_BOOL, active_check),

	KEY("media", "relay", K_BOOL, relay),
	KEY("media", "relay_address", K_IP_OPT, relay_address),
	NUM("media", "rtp_port_min", K_U16, rtp_port_min, 1024, 65535, NULL),
	NUM("media", "rtp_port_max", K_U16, rtp_port_max, 1024, 65535, NULL),
	NUM("media", "idle_timeout", K_UINT, idle_timeout, 5, 86400,
	    "seconds"),
	NUM("media", "workers", K_UINT, relay_workers, 1, 16, "threads"),
	KEY("media", "same_nat_direct", K_BOOL, same_nat_direct),

	NUM("registrar", "min_expires", K_UINT, min_expires, 1, 604800,
	    "seconds"),
	NUM("registrar", "max_expires", K_UINT, max_expires, 1, 604800,
	    "seconds"),
	NUM("registrar", "default_expires", K_UINT, default_expires, 1, 604800,
	    "seconds"),

	KEY("auth", "required", K_BOOL, auth_required),
	NUM("auth", "nonce_lifetime", K_UINT, nonce_lifetime, 10, 86400,
	    "seconds"),

	KEY("features", "pickup_prefix", K_DIALCODE, pickup_prefix),
	KEY("features", "group_pickup_code", K_DIALCODE, group_pickup_code),
	KEY("features", "refer_policy", K_REFER_POLICY, refer_allow),

	KEY("store", "path", K_PATH, store_path),
	KEY("store", "redis", K_REDIS, redis),
	KEY("store", "node_id", K_NODE_ID, node_id),

	KEY("admin", "http", K_ADMIN, admin_http),
	NUM("admin", "ladder_calls", K_UINT, ladder_calls, 0, 100000,
	    "calls, 0 = off"),

	KEY("log", "level", K_LOGLEVEL, log_level),
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* Sections in file order of the documentation; "routes" has free keys. */
static const char *const sections[] = {
	"sip", "nat", "media", "registrar", "auth", "features", "store",
	"routes", "admin", "log",
};

#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

static bool section_known(const char *name)
{
	for (unsigned i = 0; i < NSECTIONS; i++)
		if (strcmp(name, sections[i]) == 0)
			return true;
	return false;
}

static const char *closest_section(const char *name)
{
	const char *best = NULL;
	unsigned best_d = 3;

	for (unsigned i = 0; i < NSECTIONS; i++) {
		unsigned d = edit_distance(name, sections[i]);

		if (d < best_d) {
			best_d = d;
			best = sections[i];
		}
	}
	return best;
}

static int key_index(const char *section, const char *name)
{
	for (unsigned i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, section) == 0 &&
		    strcmp(keys[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* ---------------------------------------------------------------------- */
/* Parser state */

struct parse {
	struct conf *conf;
	struct conf_errors *errs;
	FILE *file;
	char *linebuf;
	size_t linecap;
	int line;
	char section[64];
	bool section_ok;	/* known section: its keys are checked */
	int key_line[NKEYS];	/* where each key was set, 0 = default */
};

#define ERR(p, ...) conf_errors_add((p)->errs, (p)->line, false, __VA_ARGS__)
#define WARN(p, ...) conf_errors_add((p)->errs, (p)->line, true, __VA_ARGS__)

static int line_of(const struct parse *p, const char *section,
		   const char *name)
{
	int i = key_index(section, name);

	return i < 0 ? 0 : p->key_line[i];
}

static const char *first_nonblank(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/*
 * The reader inih pulls lines from (fgets-like). See the file comment:
 * each physical line becomes exactly one line for inih, either the cleaned
 * line or an empty one when it is blank, a comment or already reported.
 */
static char *reader(char *str, int num, void *stream)
{
	struct parse *p = stream;
	ssize_t got;
	char *s, *end;
	size_t len;

	got = getline(&p->linebuf, &p->linecap, p->file);
	if (got < 0)
		return NULL;
	p->line++;
	s = p->linebuf;
	if (memchr(s, '\0', (size_t)got)) {
		ERR(p, "the line contains a NUL byte; the file must be text");
		goto empty;
	}
	if (p->line == 1 && (unsigned char)s[0] == 0xef &&
	    (unsigned char)s[1] == 0xbb && (unsigned char)s[2] == 0xbf)
		s += 3;		/* UTF-8 byte order mark */
	s = (char *)first_nonblank(s);
	if (*s == ';' || *s == '#')
		goto empty;

	/* Inline comments: ';' or '#' after a blank, as inih would (it only
	 * knows ';', '#' is our addition for people used to shell files). */
	for (end = s; *end; end++) {
		if ((*end == ';' || *end == '#') && end > s &&
		    (end[-1] == ' ' || end[-1] == '\t')) {
			*end = '\0';
			break;
		}
	}
	len = strlen(s);
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' ||
		       s[len - 1] == '\r' || s[len - 1] == '\n'))
		s[--len] = '\0';
	if (len == 0)
		goto empty;

	if (s[0] == '[') {
		char *close = strchr(s, ']');
		size_t namelen;

		if (!close || close[1] != '\0') {
			ERR(p, "section header '%s' is malformed: write it as "
			    "[name] alone on its line", s);
			/* Keys under it are not checked: one finding, not
			 * one per key of a section we could not read. */
			p->section_ok = false;
			goto empty;
		}
		namelen = (size_t)(close - s - 1);
		pl_strcpy(p->section, sizeof(p->section),
			  pl_trim((struct pl){ s + 1, namelen }));
		p->section_ok = section_known(p->section);
		if (!p->section_ok) {
			const char *best = closest_section(p->section);
			char known[160] = "";

			for (unsigned i = 0; i < NSECTIONS; i++) {
				strcat(known, i ? ", [" : "[");
				strcat(known, sections[i]);
				strcat(known, "]");
			}
			if (best)
				ERR(p, "unknown section [%s]; did you mean [%s]? "
				    "known sections: %s", p->section, best,
				    known);
			else
				ERR(p, "unknown section [%s]; known sections: "
				    "%s", p->section, known);
		}
		/* inih keeps the blanks of "[ sip ]": hand it the name. */
		snprintf(str, (size_t)num, "[%s]\n", p->section);
		return str;
	} else {
		char *eq = strchr(s, '=');
		char *colon = strchr(s, ':');

		if (!eq || (colon && colon < eq)) {
			ERR(p, "expected 'key = value', found '%s'", s);
			goto empty;
		}
		if (eq == s) {
			ERR(p, "a key name is missing before '='");
			goto empty;
		}
	}
	if (len + 2 > (size_t)num || len + 2 > INIH_LINE_MAX) {
		ERR(p, "line is too long (%zu characters, at most %d without "
		    "comments)", len, INIH_LINE_MAX - 3);
		goto empty;
	}
	memcpy(str, s, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
empty:
	str[0] = '\n';
	str[1] = '\0';
	return str;
}

/* ---------------------------------------------------------------------- */
/* Values */

static void *field(struct conf *conf, const struct key_def *k)
{
	return (char *)conf + k->offset;
}

static bool copy_str(struct parse *p, const struct key_def *k,
		     const char *value)
{
	size_t len = strlen(value);

	if (len >= k->size) {
		ERR(p, "%s is too long (%zu characters, at most %zu)", k->name,
		    len, k->size - 1);
		return false;
	}
	memcpy(field(p->conf, k), value, len + 1);
	return true;
}

static void parse_number(struct parse *p, const struct key_def *k,
			 const char *value)
{
	uint64_t v;
	char range[96];
	int rc;

	if (k->unit)
		snprintf(range, sizeof(range), "%u-%u (%s)", k->min, k->max,
			 k->unit);
	else
		snprintf(range, sizeof(range), "%u-%u", k->min, k->max);
	rc = pl_u64(pl_from_str(value), UINT32_MAX, &v);
	if (rc == EINVAL) {
		ERR(p, "%s = '%s' is not a number: expected %s", k->name, value,
		    range);
		return;
	}
	if (rc != 0 || v < k->min || v > k->max) {
		ERR(p, "%s = %s is out of range: expected %s", k->name, value,
		    range);
		return;
	}
	if (k->kind == K_U16)
		*(uint16_t *)field(p->conf, k) = (uint16_t)v;
	else
		*(unsigned *)field(p->conf, k) = (unsigned)v;
}

/* Calls fn for each trimmed, non-empty item of a comma-separated list;
 * reports empty items (",,", trailing comma). */
static void each_item(struct parse *p, const char *name, const char *value,
		      void (*fn)(struct parse *p, const char *item))
{
	const char *s = value;

	for (;;) {
		const char *comma = strchr(s, ',');
		struct pl item = { s, comma ? (size_t)(comma - s) : strlen(s) };
		char buf[256];

		item = pl_trim(item);
		if (item.l == 0) {
			if (comma || s != value)
				ERR(p, "%s has an empty item: remove the extra "
				    "comma", name);
		} else if (item.l >= sizeof(buf)) {
			ERR(p, "%s: item '%.40s...' is too long", name, item.p);
		} else {
			fn(p, pl_strcpy(buf, sizeof(buf), item));
		}
		if (!comma)
			break;
		s = comma + 1;
	}
}

static void add_transport(struct parse *p, const char *item)
{
	if (strcasecmp(item, "udp") == 0) {
		p->conf->udp = true;
	} else if (strcasecmp(item, "tcp") == 0) {
		p->conf->tcp = true;
	} else if (strcasecmp(item, "tls") == 0) {
		p->conf->tls = true;
		WARN(p, "tls is not implemented yet: no TLS listener will be "
		     "opened");
	} else if (strcasecmp(item, "ws") == 0 ||
		   strcasecmp(item, "wss") == 0) {
		ERR(p, "transport '%s' is not implemented yet: use udp, tcp",
		    item);
	} else {
		ERR(p, "unknown transport '%s': expected a list of udp, tcp "
		    "(tls later)", item);
	}
}

/* CIDR: "10.0.0.0/8", "fd00::/8". Exposed to the tests through
 * conf_load_string only. */
static void add_subnet(struct parse *p, const char *item)
{
	struct conf *conf = p->conf;
	struct conf_subnet sn = { 0 };
	char addr[64];
	const char *slash = strchr(item, '/');
	unsigned max;
	uint64_t prefix;

	if (!slash) {
		ERR(p, "intranet_subnets: '%s' has no prefix length: write "
		    "ADDRESS/BITS such as %s/24 (or /%s for this host alone)",
		    item, item, strchr(item, ':') ? "128" : "32");
		return;
	}
	if ((size_t)(slash - item) >= sizeof(addr) ||
	    !parse_ip(pl_strcpy(addr, sizeof(addr),
				(struct pl){ item, (size_t)(slash - item) }),
		      &sn.family, sn.addr)) {
		ERR(p, "intranet_subnets: '%s' is not a subnet: expected "
		    "ADDRESS/BITS such as 192.168.1.0/24 or fd00::/8", item);
		return;
	}
	max = sn.family == AF_INET ? 32 : 128;
	if (pl_u64(pl_from_str(slash + 1), max, &prefix) != 0) {
		ERR(p, "intranet_subnets: '%s': the prefix length must be a "
		    "number 0-%u", item, max);
		return;
	}
	sn.prefix = (unsigned)prefix;
	if (clear_host_bits(sn.addr, max / 8, sn.prefix)) {
		char net[INET6_ADDRSTRLEN];

		inet_ntop(sn.family, sn.addr, net, sizeof(net));
		WARN(p, "intranet_subnets: '%s' has host bits set, using "
		     "%s/%u", item, net, sn.prefix);
	}
	if (sn.prefix == 0)
		WARN(p, "intranet_subnets: '%s' covers every address: all "
		     "phones, even on the Internet, count as local and media "
		     "is never relayed", item);
	if (conf->nsubnets >= CONF_MAX_SUBNETS) {
		ERR(p, "intranet_subnets: too many subnets (at most %d)",
		    CONF_MAX_SUBNETS);
		return;
	}
	conf->subnets[conf->nsubnets++] = sn;
}

static void add_domain(struct parse *p, const char *item)
{
	struct conf *conf = p->conf;
	const char *name = item;
	size_t len = strlen(item);
	char *dst;

	if (item[0] == '.') {
		ERR(p, "intranet_domains: '%s': write *%s for the subdomains "
		    "only, or %s for the domain and its subdomains", item,
		    item, item + 1);
		return;
	}
	if (strncmp(item, "*.", 2) == 0) {
		name += 2;
		len -= 2;
	}
	if (len && name[len - 1] == '.')
		len--;		/* fully qualified "example.com." */
	if (!valid_hostname(name, len) || memchr(name, '*', len)) {
		ERR(p, "intranet_domains: '%s' is not a domain name: expected "
		    "example.com (and its subdomains) or *.example.com "
		    "(subdomains only)", item);
		return;
	}
	if (conf->ndomains >= CONF_MAX_DOMAINS) {
		ERR(p, "intranet_domains: too many domains (at most %d)",
		    CONF_MAX_DOMAINS);
		return;
	}
	if ((size_t)(name - item) + len >= sizeof(conf->domains[0])) {
		ERR(p, "intranet_domains: '%s' is too long", item);
		return;
	}
	dst = conf->domains[conf->ndomains++];
	memcpy(dst, item, (size_t)(name - item) + len);
	dst[(size_t)(name - item) + len] = '\0';
	for (char *c = dst; *c; c++)
		*c = (char)tolower((unsigned char)*c);
}

static void parse_value(struct parse *p, const struct key_def *k,
			const char *value)
{
	struct conf *conf = p->conf;
	struct hostport hp;
	const char *why;

	switch (k->kind) {
	case K_DOMAIN:
		if (!*value) {
			ERR(p, "domain is empty: set the SIP domain this server "
			    "serves, such as example.com (it is also the "
			    "digest realm)");
			return;
		}
		if (!is_ip(value) && !valid_hostname(value, strlen(value))) {
			ERR(p, "domain = '%s' is not a domain name or IP "
			    "address: expected something like example.com",
			    value);
			return;
		}
		copy_str(p, k, value);
		return;
	case K_IP:
	case K_IP_OPT:
		if (!*value && k->kind == K_IP_OPT) {
			copy_str(p, k, value);
			return;
		}
		if (!is_ip(value)) {
			ERR(p, "%s = '%s' is not an IP address: expected an "
			    "IPv4 or IPv6 address such as %s%s", k->name, value,
			    strcmp(k->name, "listen") == 0 ? "0.0.0.0 (all "
			    "IPv4 addresses of this host) or 192.168.1.10" :
			    "203.0.113.7",
			    k->kind == K_IP_OPT ? ", or nothing" : "");
			return;
		}
		copy_str(p, k, value);
		return;
	case K_BOOL:
		if (!parse_bool(value, field(conf, k)))
			ERR(p, "%s = '%s' is not a yes/no value: expected yes "
			    "or no (true/false, on/off and 1/0 work too)",
			    k->name, value);
		return;
	case K_U16:
	case K_UINT:
		parse_number(p, k, value);
		return;
	case K_TRANSPORTS:
		conf->udp = conf->tcp = conf->tls = false;
		if (!*value) {
			ERR(p, "transports is empty: list at least one of udp, "
			    "tcp");
			return;
		}
		each_item(p, k->name, value, add_transport);
		return;
	case K_SUBNETS:
		conf->nsubnets = 0;
		conf->subnets_line = p->line;
		each_item(p, k->name, value, add_subnet);
		return;
	case K_DOMAINS:
		conf->ndomains = 0;
		each_item(p, k->name, value, add_domain);
		return;
	case K_HOSTPORT_OPT:
		if (*value && (why = split_hostport(value, strlen(value), &hp))) {
			ERR(p, "%s = '%s': %s; expected HOST or HOST:PORT such "
			    "as stun.example.com:3478", k->name, value, why);
			return;
		}
		copy_str(p, k, value);
		return;
	case K_ADMIN:
		if (!*value) {
			copy_str(p, k, value);	/* off */
			return;
		}
		why = split_hostport(value, strlen(value), &hp);
		if (!why && !hp.is_ip)
			why = "the host must be an IP address, not a name";
		if (!why && !hp.port)
			why = "the port is missing";
		if (why) {
			ERR(p, "http = '%s': %s; expected IP:PORT such as "
			    "127.0.0.1:8080 ([::1]:8080 for IPv6), or nothing "
			    "to turn the admin API off", value, why);
			return;
		}
		if (strcmp(hp.host, "127.0.0.1") != 0 &&
		    strcmp(hp.host, "::1") != 0 &&
		    strncmp(hp.host, "127.", 4) != 0)
			WARN(p, "http = %s: the admin API has no password; "
			     "anyone who can reach %s can read registrations and "
			     "change the log level. Prefer 127.0.0.1 and an SSH "
			     "tunnel", value, hp.host);
		copy_str(p, k, value);
		return;
	case K_PATH:
		if (!*value) {
			ERR(p, "%s is empty: set a file path such as "
			    "var/pinhole.db", k->name);
			return;
		}
		copy_str(p, k, value);
		return;
	case K_REDIS:
		if (!*value) {
			copy_str(p, k, value);
			return;
		}
		if (strncasecmp(value, "redis://", 8) != 0) {
			ERR(p, "redis = '%s' must start with redis://: expected "
			    "redis://HOST[:PORT], or nothing without HA", value);
			return;
		}
		why = split_hostport(value + 8, strlen(value + 8), &hp);
		if (why) {
			ERR(p, "redis = '%s': %s; expected redis://HOST[:PORT]",
			    value, why);
			return;
		}
		copy_str(p, k, value);
		return;
	case K_NODE_ID:
		for (const char *c = value; *c; c++) {
			if (!isalnum((unsigned char)*c) && *c != '-' &&
			    *c != '_' && *c != '.') {
				ERR(p, "node_id = '%s': use letters, digits, "
				    "'-', '_' and '.' only", value);
				return;
			}
		}
		copy_str(p, k, value);
		return;
	case K_DIALCODE:
		if (!*value) {
			ERR(p, "%s is empty: set a code phones can dial, such as "
			    "*78", k->name);
			return;
		}
		for (const char *c = value; *c; c++) {
			if (!isalnum((unsigned char)*c) && *c != '*' &&
			    *c != '#' && *c != '+') {
				ERR(p, "%s = '%s': use digits, letters, '*', "
				    "'#' and '+' only", k->name, value);
				return;
			}
		}
		copy_str(p, k, value);
		return;
	case K_REFER_POLICY:
		if (strcasecmp(value, "reject") == 0) {
			conf->refer_allow = false;
		} else if (strcasecmp(value, "allow") == 0) {
			conf->refer_allow = true;
		} else {
			ERR(p, "refer_policy = '%s': expected reject (a REFER "
			    "whose Refer-To is not our domain, the intranet or a "
			    "gateway gets 403) or allow (forward every REFER)",
			    value);
		}
		return;
	case K_LOGLEVEL: {
		enum log_level level;

		if (log_level_parse(value, &level) != 0) {
			ERR(p, "level = '%s' is not a log level: expected error, "
			    "warning, notice, info or debug", value);
			return;
		}
		conf->log_level = (int)level;
		return;
	}
	}
}

/* ---------------------------------------------------------------------- */
/* [routes] */

static bool uri_param_char(char c)
{
	return isalnum((unsigned char)c) || strchr("-_.!~*'()%[]/:&+$", c);
}

/* Minimal check of a route target: sip:/sips:, host, optional port,
 * optional ;params. NULL when good, else what is wrong. */
static const char *check_route_uri(const char *uri)
{
	const char *s, *end;
	struct hostport hp;
	const char *why;

	if (strncasecmp(uri, "sip:", 4) == 0)
		s = uri + 4;
	else if (strncasecmp(uri, "sips:", 5) == 0)
		s = uri + 5;
	else
		return "it must start with sip: or sips:";
	for (const char *c = uri; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == '<' || *c == '>' ||
		    *c == '"')
			return "it contains a blank or one of < > \"";
	if (strchr(s, '@'))
		return "a route names a server, not a user: no user@ part";
	if (strchr(s, '?'))
		return "URI headers (?...) are not allowed";
	end = strchr(s, ';');
	if (!end)
		end = s + strlen(s);
	why = split_hostport(s, (size_t)(end - s), &hp);
	if (why)
		return why;
	while (*end == ';') {
		const char *name = end + 1, *next = strchr(name, ';');
		const char *eq;
		size_t len = next ? (size_t)(next - name) : strlen(name);

		if (len == 0)
			return "an empty ;parameter";
		eq = memchr(name, '=', len);
		for (size_t i = 0; i < len; i++)
			if (name + i != eq && !uri_param_char(name[i]))
				return "a ;parameter has a character that is "
				       "not allowed";
		if (eq && (size_t)(eq - name) == 9 &&
		    strncasecmp(name, "transport", 9) == 0) {
			static const char *const tp[] = {
				"udp", "tcp", "tls", "sctp", "ws", "wss",
			};
			size_t vlen = len - 10;
			bool ok = false;

			for (unsigned i = 0; i < 6; i++)
				if (vlen == strlen(tp[i]) &&
				    strncasecmp(eq + 1, tp[i], vlen) == 0)
					ok = true;
			if (!ok)
				return ";transport= must be udp, tcp or tls";
		}
		end = name + len;
	}
	return NULL;
}

static void parse_route(struct parse *p, const char *prefix,
			const char *value)
{
	struct conf *conf = p->conf;
	struct conf_route *r;
	const char *why;

	for (const char *c = prefix; *c; c++) {
		if (!isalnum((unsigned char)*c) && !strchr("+*#", *c)) {
			ERR(p, "route prefix '%s' has '%c': a prefix is the "
			    "start of a dialled number (digits, letters, '+', "
			    "'*', '#')", prefix, *c);
			return;
		}
	}
	if (strlen(prefix) >= sizeof(r->prefix)) {
		ERR(p, "route prefix '%s' is too long (at most %zu "
		    "characters)", prefix, sizeof(r->prefix) - 1);
		return;
	}
	for (unsigned i = 0; i < conf->nroutes; i++) {
		if (strcmp(conf->routes[i].prefix, prefix) == 0) {
			ERR(p, "route prefix '%s' is already defined at line "
			    "%d: remove one of them", prefix,
			    conf->routes[i].line);
			return;
		}
	}
	if (!*value) {
		ERR(p, "route %s has no target: expected %s = "
		    "sip:HOST[:PORT][;transport=tcp]", prefix, prefix);
		return;
	}
	if ((why = check_route_uri(value))) {
		ERR(p, "route %s = '%s': %s; expected "
		    "sip:HOST[:PORT][;transport=tcp]", prefix, value, why);
		return;
	}
	if (strlen(value) >= sizeof(r->uri)) {
		ERR(p, "route %s: the URI is too long", prefix);
		return;
	}
	if (conf->nroutes >= CONF_MAX_ROUTES) {
		ERR(p, "too many routes (at most %d)", CONF_MAX_ROUTES);
		return;
	}
	r = &conf->routes[conf->nroutes++];
	strcpy(r->prefix, prefix);
	strcpy(r->uri, value);
	r->line = p->line;
}

/* ---------------------------------------------------------------------- */
/* The inih handler */

static void unknown_key(struct parse *p, const char *section,
			const char *name)
{
	char known[256] = "";
	const char *best = NULL, *elsewhere = NULL;
	unsigned best_d = 3;

	for (unsigned i = 0; i < NKEYS; i++) {
		unsigned d;

		if (strcmp(keys[i].name, name) == 0)
			elsewhere = keys[i].section;
		if (strcmp(keys[i].section, section) != 0)
			continue;
		if (*known)
			strcat(known, ", ");
		strcat(known, keys[i].name);
		d = edit_distance(name, keys[i].name);
		if (d < best_d) {
			best_d = d;
			best = keys[i].name;
		}
	}
	if (elsewhere)
		ERR(p, "'%s' belongs in [%s], not [%s]: move it", name,
		    elsewhere, section);
	else if (best)
		ERR(p, "unknown key '%s' in [%s]; did you mean '%s'? known "
		    "keys: %s", name, section, best, known);
	else
		ERR(p, "unknown key '%s' in [%s]; known keys: %s", name,
		    section, known);
}

static int handler(void *user, const char *section, const char *name,
		   const char *value)
{
	struct parse *p = user;
	int i;

	if (!*section) {
		const char *where = NULL;

		for (unsigned k = 0; k < NKEYS; k++)
			if (strcmp(keys[k].name, name) == 0)
				where = keys[k].section;
		if (where)
			ERR(p, "'%s' is outside any section: put it under "
			    "[%s]", name, where);
		else
			ERR(p, "'%s' is outside any section: keys go under a "
			    "[section] header", name);
		return 1;
	}
	if (!p->section_ok)
		return 1;	/* the section header was reported */
	if (strcmp(section, "routes") == 0) {
		parse_route(p, name, value);
		return 1;
	}
	i = key_index(section, name);
	if (i < 0) {
		unknown_key(p, section, name);
		return 1;
	}
	if (p->key_line[i]) {
		ERR(p, "%s is already set at line %d: remove one of them",
		    name, p->key_line[i]);
		return 1;
	}
	p->key_line[i] = p->line;
	parse_value(p, &keys[i], value);
	return 1;	/* we report errors ourselves; inih need not count */
}

/* ---------------------------------------------------------------------- */
/* Checks across keys */

static void check_cross(struct parse *p)
{
	struct conf *c = p->conf;
	int line;

#define XERR(l, ...) conf_errors_add(p->errs, (l), false, __VA_ARGS__)
#define XWARN(l, ...) conf_errors_add(p->errs, (l), true, __VA_ARGS__)

	line = line_of(p, "sip", "transports");
	if (line && !c->udp && !c->tcp && c->tls)
		XERR(line, "transports = tls leaves no working transport (tls "
		     "is not implemented yet): add udp and/or tcp");

	line = line_of(p, "nat", "behind_nat");
	if (c->behind_nat && !c->public_ip[0] && !c->stun_server[0])
		XERR(line, "behind_nat = yes but neither public_ip nor "
		     "stun_server is set: remote phones cannot reach this "
		     "server; set one of them");
	if (c->behind_nat && !c->nat_enabled)
		XWARN(line, "behind_nat = yes has no effect while [nat] "
		      "enabled = no");
	if (c->public_ip[0]) {
		uint8_t a[16];
		int family;

		line = line_of(p, "nat", "public_ip");
		if (!c->behind_nat)
			XWARN(line, "public_ip is set but behind_nat = no: it "
			      "is not used; set behind_nat = yes if this "
			      "server is behind a NAT");
		if (parse_ip(c->public_ip, &family, a) &&
		    is_private_ip(family, a))
			XWARN(line, "public_ip = %s is not a public address: "
			      "phones on the Internet cannot reach it; set the "
			      "WAN address of your router", c->public_ip);
	}
	line = line_of(p, "nat", "keepalive_interval");
	if (c->nat_enabled && c->keepalive_interval > 120)
		XWARN(line, "keepalive_interval = %u: most NATs forget an idle "
		      "UDP mapping after 30-120 s, so calls to phones behind "
		      "them would fail; 15-30 is safe", c->keepalive_interval);
	if (c->nat_enabled && c->nsubnets == 0 && c->subnets_line)
		XWARN(c->subnets_line, "intranet_subnets is empty: every phone "
		      "counts as remote, so every call is relayed; list your "
		      "LAN, such as 192.168.1.0/24");

	if (c->rtp_port_min > c->rtp_port_max) {
		line = line_of(p, "media", "rtp_port_max");
		if (!line)
			line = line_of(p, "media", "rtp_port_min");
		XERR(line, "rtp_port_min (%u) is above rtp_port_max (%u): swap "
		     "them", c->rtp_port_min, c->rtp_port_max);
	} else if (c->relay) {
		unsigned nports = (unsigned)c->rtp_port_max -
				  c->rtp_port_min + 1u;

		line = line_of(p, "media", "rtp_port_min");
		if (c->rtp_port_min % 2)
			XWARN(line, "rtp_port_min = %u is odd: RTP uses an even "
			      "port and RTCP the next one; use %u",
			      c->rtp_port_min, c->rtp_port_min - 1u);
		if (nports < 100) {
			if (!line)
				line = line_of(p, "media", "rtp_port_max");
			XWARN(line, "the RTP range %u-%u holds only %u ports: "
			      "each relayed call takes up to 4 (RTP and RTCP "
			      "for each leg), so about %u calls at once; widen "
			      "it", c->rtp_port_min, c->rtp_port_max, nports,
			      nports / 4);
		}
		if (c->port >= c->rtp_port_min && c->port <= c->rtp_port_max) {
			line = line_of(p, "sip", "port");
			if (!line)
				line = line_of(p, "media", "rtp_port_min");
			XERR(line, "the SIP port %u is inside the RTP range "
			     "%u-%u: move one of them", c->port,
			     c->rtp_port_min, c->rtp_port_max);
		}
	}

	if (c->min_expires > c->max_expires) {
		line = line_of(p, "registrar", "max_expires");
		if (!line)
			line = line_of(p, "registrar", "min_expires");
		XERR(line, "min_expires (%u) is above max_expires (%u): lower "
		     "min_expires or raise max_expires", c->min_expires,
		     c->max_expires);
	} else if (c->default_expires < c->min_expires ||
		   c->default_expires > c->max_expires) {
		line = line_of(p, "registrar", "default_expires");
		if (!line)
			line = line_of(p, "registrar", "min_expires");
		if (!line)
			line = line_of(p, "registrar", "max_expires");
		XERR(line, "default_expires (%u) must lie between min_expires "
		     "(%u) and max_expires (%u)", c->default_expires,
		     c->min_expires, c->max_expires);
	}

	if (!c->auth_required)
		XWARN(line_of(p, "auth", "required"), "required = no: anyone "
		      "who can reach this server can register as any user and "
		      "call through it");

	if (c->redis[0] && !c->node_id[0])
		XERR(line_of(p, "store", "redis"), "redis is set (HA) but "
		     "node_id is empty: give each node a unique node_id");

	if (c->admin_http[0] && c->tcp) {
		struct hostport hp;

		if (!split_hostport(c->admin_http, strlen(c->admin_http),
				    &hp) && hp.port == c->port &&
		    (strcmp(hp.host, c->listen) == 0 ||
		     strcmp(hp.host, "0.0.0.0") == 0 ||
		     strcmp(hp.host, "::") == 0 ||
		     strcmp(c->listen, "0.0.0.0") == 0 ||
		     strcmp(c->listen, "::") == 0))
			XERR(line_of(p, "admin", "http"), "http = %s uses the "
			     "SIP TCP port %u: pick another port such as 8080",
			     c->admin_http, c->port);
	}
#undef XERR
#undef XWARN
}

/* ---------------------------------------------------------------------- */
/* Public */

void conf_defaults(struct conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	strcpy(conf->domain, "localhost");
	strcpy(conf->listen, "0.0.0.0");
	conf->port = 5060;
	conf->udp = conf->tcp = true;

	conf->nat_enabled = true;
	conf->stun_refresh = 60;
	conf->subnets[0].family = AF_INET;
	conf->subnets[0].addr[0] = 10;
	conf->subnets[0].prefix = 8;
	conf->nsubnets = 1;
	conf->keepalive_interval = 15;
	conf->nated_max_expires = 600;
	conf->active_check = true;
	conf->relay_workers = 1;

	conf->relay = true;
	conf->rtp_port_min = 30000;
	conf->rtp_port_max = 31000;
	conf->idle_timeout = 60;

	conf->min_expires = 60;
	conf->max_expires = 3600;
	conf->default_expires = 3600;

	conf->auth_required = true;
	conf->nonce_lifetime = 300;

	strcpy(conf->pickup_prefix, "*78");
	strcpy(conf->group_pickup_code, "*8");

	strcpy(conf->store_path, "var/pinhole.db");
	strcpy(conf->admin_http, "127.0.0.1:8080");
	conf->ladder_calls = 200;
	conf->log_level = LOG_INFO;
}

static int load_stream(struct conf *conf, const char *name, FILE *file,
		       struct conf_errors *errs)
{
	struct parse p = {
		.conf = conf, .errs = errs, .file = file,
		.section_ok = true,
	};
	int rc;

	rc = ini_parse_stream(reader, &p, handler, &p);
	if (ferror(file)) {
		conf_errors_add(errs, p.line, false, "cannot read %s: %s", name,
				strerror(errno));
	} else if (rc != 0) {
		/* Our reader hands inih only well-formed lines, so this is
		 * a gap in it: say so rather than hide it. */
		conf_errors_add(errs, rc > 0 ? rc : 0, false,
				"inih could not parse this line (%d)", rc);
	}
	free(p.linebuf);
	check_cross(&p);
	return errs->nerrors ? EINVAL : 0;
}

int conf_load(struct conf *conf, const char *path, struct conf_errors *errs)
{
	FILE *file;
	int rc;

	conf_defaults(conf);
	memset(errs, 0, sizeof(*errs));
	snprintf(conf->path, sizeof(conf->path), "%s", path);
	file = fopen(path, "r");
	if (!file) {
		rc = errno;
		conf_errors_add(errs, 0, false, "cannot open %s: %s; %s", path,
				strerror(rc), rc == ENOENT ?
				"create it (docs/pinhole.conf.5.md lists every "
				"key) or name another file with -c FILE" :
				"check its permissions");
		return rc;
	}
	rc = load_stream(conf, path, file, errs);
	fclose(file);
	return rc;
}

int conf_load_string(struct conf *conf, const char *name, const char *text,
		     struct conf_errors *errs)
{
	FILE *file;
	int rc;

	conf_defaults(conf);
	memset(errs, 0, sizeof(*errs));
	snprintf(conf->path, sizeof(conf->path), "%s", name);
	if (!*text) {
		/* fmemopen rejects a zero-length buffer; an empty file is
		 * valid and means "all defaults". */
		struct parse p = { .conf = conf, .errs = errs };

		check_cross(&p);
		return errs->nerrors ? EINVAL : 0;
	}
	file = fmemopen((void *)text, strlen(text), "r");
	if (!file) {
		rc = errno;
		conf_errors_add(errs, 0, false, "cannot read %s: %s", name,
				strerror(rc));
		return rc;
	}
	rc = load_stream(conf, name, file, errs);
	fclose(file);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Queries */

bool conf_is_intranet_addr(const struct conf *conf,
			   const struct sockaddr_storage *addr)
{
	uint8_t v4[4], v6[16];
	bool has4 = false, has6 = false;

	if (addr->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)addr;

		memcpy(v4, &sin->sin_addr, 4);
		has4 = true;
		/* Also as ::ffff:a.b.c.d for subnets written that way. */
		memset(v6, 0, 10);
		v6[10] = v6[11] = 0xff;
		memcpy(v6 + 12, v4, 4);
		has6 = true;
	} else if (addr->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)addr;

		memcpy(v6, &sin6->sin6_addr, 16);
		has6 = true;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			memcpy(v4, v6 + 12, 4);
			has4 = true;
		}
	} else {
		return false;
	}
	for (unsigned i = 0; i < conf->nsubnets; i++) {
		const struct conf_subnet *sn = &conf->subnets[i];

		if (sn->family == AF_INET && has4 &&
		    prefix_match(v4, sn->addr, sn->prefix))
			return true;
		if (sn->family == AF_INET6 && has6 &&
		    prefix_match(v6, sn->addr, sn->prefix))
			return true;
	}
	return false;
}

bool conf_is_intranet_domain(const struct conf *conf, const char *host)
{
	size_t hlen = strlen(host);

	if (hlen && host[hlen - 1] == '.')
		hlen--;
	if (hlen == 0)
		return false;
	for (unsigned i = 0; i < conf->ndomains; i++) {
		const char *d = conf->domains[i];
		bool subs_only = strncmp(d, "*.", 2) == 0;
		size_t dlen;

		if (subs_only)
			d += 2;
		dlen = strlen(d);
		if (hlen == dlen && !subs_only &&
		    strncasecmp(host, d, dlen) == 0)
			return true;
		if (hlen > dlen && host[hlen - dlen - 1] == '.' &&
		    strncasecmp(host + hlen - dlen, d, dlen) == 0)
			return true;
	}
	return false;
}

const struct conf_route *conf_route_lookup(const struct conf *conf,
					   const char *user, size_t user_len)
{
	const struct conf_route *best = NULL;
	size_t best_len = 0;

	for (unsigned i = 0; i < conf->nroutes; i++) {
		const struct conf_route *r = &conf->routes[i];
		size_t len = strlen(r->prefix);

		if (len == 0 || len > user_len || len <= best_len)
			continue;
		if (memcmp(user, r->prefix, len) == 0) {
			best = r;
			best_len = len;
		}
	}
	return best;
}
