/* plugins/scheduler/queue.c — the scheduling queue, as kube-scheduler's:
 * active pods in QueueSort order, pods backing off after a failure
 * (initial backoff doubling per attempt up to the max), and unschedulable
 * pods parked until a cluster event (node added or changed, pod deleted)
 * or podMaxInUnschedulablePodsDuration moves them back. A pod popped while
 * an event came is sent to backoff, not parked, so no event is missed.
 *
 * One map holds every pod with its sub-queue; active pods are also in a
 * binary heap in QueueSort order, so a pop is O(log n). Pods backing off
 * or parked are only counted, with the earliest time one of them may be
 * due: a pop scans the map for them only once that time has come. The
 * caller holds the scheduler's lock. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler.h"

void sp_queue_init(struct sp_queue *q, const struct sp_config *c)
{
	memset(q, 0, sizeof(*q));
	q->backoff_initial_ms = c->backoff_initial_ms;
	q->backoff_max_ms = c->backoff_max_ms;
	q->unsched_max_ms = c->unsched_max_ms;
	q->next_check = -1;
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
	free(q->heap);
	q->heap = NULL;
	q->nheap = q->capheap = 0;
}

static int64_t backoff_of(const struct sp_queue *q, int attempts)
{
	int64_t b = q->backoff_initial_ms;
	for (int i = 1; i < attempts && b < q->backoff_max_ms; i++)
		b *= 2;
	return b > q->backoff_max_ms ? q->backoff_max_ms : b;
}

/* --- the active heap ------------------------------------------------------------- */

static bool less(const struct sp_qpod *a, const struct sp_qpod *b);

static void hswap(struct sp_queue *q, size_t i, size_t j)
{
	struct sp_qpod *t = q->heap[i];
	q->heap[i] = q->heap[j];
	q->heap[j] = t;
	q->heap[i]->hidx = i;
	q->heap[j]->hidx = j;
}

static void sift_up(struct sp_queue *q, size_t i)
{
	while (i > 0 && less(q->heap[i], q->heap[(i - 1) / 2])) {
		hswap(q, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void sift_down(struct sp_queue *q, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < q->nheap && less(q->heap[l], q->heap[m]))
			m = l;
		if (r < q->nheap && less(q->heap[r], q->heap[m]))
			m = r;
		if (m == i)
			return;
		hswap(q, i, m);
		i = m;
	}
}

static void heap_push(struct sp_queue *q, struct sp_qpod *qp)
{
	if (q->nheap == q->capheap) {
		size_t cap = q->capheap ? q->capheap * 2 : 64;
		struct sp_qpod **v = realloc(q->heap, cap * sizeof(*v));
		if (v == NULL) {
			/* Keep it findable by the scan instead. */
			qp->hidx = SIZE_MAX;
			return;
		}
		q->heap = v;
		q->capheap = cap;
	}
	qp->hidx = q->nheap;
	q->heap[q->nheap++] = qp;
	sift_up(q, qp->hidx);
}

static void heap_remove(struct sp_queue *q, struct sp_qpod *qp)
{
	size_t i = qp->hidx;
	if (i == SIZE_MAX || i >= q->nheap || q->heap[i] != qp)
		return;
	qp->hidx = SIZE_MAX;
	if (i == --q->nheap)
		return;
	q->heap[i] = q->heap[q->nheap];
	q->heap[i]->hidx = i;
	sift_down(q, i);
	sift_up(q, i);
}

static bool waiting(int where)
{
	return where == Q_BACKOFF || where == Q_UNSCHED;
}

/* When a waiting pod may be due (backoff over, or parked too long). */
static int64_t due_at(const struct sp_queue *q, const struct sp_qpod *qp)
{
	if (qp->where == Q_BACKOFF)
		return qp->backoff_until;
	if (q->unsched_max_ms > 0)
		return qp->unsched_since + q->unsched_max_ms;
	return -1;
}

/* Every change of sub-queue goes through here. */
static void set_where(struct sp_queue *q, struct sp_qpod *qp, int where)
{
	if (qp->where == Q_ACTIVE)
		heap_remove(q, qp);
	if (waiting(qp->where))
		q->nwaiting--;
	qp->where = where;
	if (where == Q_ACTIVE)
		heap_push(q, qp);
	if (waiting(where)) {
		q->nwaiting++;
		int64_t at = due_at(q, qp);
		if (at >= 0 && (q->next_check < 0 || at < q->next_check))
			q->next_check = at;
	}
}

void sp_queue_set(struct sp_queue *q, const char *key,
    const struct kb_sched_pod *pod, struct sp_profile *prof, bool changed,
    int64_t now)
{
	struct sp_qpod *qp = kb_strmap_get(&q->pods, key);
	if (qp) {
		bool active = qp->where == Q_ACTIVE;
		if (active)
			heap_remove(q, qp);
		kb_sched_pod_unref(qp->pod);
		qp->pod = kb_sched_pod_ref(pod);
		qp->prof = prof;
		if (active)
			heap_push(q, qp); /* its priority may have changed */
		/* An update may make it schedulable. */
		if (changed && qp->where == Q_UNSCHED)
			set_where(q, qp,
			    qp->backoff_until > now ? Q_BACKOFF : Q_ACTIVE);
		return;
	}
	qp = calloc(1, sizeof(*qp));
	if (qp == NULL || (qp->key = strdup(key)) == NULL) {
		free(qp);
		return;
	}
	qp->pod = kb_sched_pod_ref(pod);
	qp->prof = prof;
	qp->where = Q_BINDING; /* nowhere yet */
	qp->hidx = SIZE_MAX;
	qp->seq = ++q->seq;
	if (kb_strmap_put(&q->pods, key, qp, NULL)) {
		sp_qpod_free(qp);
		return;
	}
	set_where(q, qp, Q_ACTIVE);
}

void sp_queue_del(struct sp_queue *q, const char *key)
{
	struct sp_qpod *qp = kb_strmap_del(&q->pods, key);
	if (qp == NULL)
		return;
	if (qp->where != Q_INFLIGHT)
		set_where(q, qp, Q_BINDING); /* out of the heap and counts */
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
		set_where(m->q, qp,
		    qp->backoff_until > m->now ? Q_BACKOFF : Q_ACTIVE);
}

void sp_queue_move_all(struct sp_queue *q, int64_t now)
{
	struct move m = { q, now };
	q->moves++;
	if (q->nwaiting)
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

/* Waiting pods that are due go back; next_check becomes the earliest
 * time one of the rest may be. */
static void due_one(void *arg, const char *key, void *val)
{
	struct pop *p = arg;
	struct sp_qpod *qp = val;
	if (qp->where == Q_BACKOFF && qp->backoff_until <= p->now)
		set_where(p->q, qp, Q_ACTIVE);
	if (qp->where == Q_UNSCHED && p->q->unsched_max_ms > 0 &&
	    p->now - qp->unsched_since >= p->q->unsched_max_ms)
		set_where(p->q, qp,
		    qp->backoff_until > p->now ? Q_BACKOFF : Q_ACTIVE);
	if (waiting(qp->where)) {
		int64_t at = due_at(p->q, qp);
		if (at >= 0 && (p->wake < 0 || at < p->wake))
			p->wake = at;
	}
	if (qp->where == Q_ACTIVE && qp->hidx == SIZE_MAX &&
	    (p->best == NULL || less(qp, p->best)))
		p->best = qp; /* not in the heap (out of memory) */
}

struct sp_qpod *sp_queue_pop(struct sp_queue *q, int64_t now, int64_t *wake_ms)
{
	struct pop p = { q, now, -1, NULL };
	if (q->nwaiting && q->next_check >= 0 && now >= q->next_check) {
		q->next_check = -1;
		kb_strmap_each(&q->pods, due_one, &p);
		q->next_check = p.wake;
	}
	struct sp_qpod *best = p.best;
	if (best == NULL && q->nheap)
		best = q->heap[0];
	*wake_ms = q->nwaiting ? q->next_check : -1;
	if (best) {
		set_where(q, best, Q_INFLIGHT);
		best->popped_move = q->moves;
		best->attempts++;
	}
	return best;
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
		set_where(q, qp, Q_BACKOFF);
	} else {
		qp->unsched_since = now;
		set_where(q, qp, Q_UNSCHED);
	}
}

void sp_queue_binding(struct sp_queue *q, struct sp_qpod *qp)
{
	if (qp->gone)
		sp_qpod_free(qp);
	else
		set_where(q, qp, Q_BINDING);
}

void sp_queue_bind_failed(struct sp_queue *q, const char *key, int64_t now)
{
	struct sp_qpod *qp = kb_strmap_get(&q->pods, key);
	if (qp == NULL || qp->where != Q_BINDING)
		return;
	qp->backoff_until = now + backoff_of(q, qp->attempts);
	qp->seq = ++q->seq;
	set_where(q, qp, Q_BACKOFF);
}
