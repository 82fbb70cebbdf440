/*
 * test_torture.c - the RFC 4475 / RFC 5118 torture vectors against the SIP
 * parser: one cmocka test per row of MANIFEST.tsv, checked against its
 * expectation column (see the README next to the vectors), plus spot checks
 * of what a few of them are about.
 *
 * The vectors are found in $TORTURE_DIR, by default
 * ../shared/testdata/sip-torture relative to the repository root (the test
 * runs with cwd = repo root). Files are raw bytes: read in binary.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sip/msg.h"

#define MAX_ROWS 128

struct row {
	char file[128];
	char section[32];
	char expectation[32];
};

static const char *torture_dir;
static struct row rows[MAX_ROWS];
static struct CMUnitTest tests[MAX_ROWS];
static struct sip_msg msg;	/* big: keep it off the stack */

static char *read_file(const char *name, size_t *len)
{
	char path[1024];
	FILE *f;
	char *buf;
	long sz;

	snprintf(path, sizeof(path), "%s/%s", torture_dir, name);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	/* exactly sz bytes, no terminator: the parser must not read past */
	buf = malloc(sz > 0 ? (size_t)sz : 1);
	if (!buf || fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	*len = (size_t)sz;
	return buf;
}

static bool is(const struct row *r, const char *section)
{
	return strcmp(r->section, section) == 0;
}

static bool pl_is(struct pl x, const char *s)
{
	return pl_eq_str(x, s);
}

/* What a few files are about, beyond "parses". */
static void spot_checks(const struct row *r, const struct sip_msg *m,
			size_t len)
{
	const struct sip_hdr *h;
	struct sip_addr a;
	struct pl v;

	if (is(r, "3.1.1.1")) {
		assert_int_equal(m->max_forwards, 68);
		assert_int_equal(m->cseq, 9);
		assert_true(pl_is(m->cseq_method, "INVITE"));
		assert_int_equal(m->nvia, 3);
		assert_true(pl_is(m->via.transport, "UDP"));
		assert_true(pl_is(m->via.host, "192.0.2.2"));
		assert_true(pl_is(m->via.branch, "390skdjuw"));
		assert_true(pl_is(m->to_tag, "1918181833n"));
		assert_true(pl_is(m->from_tag, "98asjd8"));
		assert_int_equal(m->body.l, 150);
		h = sip_hdr_get(m, SIP_HDR_CONTACT);
		assert_non_null(h);
		assert_int_equal(sip_addr_parse(&a, h->value), 0);
		assert_true(sip_param_get(a.params, "newparam", &v));
		assert_true(pl_is(v, "newvalue"));
		assert_true(sip_param_get(a.params, "q", &v));
		assert_true(pl_is(v, "0.33"));
		assert_true(sip_param_get(a.params, "secondparam", NULL));
		h = sip_hdr_get(m, SIP_HDR_SUBJECT);
		assert_non_null(h);
		assert_int_equal(h->value.l, 0);
	} else if (is(r, "3.1.1.2")) {
		assert_int_equal(m->method_id, SIP_METHOD_OTHER);
		assert_true(pl_is(m->ruri.host, "example.com"));
	} else if (is(r, "3.1.1.5")) {
		assert_int_equal(m->method_id, SIP_METHOD_OTHER);
		assert_int_equal(sip_hdr_next(m, sip_hdr_next(m, -1,
				 SIP_HDR_CONTACT), SIP_HDR_CONTACT) >= 0, 1);
		/* C%6Fntact is not Contact: 2 Contact entries only */
		assert_int_equal(sip_hdr_next(m, sip_hdr_next(m,
				 sip_hdr_next(m, -1, SIP_HDR_CONTACT),
				 SIP_HDR_CONTACT), SIP_HDR_CONTACT), -1);
	} else if (is(r, "3.1.1.3")) {
		struct sip_uri u;

		assert_int_equal(sip_uri_parse(&u, PL("sip:user@example.com")),
				 0);
		assert_true(sip_uri_equal(&u, &m->to.uri));
	} else if (is(r, "3.1.1.7")) {
		assert_int_equal(m->nvia, 34);
	} else if (is(r, "3.1.1.8")) {
		assert_true(m->len < len);
		assert_int_equal(m->body.l, 0);
	} else if (is(r, "3.1.1.9")) {
		assert_true(pl_is(m->ruri.user, "user;par=u%40example.net"));
		assert_true(pl_is(m->ruri.host, "example.com"));
	} else if (is(r, "3.1.1.10")) {
		assert_int_equal(m->nvia, 5);
	} else if (is(r, "3.1.1.11")) {
		assert_int_equal(m->body.l, m->content_length);
		assert_true(m->body.p + m->body.l == m->buf + len);
	} else if (is(r, "3.1.1.13")) {
		assert_int_equal(m->status, 100);
		assert_int_equal(m->reason.l, 0);
	} else if (is(r, "3.3.2")) {
		assert_true(pl_is(m->ruri.scheme, "nobodyKnowsThisScheme"));
		assert_int_equal(m->ruri.host.l, 0);
	} else if (is(r, "3.3.11")) {
		assert_int_equal(m->max_forwards, 0);
	} else if (is(r, "3.3.12")) {
		h = sip_hdr_get(m, SIP_HDR_CONTACT);
		assert_int_equal(sip_addr_parse(&a, h->value), 0);
		assert_false(a.angle);
		assert_int_equal(a.uri.params.l, 0);
		assert_true(sip_param_get(a.params, "unknownparam", NULL));
	} else if (is(r, "3.3.13")) {
		h = sip_hdr_get(m, SIP_HDR_CONTACT);
		assert_int_equal(sip_addr_parse(&a, h->value), 0);
		assert_true(a.angle);
		assert_true(sip_param_get(a.uri.params, "unknownparam", NULL));
		assert_int_equal(a.params.l, 0);
	} else if (is(r, "3.3.14")) {
		h = sip_hdr_get(m, SIP_HDR_CONTACT);
		assert_int_equal(sip_addr_parse(&a, h->value), 0);
		assert_true(pl_is(a.uri.headers,
				  "Route=%3Csip:sip.example.com%3E"));
	} else if (is(r, "3.4.1")) {
		assert_false(m->has_content_length);
		assert_int_equal(m->max_forwards, -1);
		assert_false(pl_isset(m->from_tag));
		assert_false(pl_isset(m->via.branch));
	} else if (is(r, "4.1")) {
		assert_true(pl_is(m->ruri.host, "[2001:db8::10]"));
		assert_true(m->ruri.host_is_ipv6);
		assert_true(pl_is(m->via.host, "[2001:db8::9:1]"));
	} else if (is(r, "4.3")) {
		assert_true(pl_is(m->ruri.host, "[2001:db8::10:5070]"));
		assert_int_equal(m->ruri.port, 0);
	} else if (is(r, "4.4")) {
		assert_true(pl_is(m->ruri.host, "[2001:db8::10]"));
		assert_int_equal(m->ruri.port, 5070);
	} else if (is(r, "4.5")) {
		assert_true(pl_isset(m->via.received));
		assert_true(pl_is(m->via.branch, "z9hG4bKas3-111") ||
			    pl_is(m->via.branch, "z9hG4bKas3"));
	} else if (is(r, "4.7")) {
		assert_int_equal(m->nvia, 3);
		assert_int_equal(m->via.port, 6050);
	}
}

static void run_row(void **state)
{
	const struct row *r = *state;
	size_t len = 0;
	char *buf = read_file(r->file, &len);
	int err;

	if (!buf)
		fail_msg("cannot read %s/%s", torture_dir, r->file);
	err = sip_msg_parse(&msg, buf, len, false);

	if (!strcmp(r->expectation, "invalid-should-reject")) {
		if (err != EBADMSG) {
			free(buf);
			fail_msg("%s: accepted (err=%d), must reject", r->file,
				 err);
		}
		if (msg.is_request) {
			unsigned want = is(r, "3.1.2.16") ? 505 : 400;

			if (msg.err_status != want) {
				free(buf);
				fail_msg("%s: err_status %u, want %u (%s)",
					 r->file, msg.err_status, want,
					 msg.err_reason);
			}
		}
	} else if (is(r, "3.2.1")) {
		/* bare magic cookie: accepting it (2543 matching) is fine */
		assert_true(err == 0 || err == EBADMSG);
	} else {
		if (err != 0) {
			free(buf);
			fail_msg("%s: rejected (err=%d status=%u: %s), "
				 "must parse", r->file, err, msg.err_status,
				 msg.err_reason ? msg.err_reason : "");
		}
		assert_true(msg.can_reply);
		spot_checks(r, &msg, len);
	}
	free(buf);
}

/* Split one TSV line in place into its first six fields. */
static int split_tsv(char *line, char *field[6])
{
	int n = 0;

	field[n++] = line;
	for (char *p = line; *p && n < 6; p++) {
		if (*p == '\t') {
			*p = '\0';
			field[n++] = p + 1;
		}
	}
	line[strcspn(line, "\r\n")] = '\0';
	if (n == 6)
		field[5][strcspn(field[5], "\r\n")] = '\0';
	return n;
}

static size_t load_manifest(void)
{
	char path[1024], line[2048];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/MANIFEST.tsv", torture_dir);
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "cannot open %s\n", path);
		return 0;
	}
	while (fgets(line, sizeof(line), f) && n < MAX_ROWS) {
		char *fld[6];

		if (split_tsv(line, fld) < 4 || !strcmp(fld[0], "file"))
			continue;
		snprintf(rows[n].file, sizeof(rows[n].file), "%s", fld[0]);
		snprintf(rows[n].section, sizeof(rows[n].section), "%s",
			 fld[2]);
		snprintf(rows[n].expectation, sizeof(rows[n].expectation),
			 "%s", fld[3]);
		tests[n] = (struct CMUnitTest){
			.name = rows[n].file,
			.test_func = run_row,
			.initial_state = &rows[n],
		};
		n++;
	}
	fclose(f);
	return n;
}

/* $TORTURE_DIR, else the shared checkout next to the repo, else a copy
 * inside it. A missing directory is a failure, not a skip: a torture
 * suite that silently runs nothing proves nothing. */
static const char *find_dir(void)
{
	static const char *const dirs[] = {
		"../shared/testdata/sip-torture",
		"tests/data/sip-torture",
		"testdata/sip-torture",
	};
	const char *env = getenv("TORTURE_DIR");
	char path[1024];

	if (env && *env)
		return env;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/MANIFEST.tsv", dirs[i]);
		f = fopen(path, "r");
		if (f) {
			fclose(f);
			return dirs[i];
		}
	}
	return dirs[0];
}

int main(void)
{
	size_t n;

	torture_dir = find_dir();
	n = load_manifest();
	if (!n) {
		fprintf(stderr, "no torture vectors: set TORTURE_DIR\n");
		return 1;
	}
	return _cmocka_run_group_tests("sip_torture", tests, n, NULL, NULL);
}
