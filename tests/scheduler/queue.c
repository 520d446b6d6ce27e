/* tests/scheduler/queue.c — the scheduling queue (plugins/scheduler/
 * queue.c) on its own, with a clock the test moves: QueueSort order,
 * backoff per attempt, unschedulable pods parked until a cluster event or
 * podMaxInUnschedulablePodsDuration, an event during a pod's cycle not
 * lost, updates that do or do not wake a parked pod, deletion in flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "scheduler.h"
#include "sched_test.h"

static struct sp_profile prof = { .name = "default-scheduler" };
static const struct sp_config conf = {
	.backoff_initial_ms = 1000,
	.backoff_max_ms = 4000,
	.unsched_max_ms = 60000,
};

static const struct kb_sched_pod *mkpod(const char *name, int prio)
{
	char json[256];
	snprintf(json, sizeof(json),
	    "{\"metadata\": {\"name\": \"%s\", \"namespace\": \"d\"}, "
	    "\"spec\": {\"priority\": %d}}",
	    name, prio);
	kb_body *b = jbody(json);
	struct kb_sched_pod *p = kb_sched_pod_new(kb_body_obj(b));
	kb_body_unref(b);
	assert_non_null(p);
	return p;
}

static void add(struct sp_queue *q, const char *name, int prio, int64_t now)
{
	const struct kb_sched_pod *p = mkpod(name, prio);
	sp_queue_set(q, name, p, &prof, true, now);
	kb_sched_pod_unref(p);
}

static const char *pop(struct sp_queue *q, int64_t now, struct sp_qpod **qp)
{
	int64_t wake;
	*qp = sp_queue_pop(q, now, &wake);
	return *qp ? (*qp)->pod->name : NULL;
}

static void test_order(void **state)
{
	struct sp_queue q;
	struct sp_qpod *qp[4];
	sp_queue_init(&q, &conf);
	add(&q, "a", 0, 0);
	add(&q, "b", 10, 0);
	add(&q, "c", 0, 0);
	add(&q, "d", 10, 0);
	assert_string_equal(pop(&q, 0, &qp[0]), "b");
	assert_string_equal(pop(&q, 0, &qp[1]), "d");
	assert_string_equal(pop(&q, 0, &qp[2]), "a");
	assert_string_equal(pop(&q, 0, &qp[3]), "c");
	struct sp_qpod *none;
	assert_null(pop(&q, 0, &none));
	for (int i = 0; i < 4; i++)
		sp_queue_binding(&q, qp[i]);
	sp_queue_free(&q);
}

static void test_unschedulable_and_backoff(void **state)
{
	struct sp_queue q;
	struct sp_qpod *qp;
	int64_t wake;
	sp_queue_init(&q, &conf);
	add(&q, "a", 0, 0);
	assert_string_equal(pop(&q, 0, &qp), "a");
	sp_queue_failed(&q, qp, false, 0);
	/* Parked: no event, nothing to pop, woken only by the flush. */
	assert_null(sp_queue_pop(&q, 500, &wake));
	assert_int_equal(wake, 60000);
	/* A status-only update leaves it parked; a spec change does not. */
	const struct kb_sched_pod *p = mkpod("a", 0);
	sp_queue_set(&q, "a", p, &prof, false, 600);
	assert_null(sp_queue_pop(&q, 600, &wake));
	/* A node event: back, but only once its 1 s backoff is over. */
	sp_queue_move_all(&q, 700);
	assert_null(sp_queue_pop(&q, 700, &wake));
	assert_int_equal(wake, 1000);
	assert_string_equal(pop(&q, 1000, &qp), "a");
	/* Second failure: 2 s; an error goes to backoff, not parked. */
	sp_queue_failed(&q, qp, true, 1000);
	assert_null(sp_queue_pop(&q, 2999, &wake));
	assert_int_equal(wake, 3000);
	assert_string_equal(pop(&q, 3000, &qp), "a");
	/* Third: 4 s (the max); fourth: still 4 s. */
	sp_queue_failed(&q, qp, true, 3000);
	assert_null(sp_queue_pop(&q, 6999, &wake));
	assert_string_equal(pop(&q, 7000, &qp), "a");
	sp_queue_failed(&q, qp, false, 7000);
	sp_queue_set(&q, "a", p, &prof, true, 8000); /* spec changed */
	assert_null(sp_queue_pop(&q, 10999, &wake));
	assert_string_equal(pop(&q, 11000, &qp), "a");
	/* Parked too long: flushed after podMaxInUnschedulablePodsDuration. */
	sp_queue_failed(&q, qp, false, 11000);
	assert_null(sp_queue_pop(&q, 70999, &wake));
	assert_string_equal(pop(&q, 71000, &qp), "a");
	sp_queue_binding(&q, qp);
	/* A failed bind: back off and retry. */
	sp_queue_bind_failed(&q, "a", 72000);
	assert_null(sp_queue_pop(&q, 72000, &wake));
	assert_string_equal(pop(&q, 76000, &qp), "a");
	kb_sched_pod_unref(p);
	sp_queue_binding(&q, qp);
	sp_queue_del(&q, "a");
	sp_queue_free(&q);
}

static void test_event_during_cycle(void **state)
{
	struct sp_queue q;
	struct sp_qpod *qp;
	int64_t wake;
	sp_queue_init(&q, &conf);
	add(&q, "a", 0, 0);
	assert_string_equal(pop(&q, 0, &qp), "a");
	sp_queue_move_all(&q, 10); /* a node came while "a" was in its cycle */
	sp_queue_failed(&q, qp, false, 20);
	assert_null(sp_queue_pop(&q, 20, &wake));
	assert_int_equal(wake, 1020); /* backing off, not parked */
	assert_string_equal(pop(&q, 1020, &qp), "a");
	/* Deleted while in flight: the taker's failure report frees it. */
	sp_queue_del(&q, "a");
	assert_true(qp->gone);
	sp_queue_failed(&q, qp, false, 1100);
	assert_null(sp_queue_pop(&q, 99999, &wake));
	assert_int_equal(wake, -1);
	sp_queue_free(&q);
}

/* Many pods through the heap: random priorities, some deleted, some
 * updated to a new priority, some failed and brought back by an event;
 * pops come out by priority, then by arrival. */
static void test_heap(void **state)
{
	struct sp_queue q;
	enum {
		N = 600
	};
	int prio[N];
	bool gone[N] = { false };
	char name[16];
	sp_queue_init(&q, &conf);
	srand(7);
	for (int i = 0; i < N; i++) {
		prio[i] = rand() % 7;
		snprintf(name, sizeof(name), "p%03d", i);
		add(&q, name, prio[i], 0);
	}
	for (int i = 0; i < N; i += 5) {
		snprintf(name, sizeof(name), "p%03d", i);
		sp_queue_del(&q, name);
		gone[i] = true;
	}
	for (int i = 1; i < N; i += 7) {
		if (gone[i])
			continue;
		prio[i] = 100 + i % 3;
		snprintf(name, sizeof(name), "p%03d", i);
		add(&q, name, prio[i], 0); /* an update of a queued pod */
	}
	/* Pop ten, fail them (parked), then a cluster event: back they go,
	 * behind their equals (a new seq), within their backoff. */
	struct sp_qpod *qp;
	for (int k = 0; k < 10; k++) {
		assert_non_null(pop(&q, 0, &qp));
		sp_queue_failed(&q, qp, false, 0);
	}
	sp_queue_move_all(&q, 0);
	int last_prio = 1 << 30, popped = 0;
	int64_t last_seq = 0;
	while (pop(&q, 5000, &qp)) {
		int i = atoi(qp->pod->name + 1);
		assert_false(gone[i]);
		assert_true(prio[i] <= last_prio);
		if (prio[i] == last_prio)
			assert_true(qp->seq > last_seq);
		last_prio = prio[i];
		last_seq = qp->seq;
		popped++;
		sp_queue_binding(&q, qp);
	}
	assert_int_equal(popped, N - N / 5);
	assert_int_equal(q.nheap, 0);
	assert_int_equal(q.nwaiting, 0);
	sp_queue_free(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_heap),
		cmocka_unit_test(test_unschedulable_and_backoff),
		cmocka_unit_test(test_event_during_cycle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
