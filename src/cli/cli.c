/*
 * cli.c - the administrator's subcommands (see cli.h and DESIGN.md
 * section 1).
 *
 * Every command is a short function that returns an exit code; none calls
 * exit(). Talking to a running daemon goes through the admin HTTP API
 * (admin_client_request), so the CLI never touches daemon memory and works
 * the same against any node. Account commands open the SQLite store
 * directly: they work with the daemon stopped, and SQLite's locking makes
 * them safe while it runs.
 *
 * Output rules: findings and tables go to stdout (scripts parse them);
 * complaints about the command itself go to stderr as "pinhole: ...".
 * Text that came from the network (user agents, contacts) is shown with
 * control characters replaced, so a phone cannot send escape sequences to
 * the administrator's terminal.
 */
#include "cli/cli.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "auth/digest.h"
#include "conf/conf.h"
#include "log/log.h"
#include "proxy/features.h"
#include "store/store.h"

#define CLI_TIMEOUT_MS 3000
#define CELL_MAX 60		/* longer cells are cut: --json has it all */

/* ---------------------------------------------------------------------- */
/* Usage */

void cli_usage(FILE *out)
{
	fputs("usage: pinhole [-c FILE] COMMAND [ARGS]\n"
	      "\n"
	      "commands:\n"
	      "  run                       run the daemon in the foreground "
	      "(the default)\n"
	      "  check                     validate the config file\n"
	      "  user add NAME [PASSWORD]  add a SIP account or change its "
	      "password\n"
	      "                            (prompts when PASSWORD is left "
	      "out)\n"
	      "  user del NAME             delete a SIP account\n"
	      "  user list                 list SIP accounts\n"
	      "  user set NAME KEY=VALUE.. call features: forward_always,\n"
	      "                            also_ring, forward_busy, forward_noanswer,\n"
	      "                            forward_noanswer_after, forward_unreachable\n"
	      "                            (an empty VALUE removes the key)\n"
	      "  user show NAME            a user's call features\n"
	      "  group set NUMBER KEY=VALUE..  hunt group: members, mode\n"
	      "                            (sequential|parallel), ring_time, final\n"
	      "  group del NUMBER | group list | group show NUMBER\n"
	      "  show registrations [--json]\n"
	      "  show calls [--json]\n"
	      "  show alarms [--json]      query the running daemon\n"
	      "  show ladder [CALL-ID] [--json] [--full]\n"
	      "                            recent calls, or one call's SIP "
	      "messages\n"
	      "  reload                    make the daemon re-read its config\n"
	      "  loglevel LEVEL            set the daemon's log level (error, "
	      "warning,\n"
	      "                            notice, info, debug)\n"
	      "  doctor                    diagnose the setup\n"
	      "  help                      this text\n"
	      "\n"
	      "-c FILE defaults to ./pinhole.conf, then "
	      "/etc/pinhole/pinhole.conf.\n"
	      "See docs/pinhole.conf.5.md for the config keys.\n", out);
}

const char *cli_default_conf_path(void)
{
	if (access("pinhole.conf", F_OK) == 0)
		return "pinhole.conf";
	if (access("/etc/pinhole/pinhole.conf", F_OK) == 0)
		return "/etc/pinhole/pinhole.conf";
	return "pinhole.conf";
}

/* ---------------------------------------------------------------------- */
/* Helpers */

/* strerror with a lower-case first letter, to sit inside a sentence. */
static const char *reason(int err, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s", strerror(err));
	if (buf[0] >= 'A' && buf[0] <= 'Z' &&
	    !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

/*
 * Load the config for a command that depends on it. strict: any error
 * stops the command (accounts depend on the realm and the store path);
 * otherwise errors are shown and the command goes on with what was read
 * (a broken file must not stop `show` from reaching a running daemon).
 */
static int load_conf(const char *path, struct conf *conf, bool strict)
{
	struct conf_errors errs;
	int rc = conf_load(conf, path, &errs);

	if (rc == 0)
		return 0;
	conf_errors_print(&errs, path, stderr);
	if (strict) {
		fprintf(stderr, "pinhole: fix %s first (pinhole -c %s check)\n",
			path, path);
		return 1;
	}
	fprintf(stderr, "pinhole: going on with the admin address %s\n",
		conf->admin_http[0] ? conf->admin_http : "(off)");
	return 0;
}

/* Copy for display: control characters become '?', long text is cut. */
static char *cell_dup(const char *s, size_t max)
{
	size_t len = strlen(s), n = len > max ? max : len;
	char *out = malloc(n + 4);

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (len > max) {
		memcpy(out + n - 3, "...", 3);
	}
	out[n] = '\0';
	return out;
}

static void format_time(long long t, char *buf, size_t cap)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || !localtime_r(&tt, &tm) ||
	    !strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, cap, "%lld", t);
}

/* A JSON value as one table cell; missing or null is "-". */
static char *cell_json(json_t *v, bool is_time, const char *suffix)
{
	char buf[128], *dump, *out;

	if (!v || json_is_null(v))
		return cell_dup("-", CELL_MAX);
	if (json_is_string(v))
		return cell_dup(json_string_value(v), CELL_MAX);
	if (json_is_integer(v)) {
		long long n = (long long)json_integer_value(v);

		if (is_time)
			format_time(n, buf, sizeof(buf));
		else
			snprintf(buf, sizeof(buf), "%lld%s", n, suffix);
		return cell_dup(buf, CELL_MAX);
	}
	if (json_is_real(v)) {
		snprintf(buf, sizeof(buf), "%g", json_real_value(v));
		return cell_dup(buf, CELL_MAX);
	}
	if (json_is_boolean(v))
		return cell_dup(json_is_true(v) ? "yes" : "no", CELL_MAX);
	dump = json_dumps(v, JSON_COMPACT);
	out = cell_dup(dump ? dump : "?", CELL_MAX);
	free(dump);
	return out;
}

/* ---------------------------------------------------------------------- */
/* Tables */

struct column {
	const char *key;	/* JSON key */
	const char *title;
	bool is_time;		/* unix seconds shown as a date */
	const char *suffix;	/* after integers, such as "s" */
};

struct table {
	const struct column *cols;
	unsigned ncols;
	char **cells;		/* nrows * ncols */
	unsigned nrows;
	size_t width[16];
};

static int table_fill(struct table *t, json_t *rows)
{
	size_t i;
	json_t *row;

	t->nrows = (unsigned)json_array_size(rows);
	t->cells = calloc((size_t)t->nrows * t->ncols + 1, sizeof(char *));
	if (!t->cells)
		return ENOMEM;
	for (unsigned c = 0; c < t->ncols; c++)
		t->width[c] = strlen(t->cols[c].title);
	json_array_foreach(rows, i, row) {
		for (unsigned c = 0; c < t->ncols; c++) {
			const struct column *col = &t->cols[c];
			json_t *v = json_is_object(row) ?
				    json_object_get(row, col->key) : NULL;
			char *cell = cell_json(v, col->is_time,
					       col->suffix ? col->suffix : "");
			size_t len;

			if (!cell)
				return ENOMEM;
			t->cells[i * t->ncols + c] = cell;
			len = strlen(cell);
			if (len > t->width[c])
				t->width[c] = len;
		}
	}
	return 0;
}

static void table_free(struct table *t)
{
	if (!t->cells)
		return;
	for (size_t i = 0; i < (size_t)t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
}

static void table_print_row(const struct table *t, char *const *cells)
{
	for (unsigned c = 0; c < t->ncols; c++) {
		if (c + 1 == t->ncols)
			printf("%s\n", cells[c]);
		else
			printf("%-*s  ", (int)t->width[c], cells[c]);
	}
}

static void table_print_header(const struct table *t)
{
	char *titles[16];

	for (unsigned c = 0; c < t->ncols; c++)
		titles[c] = (char *)t->cols[c].title;
	table_print_row(t, titles);
}

/* ---------------------------------------------------------------------- */
/* Talking to the daemon */

/*
 * One request to the admin API. Prints why it failed (on stderr) and
 * returns 1, or 0 with *body (to free) and *status.
 */
static int daemon_request(const struct conf *conf, const char *method,
			  const char *path, int *status, char **body,
			  bool quiet)
{
	char why[128];
	int err;

	if (!conf->admin_http[0]) {
		if (!quiet)
			fprintf(stderr, "pinhole: the admin API is off ([admin] "
				"http is empty in %s): set it, such as http = "
				"127.0.0.1:8080, and restart the daemon\n",
				conf->path);
		return 1;
	}
	err = admin_client_request(conf->admin_http, method, path,
				   CLI_TIMEOUT_MS, status, body);
	if (err) {
		if (!quiet)
			fprintf(stderr, "pinhole: cannot reach the daemon at %s "
				"(%s): is it running? ([admin] http in %s)\n",
				conf->admin_http, reason(err, why, sizeof(why)),
				conf->path);
		return 1;
	}
	return 0;
}

/* The daemon's {"message": ...} or {"error": ...}, else the body. */
static void print_message(FILE *out, const char *body,
			  const char *fallback)
{
	json_t *json = json_loads(body, 0, NULL);
	const char *msg = NULL;

	if (json_is_object(json)) {
		msg = json_string_value(json_object_get(json, "message"));
		if (!msg || !*msg)
			msg = json_string_value(json_object_get(json, "error"));
	}
	if (msg && *msg) {
		char *clean = cell_dup(msg, 4096);

		fprintf(out, "%s%s\n", out == stderr ? "pinhole: " : "",
			clean ? clean : msg);
		free(clean);
	} else if (json || !*body) {
		if (fallback)
			fprintf(out, "%s\n", fallback);
	} else {
		char *clean = cell_dup(body, 4096);

		fprintf(out, "%s\n", clean ? clean : "");
		free(clean);
	}
	json_decref(json);
}

/* The list in a response: the top-level array, or the first array in a
 * top-level object (such as {"registrations": [...]}). */
static json_t *find_rows(json_t *json)
{
	const char *key;
	json_t *v;

	if (json_is_array(json))
		return json;
	if (json_is_object(json))
		json_object_foreach(json, key, v)
			if (json_is_array(v))
				return v;
	return NULL;
}

/* GET api from the daemon: with as_json, print the body as it came;
 * else parse it into *json (NULL with *jerr on bad JSON). Returns 1 when
 * the daemon could not answer 200 (said on stderr; quiet_404 leaves the
 * daemon's own message alone for a 404). */
static int get_api(const struct conf *conf, const char *api, bool as_json,
		   bool quiet_404, json_t **json, json_error_t *jerr)
{
	char *body = NULL;
	int status = 0;

	*json = NULL;
	if (daemon_request(conf, "GET", api, &status, &body, false))
		return 1;
	if (status != 200) {
		if (status != 404 || !quiet_404)
			fprintf(stderr, "pinhole: the daemon answered %d to "
				"GET %s\n", status, api);
		print_message(stderr, body, NULL);
		free(body);
		return 1;
	}
	if (as_json) {
		size_t len = strlen(body);

		printf("%s%s", body, len && body[len - 1] == '\n' ? "" : "\n");
	} else {
		*json = json_loads(body, 0, jerr);
	}
	free(body);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* show */

static const struct column reg_cols[] = {
	{ "aor", "AOR", false, NULL },
	{ "contact", "CONTACT", false, NULL },
	{ "public", "PUBLIC", false, NULL },
	{ "transport", "TRANSPORT", false, NULL },
	{ "local", "LOCAL", false, NULL },
	{ "private_contact", "PRIVATE CONTACT", false, NULL },
	{ "verdict", "VERDICT", false, NULL },
	{ "nat_behaviour", "NAT", false, NULL },
	{ "expires", "EXPIRES", false, "s" },
	{ "node", "NODE", false, NULL },
	{ "q", "Q", false, NULL },
	{ "user_agent", "USER AGENT", false, NULL },
};

static const struct column call_cols[] = {
	{ "id", "ID", false, NULL },
	{ "state", "STATE", false, NULL },
	{ "legs", "LEGS", false, NULL },
	{ "start", "START", true, NULL },
};

static const struct column alarm_cols[] = {
	{ "id", "ID", false, NULL },
	{ "time", "TIME", true, NULL },
	{ "severity", "SEVERITY", false, NULL },
	{ "code", "CODE", false, NULL },
	{ "subject", "SUBJECT", false, NULL },
	{ "text", "TEXT", false, NULL },
};

#define NCOLS(a) (unsigned)(sizeof(a) / sizeof((a)[0]))

/* A call's legs, one indented line each: "leg 1: key=value ...". */
static void print_legs(json_t *legs)
{
	size_t i;
	json_t *leg;

	json_array_foreach(legs, i, leg) {
		printf("    leg %zu:", i + 1);
		if (json_is_object(leg)) {
			const char *key;
			json_t *v;

			json_object_foreach(leg, key, v) {
				char *k = cell_dup(key, 40);
				char *cell = cell_json(v, false, "");

				printf(" %s=%s", k ? k : "?", cell ? cell : "?");
				free(k);
				free(cell);
			}
		} else {
			char *cell = cell_json(leg, false, "");

			printf(" %s", cell ? cell : "?");
			free(cell);
		}
		printf("\n");
	}
}

static int print_table(const char *what, json_t *rows)
{
	struct table t = { 0 };
	bool calls = strcmp(what, "calls") == 0;
	size_t i;
	json_t *row;
	int err;

	if (strcmp(what, "registrations") == 0) {
		t.cols = reg_cols;
		t.ncols = NCOLS(reg_cols);
	} else if (calls) {
		t.cols = call_cols;
		t.ncols = NCOLS(call_cols);
	} else {
		t.cols = alarm_cols;
		t.ncols = NCOLS(alarm_cols);
	}
	if (json_array_size(rows) == 0) {
		printf("no %s\n", what);
		return 0;
	}
	if (calls) {
		/* LEGS shows how many; the legs follow on their own lines. */
		json_array_foreach(rows, i, row) {
			json_t *legs = json_object_get(row, "legs");

			if (!json_is_array(legs))
				continue;
			/* "_legs" takes a reference before "legs" drops its. */
			json_object_set(row, "_legs", legs);
			json_object_set_new(row, "legs", json_integer(
				(json_int_t)json_array_size(legs)));
		}
	}
	err = table_fill(&t, rows);
	if (err) {
		table_free(&t);
		fprintf(stderr, "pinhole: %s\n", strerror(err));
		return 1;
	}
	table_print_header(&t);
	for (unsigned r = 0; r < t.nrows; r++) {
		table_print_row(&t, &t.cells[(size_t)r * t.ncols]);
		if (calls) {
			json_t *legs = json_object_get(
				json_array_get(rows, r), "_legs");

			if (json_is_array(legs))
				print_legs(legs);
		}
	}
	table_free(&t);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* show ladder */

/* "HH:MM:SS.mmm" of unix milliseconds (the date with_date). */
static void format_ms(long long ms, bool with_date, char *buf, size_t cap)
{
	time_t tt = (time_t)(ms / 1000);
	struct tm tm;
	char hms[32];

	if (ms <= 0 || !localtime_r(&tt, &tm) ||
	    !strftime(hms, sizeof(hms), with_date ? "%Y-%m-%d %H:%M:%S" :
		      "%H:%M:%S", &tm)) {
		snprintf(buf, cap, "%lld", ms);
		return;
	}
	snprintf(buf, cap, "%s.%03lld", hms, ms % 1000);
}

/* A string member for display (control characters replaced); "-" when
 * absent. Free the result. */
static char *member(json_t *o, const char *key, size_t max)
{
	const char *v = json_string_value(json_object_get(o, key));

	return cell_dup(v ? v : "-", max);
}

/* Percent-encode everything but RFC 3986 unreserved characters. */
static void url_encode(const char *in, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *in && o + 4 < cap; in++) {
		unsigned char c = (unsigned char)*in;

		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}

/* Recent ladders, newest first: time, kind, count, Call-ID, first line. */
static void print_ladder_list(json_t *rows)
{
	size_t i;
	json_t *row;

	if (json_array_size(rows) == 0) {
		printf("no ladders (none recorded yet, or [admin] "
		       "ladder_calls = 0)\n");
		return;
	}
	printf("%-23s  %-5s  %4s  %-36s  %s\n", "TIME", "KIND", "MSGS",
	       "CALL-ID", "FIRST LINE");
	json_array_foreach(rows, i, row) {
		char when[48];
		char *kind = member(row, "kind", 8);
		char *cid = member(row, "call_id", 200);
		char *first = member(row, "first_line", 120);

		format_ms((long long)json_integer_value(
				  json_object_get(row, "time")), true, when,
			  sizeof(when));
		printf("%-23s  %-5s  %4lld  %-36s  %s\n", when, kind ? kind : "",
		       (long long)json_integer_value(
			       json_object_get(row, "messages")),
		       cid ? cid : "", first ? first : "");
		free(kind);
		free(cid);
		free(first);
	}
}

/* The whole text of a message, indented, control characters replaced
 * line by line (a phone must not reach the terminal). */
static void print_message_text(const char *text)
{
	while (text && *text) {
		size_t n = strcspn(text, "\r\n");
		char *line = malloc(n + 1);

		char *clean = NULL;

		if (line) {
			memcpy(line, text, n);
			line[n] = '\0';
			clean = cell_dup(line, n);
		}
		printf("        | %s\n", clean ? clean : "");
		free(clean);
		free(line);
		text += n;
		if (*text == '\r')
			text++;
		if (*text == '\n')
			text++;
	}
}

/*
 * One ladder, a line per message:
 *   18:40:01.123  udp  127.0.0.1:5060 <- 127.0.0.1:40000  INVITE sip:...
 * "<-" we received from the remote, "->" we sent to it. The address
 * columns are padded to the widest so the arrows line up.
 */
static void print_ladder(json_t *ld, bool full)
{
	json_t *msgs = json_object_get(ld, "messages"), *m;
	size_t i, lw = 5, rw = 6;
	long long dropped = (long long)json_integer_value(
		json_object_get(ld, "dropped"));
	long long dropped_at = (long long)json_integer_value(
		json_object_get(ld, "dropped_at"));
	char *cid = member(ld, "call_id", 400);
	char when[48];

	format_ms((long long)json_integer_value(json_object_get(ld, "time")),
		  true, when, sizeof(when));
	printf("Call-ID %s  (%s, %zu messages kept, %lld dropped, first at "
	       "%s)\n", cid ? cid : "?",
	       json_string_value(json_object_get(ld, "kind")) ?
	       json_string_value(json_object_get(ld, "kind")) : "?",
	       json_array_size(msgs), dropped, when);
	free(cid);
	json_array_foreach(msgs, i, m) {
		const char *l = json_string_value(json_object_get(m, "local"));
		const char *r = json_string_value(json_object_get(m, "remote"));

		if (l && strlen(l) > lw)
			lw = strlen(l);
		if (r && strlen(r) > rw)
			rw = strlen(r);
	}
	printf("%-12s  %-5s %-*s    %-*s  %s\n", "TIME", "PROTO", (int)lw,
	       "LOCAL", (int)rw, "REMOTE", "FIRST LINE");
	json_array_foreach(msgs, i, m) {
		bool out = strcmp(json_string_value(json_object_get(m, "dir")) ?
				  json_string_value(json_object_get(m, "dir")) :
				  "", "out") == 0;
		char *proto = member(m, "proto", 8);
		char *l = member(m, "local", 64), *r = member(m, "remote", 64);
		char *first = member(m, "first_line", 200);

		if (dropped && (long long)i == dropped_at)
			printf("%-12s  ... %lld messages not kept ...\n", "",
			       dropped);
		format_ms((long long)json_integer_value(
				  json_object_get(m, "t")), false, when,
			  sizeof(when));
		printf("%-12s  %-5s %-*s %s %-*s  %s%s\n", when,
		       proto ? proto : "", (int)lw, l ? l : "",
		       out ? "->" : "<-", (int)rw, r ? r : "",
		       first ? first : "",
		       json_is_true(json_object_get(m, "truncated")) ?
		       " (cut)" : "");
		if (full)
			print_message_text(json_string_value(
				json_object_get(m, "text")));
		free(proto);
		free(l);
		free(r);
		free(first);
	}
}

/* show ladder [CALL-ID] [--json] [--full] */
static int cmd_show_ladder(int argc, char **argv, const char *path)
{
	const char *call_id = NULL;
	bool as_json = false, full = false;
	struct conf conf;
	char api[1200], enc[1024];
	json_t *json;
	json_error_t jerr;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			as_json = true;
		else if (strcmp(argv[i], "--full") == 0)
			full = true;
		else if (!call_id && strlen(argv[i]) < 256)
			call_id = argv[i];
		else
			call_id = "";	/* too many, or too long */
	}
	if (call_id && !*call_id) {
		fprintf(stderr, "pinhole: usage: show ladder [CALL-ID] "
			"[--json] [--full] (a Call-ID of at most 255 "
			"characters)\n");
		return 2;
	}
	if (load_conf(path, &conf, false))
		return 1;
	if (call_id) {
		url_encode(call_id, enc, sizeof(enc));
		snprintf(api, sizeof(api), "/api/calls/ladder?call_id=%s", enc);
	} else {
		snprintf(api, sizeof(api), "/api/ladders");
	}
	if (get_api(&conf, api, as_json, true, &json, &jerr))
		return 1;
	if (as_json)
		return 0;
	if (!json || (call_id ? !json_is_object(json) : !json_is_array(json))) {
		fprintf(stderr, "pinhole: the daemon's answer to GET %s is not "
			"what was expected (%s); try --json\n", api,
			json ? "wrong type" : jerr.text);
		json_decref(json);
		return 1;
	}
	if (call_id)
		print_ladder(json, full);
	else
		print_ladder_list(json);
	json_decref(json);
	return 0;
}

static int cmd_show(int argc, char **argv, const char *path)
{
	const char *what = NULL;
	bool as_json = false;
	struct conf conf;
	char api[64];
	json_t *json, *rows;
	json_error_t jerr;
	int rc;

	if (argc > 1 && strcmp(argv[1], "ladder") == 0)
		return cmd_show_ladder(argc - 1, argv + 1, path);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			as_json = true;
		else if (!what)
			what = argv[i];
		else
			what = "";	/* too many */
	}
	if (!what || (strcmp(what, "registrations") != 0 &&
		      strcmp(what, "calls") != 0 &&
		      strcmp(what, "alarms") != 0)) {
		fprintf(stderr, "pinhole: usage: show registrations|calls|"
			"alarms [--json] | show ladder [CALL-ID] [--json] "
			"[--full]\n");
		return 2;
	}
	if (load_conf(path, &conf, false))
		return 1;
	snprintf(api, sizeof(api), "/api/%s", what);
	if (get_api(&conf, api, as_json, false, &json, &jerr))
		return 1;
	if (as_json)
		return 0;
	rows = find_rows(json);
	if (!rows) {
		fprintf(stderr, "pinhole: the daemon's answer to GET %s is not "
			"a JSON list (%s); try --json\n", api,
			json ? "no array in it" : jerr.text);
		json_decref(json);
		return 1;
	}
	rc = print_table(what, rows);
	json_decref(json);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* reload, loglevel */

static int cmd_reload(int argc, char **argv, const char *path)
{
	struct conf conf;
	char *body;
	int status;

	if (argc != 1) {
		fprintf(stderr, "pinhole: usage: reload\n");
		return 2;
	}
	if (load_conf(path, &conf, false))
		return 1;
	if (daemon_request(&conf, "POST", "/api/reload", &status, &body,
			   false))
		return 1;
	print_message(status == 200 ? stdout : stderr, body,
		      status == 200 ? "reloaded" : "reload failed");
	free(body);
	return status == 200 ? 0 : 1;
}

static int cmd_loglevel(int argc, char **argv, const char *path)
{
	enum log_level level;
	struct conf conf;
	char api[64], *body;
	int status;

	if (argc != 2) {
		fprintf(stderr, "pinhole: usage: loglevel error|warning|notice|"
			"info|debug\n");
		return 2;
	}
	if (log_level_parse(argv[1], &level) != 0) {
		fprintf(stderr, "pinhole: unknown log level '%s': expected "
			"error, warning, notice, info or debug\n", argv[1]);
		return 2;
	}
	if (load_conf(path, &conf, false))
		return 1;
	snprintf(api, sizeof(api), "/api/loglevel?level=%s",
		 log_level_name(level));
	if (daemon_request(&conf, "POST", api, &status, &body, false))
		return 1;
	if (status == 200) {
		printf("log level is now %s\n", log_level_name(level));
	} else {
		print_message(stderr, body,
			      "the daemon refused the log level");
	}
	free(body);
	return status == 200 ? 0 : 1;
}

/* ---------------------------------------------------------------------- */
/* check */

static bool is_wildcard(const char *ip)
{
	return strcmp(ip, "0.0.0.0") == 0 || strcmp(ip, "::") == 0;
}

/*
 * This host's own addresses should be inside intranet_subnets: if not, the
 * LAN the server sits on is not "local" and LAN phones would be treated as
 * remote (relayed, Contact rewritten). Loopback and IPv6 link-local
 * addresses say nothing about the LAN and are skipped.
 */
static void check_own_addresses(const struct conf *conf,
				struct conf_errors *errs)
{
	struct ifaddrs *list = NULL;
	char seen[256] = "";
	bool any = false, inside = false;

	if (conf->nsubnets == 0)
		return;		/* already reported by conf_load */
	if (!is_wildcard(conf->listen)) {
		struct sockaddr_storage ss = { 0 };
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		if (inet_pton(AF_INET, conf->listen, &sin->sin_addr) == 1)
			ss.ss_family = AF_INET;
		else if (inet_pton(AF_INET6, conf->listen,
				   &sin6->sin6_addr) == 1)
			ss.ss_family = AF_INET6;
		else
			return;
		if (!conf_is_intranet_addr(conf, &ss))
			conf_errors_add(errs, conf->subnets_line, true,
					"this server's address (%s, [sip] "
					"listen) is not in intranet_subnets; "
					"LAN phones would be treated as remote",
					conf->listen);
		return;
	}
	if (getifaddrs(&list) != 0)
		return;
	for (struct ifaddrs *ifa = list; ifa; ifa = ifa->ifa_next) {
		struct sockaddr_storage ss = { 0 };
		char ip[INET6_ADDRSTRLEN];
		const void *raw;

		if (!ifa->ifa_addr || !(ifa->ifa_flags & IFF_UP) ||
		    (ifa->ifa_flags & IFF_LOOPBACK))
			continue;
		if (ifa->ifa_addr->sa_family == AF_INET) {
			memcpy(&ss, ifa->ifa_addr, sizeof(struct sockaddr_in));
			raw = &((struct sockaddr_in *)&ss)->sin_addr;
		} else if (ifa->ifa_addr->sa_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			memcpy(&ss, ifa->ifa_addr, sizeof(*s6));
			if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr))
				continue;
			raw = &s6->sin6_addr;
		} else {
			continue;
		}
		any = true;
		if (conf_is_intranet_addr(conf, &ss))
			inside = true;
		if (inet_ntop(ss.ss_family, raw, ip, sizeof(ip)) &&
		    strlen(seen) + strlen(ip) + 8 < sizeof(seen)) {
			if (*seen)
				strcat(seen, ", ");
			strcat(seen, ip);
		}
	}
	freeifaddrs(list);
	if (any && !inside)
		conf_errors_add(errs, conf->subnets_line, true,
				"this server's addresses (%s) are not in "
				"intranet_subnets; LAN phones would be treated "
				"as remote", seen);
}

/* Shared by check and doctor; returns the number of errors. */
static unsigned run_check(const char *path, bool *opened)
{
	struct conf conf;
	struct conf_errors errs;
	int rc = conf_load(&conf, path, &errs);

	*opened = rc == 0 || rc == EINVAL;
	if (*opened)
		check_own_addresses(&conf, &errs);
	conf_errors_print(&errs, path, stdout);
	if (errs.nerrors == 0)
		printf("%s: OK\n", path);
	else
		printf("%s: %u error(s)\n", path, errs.nerrors);
	return errs.nerrors;
}

static int cmd_check(int argc, char **argv, const char *path)
{
	bool opened;

	if (argc != 1) {
		fprintf(stderr, "pinhole: usage: pinhole [-c FILE] check\n");
		return 2;
	}
	return run_check(path, &opened) ? 1 : 0;
}

/* ---------------------------------------------------------------------- */
/* user */

/* SIP user part characters (RFC 3261 unreserved + user-unreserved),
 * without escapes: what a phone's account name can be. */
static bool valid_user_name(const char *name)
{
	if (!*name || strlen(name) >= sizeof(((struct store_user *)0)->name))
		return false;
	for (const char *c = name; *c; c++)
		if (!isalnum((unsigned char)*c) &&
		    !strchr("-_.!~*'()&=+$,;?/", *c))
			return false;
	return true;
}

/* One line from stdin, echo off when it is a terminal. 0, or an errno. */
static int read_secret(const char *prompt, char *buf, size_t cap)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO);
	bool echo_off = false;
	size_t len;
	char *got;

	if (tty) {
		fputs(prompt, stderr);
		fflush(stderr);
		if (tcgetattr(STDIN_FILENO, &old) == 0) {
			quiet = old;
			quiet.c_lflag &= ~(tcflag_t)ECHO;
			quiet.c_lflag |= ECHONL;
			echo_off = tcsetattr(STDIN_FILENO, TCSAFLUSH,
					     &quiet) == 0;
		}
	}
	got = fgets(buf, (int)cap, stdin);
	if (echo_off)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	if (!got)
		return EIO;
	len = strlen(buf);
	if (len == cap - 1 && buf[len - 1] != '\n')
		return E2BIG;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	return 0;
}

static int get_password(const char *name, const char *realm, char *pw,
			size_t cap)
{
	char prompt[256], again[256];
	int err;

	snprintf(prompt, sizeof(prompt), "password for %s (realm %s): ", name,
		 realm);
	err = read_secret(prompt, pw, cap);
	if (err) {
		fprintf(stderr, "pinhole: %s\n", err == E2BIG ?
			"the password is too long" : "no password given");
		return 1;
	}
	if (isatty(STDIN_FILENO)) {
		err = read_secret("again: ", again, sizeof(again));
		if (err || strcmp(pw, again) != 0) {
			explicit_bzero(again, sizeof(again));
			fprintf(stderr, "pinhole: the passwords differ; nothing "
				"changed\n");
			return 1;
		}
		explicit_bzero(again, sizeof(again));
	}
	return 0;
}

static int open_store(const struct conf *conf, struct store **store)
{
	char why[128];
	int err = store_open(store, conf->store_path);

	if (err)
		fprintf(stderr, "pinhole: cannot open the store %s (%s): "
			"check [store] path in %s\n", conf->store_path,
			reason(err, why, sizeof(why)), conf->path);
	return err ? 1 : 0;
}

static int user_add(int argc, char **argv, const struct conf *conf)
{
	struct store_user user = { 0 }, old;
	struct store *store;
	char pw[256], ha1[65], why[128];
	bool existed;
	int err;

	if (argc == 4) {
		if (strlen(argv[3]) >= sizeof(pw)) {
			fprintf(stderr, "pinhole: the password is too long\n");
			return 1;
		}
		snprintf(pw, sizeof(pw), "%s", argv[3]);
		if (isatty(STDERR_FILENO))
			fprintf(stderr, "pinhole: note: a password on the command "
				"line shows in ps and in shell history; leave "
				"it out to be asked for it\n");
	} else if (get_password(argv[2], conf->domain, pw, sizeof(pw))) {
		return 1;
	}
	if (!*pw) {
		fprintf(stderr, "pinhole: empty password refused\n");
		return 1;
	}
	if (strlen(pw) < 8)
		fprintf(stderr, "pinhole: warning: a password under 8 "
			"characters is easy to guess from a captured "
			"REGISTER\n");

	snprintf(user.name, sizeof(user.name), "%s", argv[2]);
	snprintf(user.realm, sizeof(user.realm), "%s", conf->domain);
	digest_ha1(DIGEST_MD5, user.name, user.realm, pw, ha1);
	memcpy(user.ha1_md5, ha1, sizeof(user.ha1_md5) - 1);	/* 32 hex */
	digest_ha1(DIGEST_SHA256, user.name, user.realm, pw, ha1);
	memcpy(user.ha1_sha256, ha1, sizeof(user.ha1_sha256));	/* 64 + NUL */
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(ha1, sizeof(ha1));

	if (open_store(conf, &store)) {
		explicit_bzero(&user, sizeof(user));
		return 1;
	}
	existed = store_user_get(store, user.name, &old) == 0;
	err = store_user_put(store, &user);
	store_close(store);
	explicit_bzero(&user, sizeof(user));
	if (err) {
		fprintf(stderr, "pinhole: cannot save user %s (%s)\n", argv[2],
			reason(err, why, sizeof(why)));
		return 1;
	}
	printf("%s %s (realm %s)\n", existed ? "changed the password of" :
	       "added", argv[2], conf->domain);
	return 0;
}

static int user_del(const char *name, const struct conf *conf)
{
	struct store *store;
	char why[128];
	int err;

	if (open_store(conf, &store))
		return 1;
	err = store_user_del(store, name);
	store_close(store);
	if (err == ENOENT) {
		fprintf(stderr, "pinhole: no user %s in %s\n", name,
			conf->store_path);
		return 1;
	}
	if (err) {
		fprintf(stderr, "pinhole: cannot delete user %s (%s)\n", name,
			reason(err, why, sizeof(why)));
		return 1;
	}
	printf("deleted %s\n", name);
	return 0;
}

struct user_rows {
	json_t *rows;
	const char *domain;
	unsigned other_realm;
};

static void collect_user(const struct store_user *user, void *arg)
{
	struct user_rows *ur = arg;
	bool other = strcmp(user->realm, ur->domain) != 0;

	if (other)
		ur->other_realm++;
	json_array_append_new(ur->rows, json_pack("{s:s,s:s+}", "name",
		user->name, "realm", user->realm, other ? " *" : ""));
}

static const struct column user_cols[] = {
	{ "name", "NAME", false, NULL },
	{ "realm", "REALM", false, NULL },
};

static int user_list(const struct conf *conf)
{
	struct user_rows ur = { json_array(), conf->domain, 0 };
	struct table t = { user_cols, NCOLS(user_cols), NULL, 0, { 0 } };
	struct store *store;
	char why[128];
	int err;

	if (!ur.rows || open_store(conf, &store)) {
		json_decref(ur.rows);
		return 1;
	}
	err = store_user_foreach(store, collect_user, &ur);
	store_close(store);
	if (err) {
		fprintf(stderr, "pinhole: cannot list users (%s)\n",
			reason(err, why, sizeof(why)));
		json_decref(ur.rows);
		return 1;
	}
	if (json_array_size(ur.rows) == 0) {
		printf("no users (add one with: pinhole user add NAME)\n");
		json_decref(ur.rows);
		return 0;
	}
	err = table_fill(&t, ur.rows);
	if (!err) {
		table_print_header(&t);
		for (unsigned r = 0; r < t.nrows; r++)
			table_print_row(&t, &t.cells[(size_t)r * t.ncols]);
	}
	table_free(&t);
	json_decref(ur.rows);
	if (ur.other_realm)
		printf("* hashed for another realm than [sip] domain %s: "
		       "these users cannot log in until their password is set "
		       "again (pinhole user add NAME)\n", conf->domain);
	return err ? 1 : 0;
}

/* ---------------------------------------------------------------------- */
/* call features and hunt groups (features table) */

static bool key_known(const char *const *keys, const char *key, size_t len)
{
	for (; *keys; keys++)
		if (strlen(*keys) == len && strncmp(*keys, key, len) == 0)
			return true;
	return false;
}

static void print_feature(const char *subject, const char *key,
			  const char *value, void *arg)
{
	(void)arg;
	printf("%-10s %-24s %s\n", strncmp(subject, "group:", 6) == 0 ?
	       subject + 6 : subject, key, value);
}

/* set SUBJECT KEY=VALUE...: every pair checked before anything is written */
static int features_set(const struct conf *conf, const char *subject,
			const char *const *keys, int argc, char **argv)
{
	struct store *store;
	int err = 0;

	for (int i = 0; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		if (!eq || !key_known(keys, argv[i], (size_t)(eq - argv[i]))) {
			fprintf(stderr, "pinhole: '%s' is not KEY=VALUE with a "
				"known key; keys:", argv[i]);
			for (const char *const *k = keys; *k; k++)
				fprintf(stderr, " %s", *k);
			fprintf(stderr, "\n");
			return 2;
		}
	}
	if (open_store(conf, &store))
		return 1;
	for (int i = 0; i < argc && !err; i++) {
		char key[64];
		const char *eq = strchr(argv[i], '=');
		snprintf(key, sizeof(key), "%.*s", (int)(eq - argv[i]), argv[i]);
		err = store_feature_set(store, subject, key, eq + 1);
	}
	if (!err)
		store_feature_foreach(store, subject, print_feature, NULL);
	store_close(store);
	return err ? 1 : 0;
}

static void collect_group(const char *subject, const char *key,
			  const char *value, void *arg)
{
	(void)value;
	if (strncmp(subject, "group:", 6) == 0 && strcmp(key, "members") == 0)
		print_feature(subject, key, value, arg);
}

static void delete_key(const char *subject, const char *key,
		       const char *value, void *arg)
{
	(void)value;
	store_feature_set(arg, subject, key, "");
}

static int cmd_group(int argc, char **argv, const char *path)
{
	struct conf conf;
	struct store *store;
	char subject[160];
	const char *sub = argc > 1 ? argv[1] : "";
	int err;

	if (!((strcmp(sub, "set") == 0 && argc >= 4) ||
	      ((strcmp(sub, "del") == 0 || strcmp(sub, "show") == 0) && argc == 3) ||
	      (strcmp(sub, "list") == 0 && argc == 2))) {
		fprintf(stderr, "pinhole: usage: group set NUMBER KEY=VALUE... | "
			"group del NUMBER | group show NUMBER | group list\n");
		return 2;
	}
	if (load_conf(path, &conf, true))
		return 1;
	if (argc >= 3)
		snprintf(subject, sizeof(subject), "group:%s", argv[2]);
	if (strcmp(sub, "set") == 0)
		return features_set(&conf, subject, features_group_keys,
				    argc - 3, argv + 3);
	if (open_store(&conf, &store))
		return 1;
	if (strcmp(sub, "list") == 0)
		err = store_feature_foreach(store, NULL, collect_group, NULL);
	else if (strcmp(sub, "show") == 0)
		err = store_feature_foreach(store, subject, print_feature, NULL);
	else
		err = store_feature_foreach(store, subject, delete_key, store);
	store_close(store);
	return err ? 1 : 0;
}

static int cmd_user(int argc, char **argv, const char *path)
{
	struct conf conf;
	const char *sub = argc > 1 ? argv[1] : "";
	bool add = strcmp(sub, "add") == 0, del = strcmp(sub, "del") == 0;
	bool list = strcmp(sub, "list") == 0;

	if ((strcmp(sub, "set") == 0 && argc >= 4) ||
	    (strcmp(sub, "show") == 0 && argc == 3)) {
		struct store *store;
		int err;

		if (load_conf(path, &conf, true))
			return 1;
		if (strcmp(sub, "set") == 0)
			return features_set(&conf, argv[2], features_user_keys,
					    argc - 3, argv + 3);
		if (open_store(&conf, &store))
			return 1;
		err = store_feature_foreach(store, argv[2], print_feature, NULL);
		store_close(store);
		return err ? 1 : 0;
	}
	if (!((add && (argc == 3 || argc == 4)) || (del && argc == 3) ||
	      (list && argc == 2))) {
		fprintf(stderr, "pinhole: usage: user add NAME [PASSWORD] | "
			"user del NAME | user list\n");
		return 2;
	}
	if ((add || del) && !valid_user_name(argv[2])) {
		fprintf(stderr, "pinhole: '%s' is not a valid user name: use "
			"letters, digits and -_.!~*'()&=+$,;?/ (no ':', '@' or "
			"blanks), at most %zu characters\n", argv[2],
			sizeof(((struct store_user *)0)->name) - 1);
		return 1;
	}
	if (load_conf(path, &conf, true))
		return 1;
	if (add)
		return user_add(argc, argv, &conf);
	if (del)
		return user_del(argv[2], &conf);
	return user_list(&conf);
}

/* ---------------------------------------------------------------------- */
/* doctor */

static void print_status(json_t *status)
{
	const char *key;
	json_t *v;

	if (!json_is_object(status)) {
		printf("  (status is not a JSON object)\n");
		return;
	}
	json_object_foreach(status, key, v) {
		char *k = cell_dup(key, 40);
		char *cell = cell_json(v, false, "");

		printf("  %-20s %s\n", k ? k : "?", cell ? cell : "?");
		free(k);
		free(cell);
	}
}

/* Findings about the registered phones, each with what to do. */
static void doctor_phones(const char *body)
{
	json_t *rows = json_loads(body, 0, NULL), *b;
	unsigned counts[4] = { 0 }, findings = 0;
	static const char *const verdicts[] = { "local", "public", "behind-nat",
						"nonat-suspect" };
	size_t i;

	printf("\n== phones\n");
	if (!json_is_array(rows)) {
		printf("  (GET /api/registrations did not answer a list)\n");
		json_decref(rows);
		return;
	}
	json_array_foreach(rows, i, b) {
		const char *v = json_string_value(json_object_get(b, "verdict"));
		const char *aor = json_string_value(json_object_get(b, "aor"));
		const char *why = json_string_value(json_object_get(b, "nat_reason"));
		const char *pub = json_string_value(json_object_get(b, "public"));

		for (unsigned k = 0; k < 4; k++)
			if (v && strcmp(v, verdicts[k]) == 0)
				counts[k]++;
		if (v && strcmp(v, "nonat-suspect") == 0) {
			findings++;
			printf("  ! %s: %s.\n    Fix: disable the SIP ALG on the "
			       "router in front of it (seen as %s), or STUN/ICE on "
			       "the phone (its media is relayed meanwhile).\n",
			       aor ? aor : "?",
			       why ? why : "looks public but is not",
			       pub ? pub : "?");
		}
		if (json_is_false(json_object_get(b, "reachable"))) {
			findings++;
			printf("  ! %s at %s does not answer keepalives: calls to it "
			       "will fail.\n    Fix: lower [nat] keepalive_interval, "
			       "or make the phone register over TCP.\n",
			       aor ? aor : "?", pub ? pub : "?");
		}
	}
	printf("  %zu binding(s): %u local, %u public, %u behind NAT, %u "
	       "suspect%s\n", json_array_size(rows), counts[0], counts[1],
	       counts[2], counts[3], findings ? "" : "; no findings");
	json_decref(rows);
}

/* Reachability from outside: the daemon's RFC 5780 self-test through its
 * STUN server (nat/selftest.c), started and waited for here. */
static void doctor_reachability(const struct conf *conf)
{
	char *body = NULL;
	int status = 0;
	json_t *r = NULL;
	const char *state = NULL;

	printf("\n== reachability from outside\n");
	if (daemon_request(conf, "POST", "/api/selftest", &status, &body,
			   true) || (status != 200 && status != 409)) {
		printf("  (the daemon did not run the self-test: HTTP %d)\n",
		       status);
		free(body);
		return;
	}
	for (int i = 0; i < 60; i++) {	/* the test takes <= 7 s */
		free(body);
		body = NULL;
		json_decref(r);
		r = NULL;
		if (daemon_request(conf, "GET", "/api/selftest", &status,
				   &body, true) || status != 200)
			break;
		r = json_loads(body, 0, NULL);
		state = json_string_value(json_object_get(r, "state"));
		if (state && strcmp(state, "running") != 0)
			break;
		usleep(250 * 1000);
	}
	if (!r || !state || strcmp(state, "done") != 0) {
		printf("  (no result from the self-test)\n");
	} else {
		const char *note = json_string_value(json_object_get(r, "note"));
		json_t *sip = json_object_get(r, "sip_reachable");
		json_t *rtp = json_object_get(r, "rtp_reachable");
		json_int_t rport = json_integer_value(json_object_get(r,
								      "rtp_port"));

		if (json_is_boolean(sip))
			printf("  %s SIP port %u/udp %s from another address of "
			       "the STUN server%s\n", json_is_true(sip) ? "ok" :
			       "!", conf->port, json_is_true(sip) ?
			       "is reachable" : "is NOT reachable",
			       json_is_true(sip) ? "" : conf->behind_nat ?
			       ".\n    Fix: forward it on the local NAT to "
			       "this server" : ".\n    Fix: open it in the "
			       "firewall");
		if (json_is_boolean(rtp))
			printf("  %s RTP range (tested on port %lld/udp) %s%s\n",
			       json_is_true(rtp) ? "ok" : "!", (long long)rport,
			       json_is_true(rtp) ? "is reachable" :
			       "is NOT reachable: remote phones get one-way "
			       "or no audio", json_is_true(rtp) ? "" :
			       conf->behind_nat ? ".\n    Fix: forward the "
			       "whole [media] range on the local NAT" :
			       ".\n    Fix: open the [media] range in the "
			       "firewall");
		if (note && *note)
			printf("  %s\n", note);
	}
	json_decref(r);
	free(body);
}

/* Nodes sharing this store: ranges and SIP addresses must not clash. */
static void doctor_nodes(const struct conf *conf)
{
	struct store *store;
	struct store_node nodes[16];
	const char *me = conf->node_id[0] ? conf->node_id : "default";
	char sip[96];
	unsigned n, others = 0, findings = 0;

	printf("\n== nodes sharing the store\n");
	if (open_store(conf, &store))
		return;
	n = store_nodes(store, nodes, 16);
	store_close(store);
	snprintf(sip, sizeof(sip), "%s:%u", conf->listen, conf->port);
	for (unsigned i = 0; i < n; i++) {
		const struct store_node *o = &nodes[i];
		if (strcmp(o->id, me) == 0)
			continue;
		others++;
		printf("  node %s: SIP %s, RTP %u-%u\n", o->id, o->sip,
		       o->rtp_min, o->rtp_max);
		if (o->rtp_min <= conf->rtp_port_max &&
		    conf->rtp_port_min <= o->rtp_max) {
			findings++;
			printf("  ! node %s's RTP range %u-%u overlaps ours "
			       "(%s) %u-%u.\n    Fix: give each node its own "
			       "[media] rtp_port_min-rtp_port_max (and its port "
			       "forward)\n", o->id, o->rtp_min, o->rtp_max, me,
			       conf->rtp_port_min, conf->rtp_port_max);
		}
		if (strcmp(o->sip, sip) == 0) {
			findings++;
			printf("  ! node %s uses our SIP address %s.\n    Fix: "
			       "give each node its own [sip] port\n", o->id,
			       sip);
		}
	}
	if (others && !conf->node_id[0]) {
		findings++;
		printf("  ! this node has no node_id while others share the "
		       "store.\n    Fix: set [store] node_id on every node\n");
	}
	if (!others)
		printf("  no other node records itself in %s\n",
		       conf->store_path);
	else if (!findings)
		printf("  ok no clash with the %u other node(s)\n", others);
}

static int cmd_doctor(int argc, char **argv, const char *path)
{
	struct conf conf;
	struct conf_errors errs;
	char *body = NULL;
	bool opened;
	unsigned nerrors;
	int status, failed = 0;
	bool up = false;

	if (argc != 1) {
		fprintf(stderr, "pinhole: usage: doctor\n");
		return 2;
	}
	printf("== config\n");
	nerrors = run_check(path, &opened);
	if (nerrors)
		failed = 1;

	conf_load(&conf, path, &errs);	/* for the admin address */
	printf("\n== daemon (admin API at %s)\n",
	       conf.admin_http[0] ? conf.admin_http : "off");
	if (daemon_request(&conf, "GET", "/api/status", &status, &body,
			   false)) {
		failed = 1;
	} else {
		json_t *json = json_loads(body, 0, NULL);

		up = true;
		if (status == 200 && json) {
			printf("status:\n");
			print_status(json);
		} else {
			printf("GET /api/status answered %d\n", status);
		}
		json_decref(json);
		free(body);
		body = NULL;

		if (!daemon_request(&conf, "GET", "/api/alarms", &status,
				    &body, false)) {
			json_t *alarms = json_loads(body, 0, NULL);
			json_t *rows = find_rows(alarms);

			printf("\nlast alarms:\n");
			if (status != 200 || !rows) {
				printf("  (GET /api/alarms answered %d)\n",
				       status);
			} else {
				/* The first ten, in the API's order. */
				while (json_array_size(rows) > 10)
					json_array_remove(rows,
						json_array_size(rows) - 1);
				print_table("alarms", rows);
			}
			json_decref(alarms);
			free(body);
			body = NULL;
		}
	}

	if (up && !daemon_request(&conf, "GET", "/api/registrations",
				     &status, &body, false))
		doctor_phones(body);
	free(body);
	if (up)
		doctor_reachability(&conf);
	doctor_nodes(&conf);

	printf("\n== not run by this version\n"
	       "  - phones that used to register and stopped\n"
	       "  - nodes that do not share this store file (Redis HA is "
	       "not built yet)\n");
	return failed;
}

/* ---------------------------------------------------------------------- */

int cli_main(int argc, char **argv, const char *conf_path)
{
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv, const char *path);
	} commands[] = {
		{ "check", cmd_check },
		{ "user", cmd_user },
		{ "group", cmd_group },
		{ "show", cmd_show },
		{ "reload", cmd_reload },
		{ "loglevel", cmd_loglevel },
		{ "doctor", cmd_doctor },
	};
	const char *cmd = argc > 0 ? argv[0] : NULL;

	if (!cmd || strcmp(cmd, "help") == 0 || strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "--help") == 0) {
		cli_usage(stdout);
		return cmd ? 0 : 2;
	}
	/* Modules log their own progress at info ("store: opened"); a
	 * one-shot command only wants to hear about problems. */
	log_set_level(LOG_WARNING);
	if (!conf_path)
		conf_path = cli_default_conf_path();
	for (unsigned i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return commands[i].fn(argc, argv, conf_path);
	if (strcmp(cmd, "run") == 0)
		fprintf(stderr, "pinhole: 'run' starts the daemon and is not "
			"a cli_main command\n");
	else
		fprintf(stderr, "pinhole: unknown command '%s'\n\n", cmd);
	cli_usage(stderr);
	return 2;
}
