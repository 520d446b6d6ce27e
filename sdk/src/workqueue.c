/* sdk/src/workqueue.c — client-go's rate-limited delaying work queue.
 *
 * Every key the queue knows is one item in a hash map, whatever it is
 * doing: waiting in the FIFO (dirty, not processing), being processed
 * (and maybe dirty again, to be re-queued by done), waiting out a delay in
 * a min-heap, or only remembering its failure count. An item is queued in
 * the FIFO exactly when it is dirty and not processing, so the FIFO is an
 * intrusive list and a key is never in it twice.
 *
 * Delays are promoted lazily, by whoever holds the lock next (get, len,
 * add); one waiter in get sleeps until the earliest delay at the latest,
 * so no timer thread is needed.
 *
 * Waking a thread is what a hand-off costs most (a futex call, on a VM an
 * interrupt to the other CPU), so a waiter is woken only for work it will
 * find: one per item queued, none for an item its taker queued itself (a
 * delay it promoted), and one timer for the delays rather than every idle
 * getter waking at the first of them and all but one finding nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

#define BACKOFF_BASE_MS 5
#define BACKOFF_MAX_MS (1000 * 1000)

struct item {
	char *key;
	bool dirty, processing;
	int failures;
	int64_t ready_ms; /* > 0 while in the delay heap */
	size_t heap_i;
	struct item *qnext; /* FIFO link */
};

struct kb_workqueue {
	char *name;
	pthread_mutex_t mu;
	struct getter *idle;  /* waiting in get, not woken; last in first */
	struct getter *timer; /* the one also waiting for heap[0] */
	size_t woken;         /* getters woken, not yet back */
	struct kb_strmap items; /* key -> struct item */
	struct item *qhead, *qtail;
	size_t qlen;
	struct item **heap;
	size_t nheap, capheap;
	bool shutdown;
};

struct kb_workqueue *kb_workqueue_new(const char *name)
{
	struct kb_workqueue *q = calloc(1, sizeof(*q));
	if (q == NULL)
		return NULL;
	q->name = strdup(name ? name : "");
	if (q->name == NULL) {
		free(q);
		return NULL;
	}
	pthread_mutex_init(&q->mu, NULL);
	return q;
}

/* --- items ----------------------------------------------------------------------- */

static struct item *item_get(struct kb_workqueue *q, const char *key,
    bool create)
{
	struct item *it = kb_strmap_get(&q->items, key);
	if (it || !create)
		return it;
	it = calloc(1, sizeof(*it));
	if (it == NULL || (it->key = strdup(key)) == NULL) {
		free(it);
		return NULL;
	}
	if (kb_strmap_put(&q->items, key, it, NULL) != 0) {
		free(it->key);
		free(it);
		return NULL;
	}
	return it;
}

static void item_free(void *p)
{
	struct item *it = p;
	free(it->key);
	free(it);
}

/* Forget an item that holds no state any more. */
static void item_gc(struct kb_workqueue *q, struct item *it)
{
	if (it->dirty || it->processing || it->failures || it->ready_ms)
		return;
	kb_strmap_del(&q->items, it->key);
	item_free(it);
}

static void fifo_push(struct kb_workqueue *q, struct item *it)
{
	it->qnext = NULL;
	if (q->qtail)
		q->qtail->qnext = it;
	else
		q->qhead = it;
	q->qtail = it;
	q->qlen++;
}

static struct item *fifo_pop(struct kb_workqueue *q)
{
	struct item *it = q->qhead;
	if (it == NULL)
		return NULL;
	q->qhead = it->qnext;
	if (q->qhead == NULL)
		q->qtail = NULL;
	q->qlen--;
	it->qnext = NULL;
	return it;
}

/* --- getters asleep -------------------------------------------------------------- */

/* A getter waiting in get, on its own condition variable: whoever wakes it
 * knows it did, so the queue counts exactly which getters are on their way
 * back. */
struct getter {
	pthread_cond_t cv;
	bool woken;
	struct getter *next;
};

static void getter_wake(struct kb_workqueue *q, struct getter *g)
{
	g->woken = true;
	q->woken++;
	pthread_cond_signal(&g->cv);
}

static struct getter *idle_pop(struct kb_workqueue *q)
{
	struct getter *g = q->idle;
	if (g)
		q->idle = g->next;
	return g;
}

static void idle_unlink(struct kb_workqueue *q, struct getter *g)
{
	struct getter **pp = &q->idle;
	while (*pp && *pp != g)
		pp = &(*pp)->next;
	if (*pp)
		*pp = g->next;
}

/* Wake a getter for the queued items that the getters already woken will
 * not take: an idle one if there is, else the timer. */
static void wake_for_work(struct kb_workqueue *q)
{
	if (q->qlen <= q->woken)
		return;
	struct getter *g = idle_pop(q);
	if (g == NULL && q->timer && !q->timer->woken)
		g = q->timer;
	if (g)
		getter_wake(q, g);
}

/* heap[0] is new, or has no timer: the timer must wait for it instead, or
 * a getter become the timer (one already woken will, finding no work). */
static void wake_timer(struct kb_workqueue *q)
{
	if (q->timer) {
		if (!q->timer->woken)
			getter_wake(q, q->timer);
	} else if (q->woken == 0 && q->idle) {
		getter_wake(q, idle_pop(q));
	}
}

/* Sleep in get until woken or abs_ms (-1: no limit); as the timer when
 * timer. */
static void getter_wait(struct kb_workqueue *q, int64_t abs_ms, bool timer)
{
	struct getter g = { .woken = false };
	kb_cond_init_mono(&g.cv);
	if (timer) {
		q->timer = &g;
	} else {
		g.next = q->idle;
		q->idle = &g;
	}
	int rc = 0;
	while (!g.woken && rc != KB_ETIMEOUT)
		rc = kb_cond_wait_until(&g.cv, &q->mu, abs_ms);
	if (g.woken)
		q->woken--;
	else if (!timer)
		idle_unlink(q, &g);
	if (timer)
		q->timer = NULL;
	pthread_cond_destroy(&g.cv);
}

/* The add of client-go's Type: dedup while waiting, re-queue after done
 * while processing. wake false: the caller takes it itself. */
static void add_locked(struct kb_workqueue *q, struct item *it, bool wake)
{
	if (it->dirty)
		return;
	it->dirty = true;
	if (it->processing)
		return;
	fifo_push(q, it);
	if (wake)
		wake_for_work(q);
}

/* --- the delay heap (min on ready_ms) ----------------------------------------------- */

static void heap_swap(struct kb_workqueue *q, size_t a, size_t b)
{
	struct item *t = q->heap[a];
	q->heap[a] = q->heap[b];
	q->heap[b] = t;
	q->heap[a]->heap_i = a;
	q->heap[b]->heap_i = b;
}

static void heap_up(struct kb_workqueue *q, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (q->heap[p]->ready_ms <= q->heap[i]->ready_ms)
			break;
		heap_swap(q, p, i);
		i = p;
	}
}

static void heap_down(struct kb_workqueue *q, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < q->nheap && q->heap[l]->ready_ms < q->heap[m]->ready_ms)
			m = l;
		if (r < q->nheap && q->heap[r]->ready_ms < q->heap[m]->ready_ms)
			m = r;
		if (m == i)
			return;
		heap_swap(q, i, m);
		i = m;
	}
}

static bool heap_push(struct kb_workqueue *q, struct item *it)
{
	if (q->nheap == q->capheap) {
		size_t cap = q->capheap ? q->capheap * 2 : 16;
		struct item **h = realloc(q->heap, cap * sizeof(*h));
		if (h == NULL)
			return false;
		q->heap = h;
		q->capheap = cap;
	}
	it->heap_i = q->nheap;
	q->heap[q->nheap++] = it;
	heap_up(q, it->heap_i);
	return true;
}

static struct item *heap_pop(struct kb_workqueue *q)
{
	struct item *it = q->heap[0];
	q->nheap--;
	if (q->nheap) {
		q->heap[0] = q->heap[q->nheap];
		q->heap[0]->heap_i = 0;
		heap_down(q, 0);
	}
	it->ready_ms = 0;
	return it;
}

/* Move every delay that is over into the FIFO (wake: see add_locked). */
static void promote(struct kb_workqueue *q, bool wake)
{
	int64_t now = q->nheap ? kb_mono_ms() : 0;
	while (q->nheap && q->heap[0]->ready_ms <= now)
		add_locked(q, heap_pop(q), wake);
}

/* --- the API ------------------------------------------------------------------------ */

void kb_workqueue_add(struct kb_workqueue *q, const char *key)
{
	pthread_mutex_lock(&q->mu);
	struct item *it = q->shutdown ? NULL : item_get(q, key, true);
	if (it)
		add_locked(q, it, true);
	pthread_mutex_unlock(&q->mu);
}

void kb_workqueue_add_after(struct kb_workqueue *q, const char *key,
    int64_t delay_ms)
{
	if (delay_ms <= 0) {
		kb_workqueue_add(q, key);
		return;
	}
	pthread_mutex_lock(&q->mu);
	struct item *it = q->shutdown ? NULL : item_get(q, key, true);
	if (it == NULL)
		goto out;
	int64_t at = kb_mono_ms() + delay_ms;
	if (it->ready_ms) {
		/* Already waiting: the earlier time wins, as in client-go. */
		if (at < it->ready_ms) {
			it->ready_ms = at;
			heap_up(q, it->heap_i);
			if (q->heap[0] == it)
				wake_timer(q);
		}
		goto out;
	}
	it->ready_ms = at;
	if (!heap_push(q, it)) {
		/* No memory for the delay: queue it now rather than lose it. */
		it->ready_ms = 0;
		add_locked(q, it, true);
		goto out;
	}
	if (q->heap[0] == it)
		wake_timer(q);
out:
	pthread_mutex_unlock(&q->mu);
}

void kb_workqueue_add_rate_limited(struct kb_workqueue *q, const char *key)
{
	pthread_mutex_lock(&q->mu);
	struct item *it = q->shutdown ? NULL : item_get(q, key, true);
	int64_t delay = 0;
	if (it) {
		/* 5 ms * 2^failures, capped; the shift is bounded first. */
		int exp = it->failures < 40 ? it->failures : 40;
		delay = (int64_t)BACKOFF_BASE_MS << exp;
		if (delay > BACKOFF_MAX_MS)
			delay = BACKOFF_MAX_MS;
		it->failures++;
	}
	pthread_mutex_unlock(&q->mu);
	if (it)
		kb_workqueue_add_after(q, key, delay);
}

void kb_workqueue_forget(struct kb_workqueue *q, const char *key)
{
	pthread_mutex_lock(&q->mu);
	struct item *it = item_get(q, key, false);
	if (it) {
		it->failures = 0;
		item_gc(q, it);
	}
	pthread_mutex_unlock(&q->mu);
}

int kb_workqueue_retries(struct kb_workqueue *q, const char *key)
{
	pthread_mutex_lock(&q->mu);
	struct item *it = item_get(q, key, false);
	int n = it ? it->failures : 0;
	pthread_mutex_unlock(&q->mu);
	return n;
}

int kb_workqueue_get(struct kb_workqueue *q, char **key, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : kb_mono_ms() + timeout_ms;
	int rc = 0;
	*key = NULL;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		/* After shutdown nothing more is handed out: workers stop now. */
		if (q->shutdown) {
			rc = KB_ECLOSED;
			break;
		}
		promote(q, false);
		if (q->qhead)
			break;
		if (deadline >= 0 && kb_mono_ms() >= deadline) {
			rc = KB_ETIMEOUT;
			break;
		}
		if (q->nheap && !q->timer) {
			int64_t until = q->heap[0]->ready_ms;
			if (deadline >= 0 && deadline < until)
				until = deadline;
			getter_wait(q, until, true);
		} else {
			getter_wait(q, deadline, false);
		}
	}
	if (rc == 0) {
		struct item *it = fifo_pop(q);
		char *k = strdup(it->key);
		if (k == NULL) {
			/* Leave it queued for the next try. */
			fifo_push(q, it);
			rc = KB_ENOMEM;
		} else {
			it->processing = true;
			it->dirty = false;
			*key = k;
		}
	}
	/* More than this getter takes, or delays with no timer left. */
	if (!q->shutdown) {
		if (q->qhead)
			wake_for_work(q);
		else if (q->nheap && !q->timer)
			wake_timer(q);
	}
	pthread_mutex_unlock(&q->mu);
	return rc;
}

void kb_workqueue_done(struct kb_workqueue *q, const char *key)
{
	pthread_mutex_lock(&q->mu);
	struct item *it = item_get(q, key, false);
	if (it && it->processing) {
		it->processing = false;
		if (it->dirty && !q->shutdown) {
			fifo_push(q, it);
			wake_for_work(q);
		}
		item_gc(q, it);
	}
	pthread_mutex_unlock(&q->mu);
}

size_t kb_workqueue_len(struct kb_workqueue *q)
{
	pthread_mutex_lock(&q->mu);
	promote(q, true);
	size_t n = q->qlen;
	pthread_mutex_unlock(&q->mu);
	return n;
}

void kb_workqueue_shutdown(struct kb_workqueue *q)
{
	pthread_mutex_lock(&q->mu);
	q->shutdown = true;
	for (struct getter *g; (g = idle_pop(q)) != NULL;)
		getter_wake(q, g);
	if (q->timer && !q->timer->woken)
		getter_wake(q, q->timer);
	pthread_mutex_unlock(&q->mu);
}

void kb_workqueue_free(struct kb_workqueue *q)
{
	if (q == NULL)
		return;
	kb_strmap_clear(&q->items, item_free);
	free(q->heap);
	pthread_mutex_destroy(&q->mu);
	free(q->name);
	free(q);
}
