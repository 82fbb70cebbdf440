/*
 * test_pickup.c - call pickup policy: the dialled codes (defaults, config,
 * %23 escapes, bare prefix), who may take which ringing call, the
 * Replaces header's tag orientation, the [features] keys' validation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "conf/conf.h"
#include "proxy/features.h"
#include "proxy/pickup.h"

static struct conf conf;
static struct conf_errors errs;

static void test_codes_default(void **state)
{
	struct pickup pk;

	(void)state;
	conf_defaults(&conf);
	assert_int_equal(pickup_code(&conf, pl_from_str("*78bob"), &pk),
			 PICKUP_DIRECTED);
	assert_string_equal(pk.ext, "bob");
	assert_int_equal(pickup_code(&conf, pl_from_str("*78"), &pk),
			 PICKUP_DIRECTED);
	assert_string_equal(pk.ext, "");	/* answered 484 */
	assert_int_equal(pickup_code(&conf, pl_from_str("*8"), &pk),
			 PICKUP_GROUP);
	assert_int_equal(pickup_code(&conf, pl_from_str("*80"), &pk),
			 PICKUP_NONE);
	assert_int_equal(pickup_code(&conf, pl_from_str("bob"), &pk),
			 PICKUP_NONE);
	assert_int_equal(pickup_code(&conf, pl_from_str("%2A78201"), &pk),
			 PICKUP_DIRECTED);
	assert_string_equal(pk.ext, "201");
	/* a broken escape is no code */
	assert_int_equal(pickup_code(&conf, pl_from_str("*78bob%2"), &pk),
			 PICKUP_NONE);
	assert_int_equal(pickup_code(&conf, pl_from_str("*78%zz"), &pk),
			 PICKUP_NONE);
}

static void test_codes_from_config(void **state)
{
	struct pickup pk;

	(void)state;
	assert_int_equal(conf_load_string(&conf, "t.conf",
		"[features]\npickup_prefix = **\ngroup_pickup_code = *9#\n",
		&errs), 0);
	assert_int_equal(pickup_code(&conf, pl_from_str("**201"), &pk),
			 PICKUP_DIRECTED);
	assert_string_equal(pk.ext, "201");
	assert_int_equal(pickup_code(&conf, pl_from_str("*9%23"), &pk),
			 PICKUP_GROUP);
	assert_int_equal(pickup_code(&conf, pl_from_str("*78bob"), &pk),
			 PICKUP_NONE);
}

static void test_config_refuses_bad_codes(void **state)
{
	(void)state;
	assert_int_not_equal(conf_load_string(&conf, "t.conf",
		"[features]\npickup_prefix = *7 8\n", &errs), 0);
	assert_non_null(strstr(errs.items[0].text, "use digits, letters"));
	assert_int_not_equal(conf_load_string(&conf, "t.conf",
		"[features]\ngroup_pickup_code =\n", &errs), 0);
	assert_non_null(strstr(errs.items[0].text, "is empty"));
	assert_int_not_equal(conf_load_string(&conf, "t.conf",
		"[features]\npickup_prefix = *78901234567890123\n", &errs), 0);
	assert_non_null(strstr(errs.items[0].text, "too long"));
}

static void test_may_take(void **state)
{
	struct pickup pk;

	(void)state;
	memset(&pk, 0, sizeof(pk));
	pk.kind = PICKUP_DIRECTED;
	strcpy(pk.ext, "bob");
	strcpy(pk.picker, "carol");
	assert_true(pickup_may_take(&pk, "bob", "bob"));
	assert_true(pickup_may_take(&pk, "bob", "dave"));	/* forwarded */
	assert_true(pickup_may_take(&pk, "600", "bob"));	/* group call */
	assert_false(pickup_may_take(&pk, "bob", "carol"));	/* own phone */
	assert_false(pickup_may_take(&pk, "alice", "alice"));
	assert_false(pickup_may_take(&pk, "", ""));

	pk.kind = PICKUP_GROUP;
	strcpy(pk.scope, "600,bob, carol");
	assert_true(pickup_may_take(&pk, "bob", "bob"));
	assert_true(pickup_may_take(&pk, "600", "dave"));
	assert_true(pickup_may_take(&pk, "", "bob"));		/* gateway call */
	assert_false(pickup_may_take(&pk, "600", "carol"));	/* own phone */
	assert_false(pickup_may_take(&pk, "alice", "alice"));
	assert_false(pickup_may_take(&pk, "bo", "b"));
}

static void test_replaces_orientation(void **state)
{
	char out[256];

	(void)state;
	/* The caller's dialog: its local tag is its From tag. */
	assert_int_equal(pickup_headers(out, sizeof(out),
					pl_from_str("abc@host"),
					pl_from_str("callerTag"), "ringTag"), 0);
	assert_string_equal(out, "Replaces: abc@host;to-tag=callerTag;"
			    "from-tag=ringTag;early-only\r\n"
			    "Require: replaces\r\n");
	assert_int_equal(pickup_headers(out, 20, pl_from_str("abc@host"),
					pl_from_str("callerTag"), "ringTag"),
			 ENOSPC);
}

static void test_list_has(void **state)
{
	(void)state;
	assert_true(features_list_has("alice, bob ,carol", "bob"));
	assert_true(features_list_has("alice", "alice"));
	assert_false(features_list_has("alice,bobby", "bob"));
	assert_false(features_list_has("", "bob"));
	assert_false(features_list_has("alice", ""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codes_default),
		cmocka_unit_test(test_codes_from_config),
		cmocka_unit_test(test_config_refuses_bad_codes),
		cmocka_unit_test(test_may_take),
		cmocka_unit_test(test_replaces_orientation),
		cmocka_unit_test(test_list_has),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
