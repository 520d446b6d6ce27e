/* plugins/scheduler/queue.c — the scheduling queue, as kube-scheduler's:
 * active pods in QueueSort order, pods backing off after a failure
 * (initial backoff doubling per attempt up to the max), and unschedulable
 * pods parked until a cluster event (node added or changed, pod deleted)
 * or podMaxInUnschedulablePodsDuration moves them back. A pod popped while
 * an event came is sent to backoff, not parked, so no event is missed.
 *
 * One map holds every pod with its sub-queue; popping scans it. That is
 * simple and enough for thousands of pending pods; a heap per sub-queue is
 * the next step when the benchmark asks for it. The caller holds the
 * scheduler's lock. */
#include <stdlib.h>
#include <string.h>

#include "scheduler.h"

void sp_queue_init(struct sp_queue *q, const struct sp_config *c)
{
	memset(q, 0, sizeof(*q));
	q->backoff_initial_ms = c->backoff_initial_ms;
	q->backoff_max_ms = c->backoff_max_ms;
	q->unsched_max_ms = c->unsched_max_ms;
}

void sp_qpod_free(struct sp_qpod *qp)
{
	if (qp == NULL)
		return;
	kb_sched_pod_unref(qp->pod);
	free(qp->key);
	free(qp->last_msg);
	free(qp);
}

/* In-flight pods belong to the scheduling thread, which frees them. */
static void drop(void *arg, const char *key, void *val)
{
	struct sp_qpod *qp = val;
	if (qp->where == Q_INFLIGHT)
		qp->gone = true;
	else
		sp_qpod_free(qp);
}

void sp_queue_free(struct sp_queue *q)
{
	kb_strmap_each(&q->pods, drop, NULL);
	kb_strmap_clear(&q->pods, NULL);
}

static int64_t backoff_of(const struct sp_queue *q, int attempts)
{
	int64_t b = q->backoff_initial_ms;
	for (int i = 1; i < attempts && b < q->backoff_max_ms; i++)
		b *= 2;
	return b > q->backoff_max_ms ? q->backoff_max_ms : b;
}

void sp_queue_set(struct sp_queue *q, const char *key,
    const struct kb_sched_pod *pod, struct sp_profile *prof, bool changed,
    int64_t now)
{
	struct sp_qpod *qp = kb_strmap_get(&q->pods, key);
	if (qp) {
		kb_sched_pod_unref(qp->pod);
		qp->pod = kb_sched_pod_ref(pod);
		qp->prof = prof;
		/* An update may make it schedulable. */
		if (changed && qp->where == Q_UNSCHED)
			qp->where = qp->backoff_until > now ? Q_BACKOFF :
							      Q_ACTIVE;
		return;
	}
	qp = calloc(1, sizeof(*qp));
	if (qp == NULL || (qp->key = strdup(key)) == NULL) {
		free(qp);
		return;
	}
	qp->pod = kb_sched_pod_ref(pod);
	qp->prof = prof;
	qp->where = Q_ACTIVE;
	qp->seq = ++q->seq;
	if (kb_strmap_put(&q->pods, key, qp, NULL))
		sp_qpod_free(qp);
}

void sp_queue_del(struct sp_queue *q, const char *key)
{
	struct sp_qpod *qp = kb_strmap_del(&q->pods, key);
	if (qp)
		drop(NULL, key, qp);
}

struct move {
	struct sp_queue *q;
	int64_t now;
};

static void move_one(void *arg, const char *key, void *val)
{
	struct move *m = arg;
	struct sp_qpod *qp = val;
	if (qp->where == Q_UNSCHED)
		qp->where = qp->backoff_until > m->now ? Q_BACKOFF : Q_ACTIVE;
}

void sp_queue_move_all(struct sp_queue *q, int64_t now)
{
	struct move m = { q, now };
	q->moves++;
	kb_strmap_each(&q->pods, move_one, &m);
}

struct pop {
	struct sp_queue *q;
	int64_t now, wake;
	struct sp_qpod *best;
};

static bool less(const struct sp_qpod *a, const struct sp_qpod *b)
{
	const struct sp_profile *p = a->prof;
	if (p == b->prof && p->npoints[P_QUEUESORT]) {
		const struct sp_policy *pol = p->points[P_QUEUESORT][0].p;
		if (pol->ops->less(pol->state, a->pod, b->pod))
			return true;
		if (pol->ops->less(pol->state, b->pod, a->pod))
			return false;
		return a->seq < b->seq;
	}
	return sp_default_less(a, b);
}

static void pop_one(void *arg, const char *key, void *val)
{
	struct pop *p = arg;
	struct sp_qpod *qp = val;
	if (qp->where == Q_BACKOFF && qp->backoff_until <= p->now)
		qp->where = Q_ACTIVE;
	if (qp->where == Q_UNSCHED && p->q->unsched_max_ms > 0 &&
	    p->now - qp->unsched_since >= p->q->unsched_max_ms)
		qp->where = qp->backoff_until > p->now ? Q_BACKOFF : Q_ACTIVE;
	if (qp->where == Q_BACKOFF &&
	    (p->wake < 0 || qp->backoff_until < p->wake))
		p->wake = qp->backoff_until;
	if (qp->where == Q_UNSCHED && p->q->unsched_max_ms > 0) {
		int64_t at = qp->unsched_since + p->q->unsched_max_ms;
		if (p->wake < 0 || at < p->wake)
			p->wake = at;
	}
	if (qp->where == Q_ACTIVE && (p->best == NULL || less(qp, p->best)))
		p->best = qp;
}

struct sp_qpod *sp_queue_pop(struct sp_queue *q, int64_t now, int64_t *wake_ms)
{
	struct pop p = { q, now, -1, NULL };
	kb_strmap_each(&q->pods, pop_one, &p);
	*wake_ms = p.wake;
	if (p.best) {
		p.best->where = Q_INFLIGHT;
		p.best->popped_move = q->moves;
		p.best->attempts++;
	}
	return p.best;
}

void sp_queue_failed(struct sp_queue *q, struct sp_qpod *qp, bool error,
    int64_t now)
{
	if (qp->gone) {
		sp_qpod_free(qp);
		return;
	}
	qp->backoff_until = now + backoff_of(q, qp->attempts);
	qp->seq = ++q->seq;
	if (error || qp->popped_move != q->moves) {
		qp->where = Q_BACKOFF;
	} else {
		qp->where = Q_UNSCHED;
		qp->unsched_since = now;
	}
}

void sp_queue_binding(struct sp_queue *q, struct sp_qpod *qp)
{
	if (qp->gone)
		sp_qpod_free(qp);
	else
		qp->where = Q_BINDING;
}

void sp_queue_bind_failed(struct sp_queue *q, const char *key, int64_t now)
{
	struct sp_qpod *qp = kb_strmap_get(&q->pods, key);
	if (qp == NULL || qp->where != Q_BINDING)
		return;
	qp->where = Q_BACKOFF;
	qp->backoff_until = now + backoff_of(q, qp->attempts);
	qp->seq = ++q->seq;
}
