/* tests/unit/test_api_azcache.c — the authorizer's decision cache
 * (plugins/apiserver/azcache.c): the questions of a hundred kubelets and
 * more all stay found, the cache stays bounded, a decision asked again
 * replaces the old one, and threads share it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "azcache.h"

/* A question as authn.c writes one ('\x1f' between its fields). */
static void question(char *buf, size_t cap, int who, int what)
{
	static const char *const verbs[] = { "create", "delete", "patch", "get", "list",
		"watch", "update" };
	snprintf(buf, cap, "plugin:kubelet-%d\x1ekubus:plugins\x1f%s\x1f\x1fpods\x1f\x1d\x1f"
			   "default\x1f\x1d",
	    who, verbs[what % 7]);
}

/* 2,000 questions (300 principals' few each): every one found after all
 * are stored. A direct-mapped table of as many places as sets loses
 * hundreds of them to collisions. */
static void test_many_principals(void **state)
{
	(void)state;
	char k[256], why[64];
	bool allowed;
	for (int i = 0; i < 2000; i++) {
		question(k, sizeof k, i / 7, i % 7);
		snprintf(why, sizeof why, "%s", i % 3 ? "" : "no rule");
		api_az_store(k, i % 3 != 0, why);
	}
	assert_int_equal(api_az_count(), 2000);
	int lost = 0;
	for (int i = 0; i < 2000; i++) {
		question(k, sizeof k, i / 7, i % 7);
		if (!api_az_lookup(k, &allowed, why, sizeof why)) {
			lost++;
			continue;
		}
		assert_int_equal(allowed, i % 3 != 0);
		assert_string_equal(why, i % 3 ? "" : "no rule");
	}
	assert_int_equal(lost, 0);
	question(k, sizeof k, 100000, 0);
	assert_false(api_az_lookup(k, &allowed, why, sizeof why));
}

/* A decision stored again replaces the old; a reason longer than the
 * buffer is cut, not overrun. */
static void test_replace_and_cut(void **state)
{
	(void)state;
	char why[8];
	bool allowed = true;
	size_t n = api_az_count();
	api_az_store("q-replace", true, "");
	api_az_store("q-replace", false, "a much longer reason");
	assert_int_equal(api_az_count(), n + 1);
	assert_true(api_az_lookup("q-replace", &allowed, why, sizeof why));
	assert_false(allowed);
	assert_string_equal(why, "a much ");
	assert_true(api_az_lookup("q-replace", &allowed, why, 0));
}

/* 100,000 distinct questions (a name each): the cache holds at most its
 * places, and the last stored is found. */
static void test_bounded(void **state)
{
	(void)state;
	char k[64], why[8];
	bool allowed;
	for (int i = 0; i < 100000; i++) {
		snprintf(k, sizeof k, "u\x1fget\x1f\x1fpods\x1f\x1d\x1f" "default\x1fpod-%d", i);
		api_az_store(k, false, "no");
	}
	assert_true(api_az_count() <= (size_t)API_AZ_SETS * API_AZ_WAYS);
	assert_true(api_az_count() > (size_t)API_AZ_SETS * API_AZ_WAYS / 2);
	assert_true(api_az_lookup(k, &allowed, why, sizeof why));
	assert_false(allowed);
}

static void *hammer(void *arg)
{
	int t = (int)(intptr_t)arg;
	char k[256], why[16];
	bool allowed;
	long found = 0;
	for (int r = 0; r < 20; r++)
		for (int i = 0; i < 500; i++) {
			question(k, sizeof k, 5000 + (t * 500 + i) / 7, i % 7);
			api_az_store(k, true, "");
			found += api_az_lookup(k, &allowed, why, sizeof why) && allowed;
		}
	return (void *)found;
}

/* Four threads storing and asking at once: each finds what it stored
 * (their questions differ, and 2,000 fit). */
static void test_threads(void **state)
{
	(void)state;
	pthread_t th[4];
	for (int t = 0; t < 4; t++)
		assert_int_equal(pthread_create(&th[t], NULL, hammer, (void *)(intptr_t)t), 0);
	for (int t = 0; t < 4; t++) {
		void *found;
		assert_int_equal(pthread_join(th[t], &found), 0);
		assert_int_equal((long)found, 20 * 500);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_principals),
		cmocka_unit_test(test_replace_and_cut),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
