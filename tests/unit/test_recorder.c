/* tests/unit/test_recorder.c — the SDK's event recorder (kb_recorder,
 * kubus/client.h) against a real API server, as client-go's recorder
 * behaves: an Event recorded again patches the first one's count; the
 * tenth different message of one reason about one object (aggregation on)
 * makes one "(combined from similar events)" Event whose count the rest
 * patch; the spam filter lets 25 Events about one object through and
 * drops the rest; a client limit without a `later` hook posts what it
 * held back from a thread of its own, never ahead of the limit, and drops
 * only past its queue of 1000; a recorder freed with requests held
 * releases them (the sanitizer build checks for leaks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <kubus/client.h>

#include "harness.h"

#define WAIT_MS 20000

static struct kbt_host *host;
static kb_ctx *cli;
/* freed once the host is stopped: no reply can come to them then */
static struct kb_recorder *made[8];
static size_t nmade;

static int setup(void **state)
{
	(void)state;
	char err[1024];
	host = kbt_api_host_start("listen: \"127.0.0.1:0\", kubeconfig: false",
	    err, sizeof(err));
	if (host == NULL) {
		print_error("host: %s\n", err);
		return -1;
	}
	const char *groups[] = { "kubus:plugins" };
	cli = kbt_client(host, "tester", "plugin:tester", groups, 1);
	return cli ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	kbt_host_stop(host);
	for (size_t i = 0; i < nmade; i++)
		kb_recorder_free(made[i]);
	return 0;
}

/* What the API has about object `name`: its Events' count, the sum of
 * their counts, and how many of them have a message starting with
 * `prefix` (may be NULL) with that one's count in *pcount. */
struct seen {
	int events, total, prefixed, pcount;
};

static struct seen about(const char *name, const char *prefix)
{
	struct seen s = { -1, 0, 0, 0 };
	char fs[300];
	snprintf(fs, sizeof(fs), "involvedObject.name=%s", name);
	kb_msg *rep = NULL;
	if (kb_api_list(cli, &KB_GVR_EVENTS, "default", NULL, fs, &rep) == 0) {
		const msgpack_object *it = kb_mp_get(kb_msg_body(rep), "items");
		s.events = 0;
		for (uint32_t i = 0; it && it->type == MSGPACK_OBJECT_ARRAY &&
		     i < it->via.array.size;
		     i++) {
			const msgpack_object *e = &it->via.array.ptr[i];
			int64_t n = 0;
			const char *m = "";
			size_t ml = 0;
			kb_mp_int(e, "count", &n);
			kb_mp_str(e, "message", &m, &ml);
			s.events++;
			s.total += (int)n;
			if (prefix && ml >= strlen(prefix) &&
			    !memcmp(m, prefix, strlen(prefix))) {
				s.prefixed++;
				s.pcount = (int)n;
			}
		}
	}
	kb_msg_free(rep);
	return s;
}

/* Until the API shows `total` recorded about `name` (or WAIT_MS). */
static struct seen wait_total(const char *name, const char *prefix, int total)
{
	struct seen s = about(name, prefix);
	for (int64_t t0 = kbt_now_ms();
	     s.total != total && kbt_now_ms() - t0 < WAIT_MS;
	     s = about(name, prefix))
		kbt_sleep_ms(20);
	return s;
}

static struct kb_recorder *recorder(bool aggregate, bool spam, int qps,
    int burst)
{
	struct kb_recorder_opts o = { .component = "tester",
		.qps = qps,
		.burst = burst,
		.aggregate = aggregate,
		.no_spam_filter = !spam };
	struct kb_recorder *r = kb_recorder_new(cli, &o);
	assert_non_null(r);
	assert_true(nmade < sizeof(made) / sizeof(made[0]));
	made[nmade++] = r;
	kb_recorder_start(r);
	return r;
}

/* Held requests stay held from here on; freed by teardown. */
static void done(struct kb_recorder *r)
{
	kb_recorder_stop(r);
}

/* An Event about each of n pods <prefix>-0 … */
static void one_each(struct kb_recorder *r, const char *prefix, int n,
    const char *reason)
{
	for (int i = 0; i < n; i++) {
		char name[64];
		snprintf(name, sizeof(name), "%s-%d", prefix, i);
		struct kb_event_ref ref = { "v1", "Pod", "default", name, name,
			NULL };
		kb_eventf(r, &ref, false, reason, "one of %d", n);
	}
}

static void test_repeats_count(void **state)
{
	(void)state;
	struct kb_recorder *r = recorder(false, true, 0, 1);
	struct kb_event_ref ref = { "v1", "Pod", "default", "rep-pod",
		"uid-rep", "spec.containers{c}" };
	for (int i = 0; i < 3; i++)
		kb_eventf(r, &ref, true, "BackOff", "Back-off restarting %s",
		    "c");
	struct seen s = wait_total("rep-pod", NULL, 3);
	assert_int_equal(s.events, 1);
	assert_int_equal(s.total, 3);
	done(r);
}

static void test_aggregate(void **state)
{
	(void)state;
	struct kb_recorder *r = recorder(true, true, 0, 1);
	struct kb_event_ref ref = { "apps/v1", "ReplicaSet", "default", "agg-rs",
		"uid-agg", NULL };
	for (int i = 0; i < 12; i++)
		kb_eventf(r, &ref, false, "SuccessfulCreate",
		    "Created pod: agg-rs-%d", i);
	/* 9 on their own, the 10th to 12th counted in one */
	struct seen s = wait_total("agg-rs", "(combined from similar events): ", 12);
	assert_int_equal(s.events, 10);
	assert_int_equal(s.prefixed, 1);
	assert_int_equal(s.pcount, 3);
	assert_int_equal(kb_recorder_dropped(r), 0);
	done(r);
}

static void test_spam_filter(void **state)
{
	(void)state;
	struct kb_recorder *r = recorder(false, true, 0, 1);
	struct kb_event_ref ref = { "v1", "Pod", "default", "spam-pod",
		"uid-spam", NULL };
	for (int i = 0; i < 30; i++)
		kb_eventf(r, &ref, true, "Reason", "message %d", i);
	struct seen s = wait_total("spam-pod", NULL, 25);
	assert_int_equal(s.events, 25);
	assert_int_equal(kb_recorder_dropped(r), 5);
	/* and no more come */
	kbt_sleep_ms(300);
	assert_int_equal(about("spam-pod", NULL).events, 25);
	/* another object has a bucket of its own */
	struct kb_event_ref other = { "v1", "Pod", "default", "spam-other",
		"uid-other", NULL };
	kb_eventf(r, &other, true, "Reason", "message");
	assert_int_equal(wait_total("spam-other", NULL, 1).events, 1);
	done(r);
}

/* 40 Events about 40 objects with a limit of 5 at once and 20 a second:
 * never ahead of it (at most 5 + 20/s since the first, one more for the
 * clocks), all there after (40 - 5) / 20 = 1.75 s. */
static void test_limit_own_thread(void **state)
{
	(void)state;
	struct kb_recorder *r = recorder(false, false, 20, 5);
	int64_t t0 = kbt_now_ms();
	one_each(r, "lim", 40, "Limited");
	int n = 0, below = 0;
	while (n < 40 && kbt_now_ms() - t0 < WAIT_MS) {
		n = 0;
		kb_msg *rep = NULL;
		if (kb_api_list(cli, &KB_GVR_EVENTS, "default", NULL,
			"reason=Limited", &rep) == 0) {
			const msgpack_object *it =
			    kb_mp_get(kb_msg_body(rep), "items");
			n = it && it->type == MSGPACK_OBJECT_ARRAY ?
			    (int)it->via.array.size :
			    0;
		}
		kb_msg_free(rep);
		int64_t bound = 5 + ((kbt_now_ms() - t0) * 20 + 999) / 1000 + 1;
		if (n > bound)
			fail_msg("%d Events after %lld ms: the limit allows %lld", n,
			    (long long)(kbt_now_ms() - t0), (long long)bound);
		below += n < 40;
		kbt_sleep_ms(25);
	}
	print_message("40 Events in %lld ms\n", (long long)(kbt_now_ms() - t0));
	assert_int_equal(n, 40);
	assert_true(below > 0);
	assert_true(kbt_now_ms() - t0 >= 1700);
	assert_int_equal(kb_recorder_dropped(r), 0);
	done(r);
}

/* One a second: 1 goes, 1000 wait, the 9 past the queue are dropped;
 * freed with the 1000 still held. */
static void test_queue_full(void **state)
{
	(void)state;
	struct kb_recorder *r = recorder(false, false, 1, 1);
	one_each(r, "full", 1010, "Full");
	assert_int_equal(kb_recorder_dropped(r), 9);
	assert_int_equal(wait_total("full-0", NULL, 1).events, 1);
	done(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_repeats_count),
		cmocka_unit_test(test_aggregate),
		cmocka_unit_test(test_spam_filter),
		cmocka_unit_test(test_limit_own_thread),
		cmocka_unit_test(test_queue_full),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
