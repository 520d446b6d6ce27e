/* plugins/apiserver/evttl.c — Events expire, as kube-apiserver's
 * --event-ttl: an Event is deleted event_ttl after its last write.
 *
 * Kubernetes attaches a lease of event_ttl to an Event at each write; the
 * watch cache here stamps each version of an Event with the time it came
 * in from the store (cache.c), which is its write give or take the
 * commit. An Event the cache loads by a list (at start, or relisting)
 * was written before that: it is stamped with the newest time it shows
 * (metadata.creationTimestamp, lastTimestamp — events.k8s.io:
 * deprecatedLastTimestamp —, eventTime, series.lastObservedTime), or with
 * the time of the list when none reads or the newest lies ahead. Finding
 * the expired ones then compares numbers under the cache's lock.
 *
 * The cache's keeper thread sweeps every event_ttl/10, within 1 s and
 * 60 s: it takes up to SWEEP_MAX expired Events from the two caches (core
 * and events.k8s.io) and deletes each through the store without waiting,
 * on the mod revision the cache holds, so an Event written meanwhile
 * stays. A 404 or a conflict (another API server deleted or wrote it
 * first) counts as kept. The next sweep waits for the last reply; when a
 * sweep took SWEEP_MAX, the next comes a second later, so a backlog goes
 * at SWEEP_MAX a second without holding up the keeper or the caches.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kubus/client.h>

#include "server.h"

#define SWEEP_MAX 1000 /* deletes in one sweep; the rest in the next */
#define SWEEP_MIN_MS 1000
#define SWEEP_MAX_MS 60000
#define DRAIN_MS 2000 /* at stop: how long the sweep's replies are waited for */

struct api_evttl {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* under mu: the sweep's deletes not answered yet, and the answers */
	int inflight;
	unsigned deleted, kept, failed;
	int err;   /* the first failure's code */
	bool open; /* a sweep whose answers are not logged yet */
	/* the keeper's own */
	int64_t next_ms; /* api_mono_ms of the next sweep */
	struct api_expired cand[SWEEP_MAX];
};

bool api_event_expires(const struct api_resource *r)
{
	return !strcmp(r->plural, "events") &&
	    (!r->group[0] || !strcmp(r->group, "events.k8s.io"));
}

int64_t api_event_written_ms(const struct api_resource *r, const void *mp,
    size_t len)
{
	const char *paths[] = {
		"metadata.creationTimestamp",
		r->group[0] ? "deprecatedLastTimestamp" : "lastTimestamp",
		"eventTime",
		"series.lastObservedTime",
	};
	int64_t newest = 0;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		size_t n = 0;
		const char *s = api_mp_str(mp, len, paths[i], &n);
		int64_t t;
		if (s && kb_time_parse(s, n, &t) && t > newest)
			newest = t;
	}
	return newest;
}

/* A delete's answer, on the thread that takes the store's reply (or the
 * keeper's: one that could not be sent, or answered at once). */
static void deleted(void *arg, int rc, char *mp, size_t mp_len,
    struct api_error *e)
{
	struct api_evttl *t = arg;
	(void)mp_len;
	(void)e;
	free(mp);
	pthread_mutex_lock(&t->mu);
	if (rc == 0)
		t->deleted++;
	else if (rc == KB_ENOTFOUND || rc == KB_ECONFLICT)
		t->kept++;
	else if (t->failed++ == 0)
		t->err = rc;
	if (--t->inflight == 0)
		pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

static struct api_evttl *evttl_new(void)
{
	struct api_evttl *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	return t;
}

/* The last sweep's answers, once they are all in. */
static void report(struct api_server *s, struct api_evttl *t)
{
	pthread_mutex_lock(&t->mu);
	bool done = t->open && t->inflight == 0;
	unsigned d = t->deleted, k = t->kept, f = t->failed;
	int err = t->err;
	if (done) {
		t->open = false;
		t->deleted = t->kept = t->failed = 0;
		t->err = 0;
	}
	pthread_mutex_unlock(&t->mu);
	if (!done)
		return;
	kb_debug(s->ctx, "expired Events deleted",
	    "deleted=%u kept=%u failed=%u", d, k, f);
	if (f)
		kb_warn(s->ctx,
		    "cannot delete expired Events; trying again at the next sweep",
		    "failed=%u err=%s", f, kb_strerror(err));
}

static void sweep(struct api_server *s, struct api_evttl *t, int64_t now)
{
	int64_t before = api_wall_ms() - s->event_ttl_ms;
	size_t n = 0;
	for (size_t i = 0; i < api_nresources && n < SWEEP_MAX; i++)
		if (api_event_expires(&api_resources[i]))
			n += api_cache_expired(s, &api_resources[i], before,
			    t->cand + n, SWEEP_MAX - n);
	int64_t every = s->event_ttl_ms / 10;
	if (every < SWEEP_MIN_MS || n == SWEEP_MAX)
		every = SWEEP_MIN_MS; /* a backlog: the rest in a second */
	else if (every > SWEEP_MAX_MS)
		every = SWEEP_MAX_MS;
	t->next_ms = now + every;
	if (n == 0)
		return;
	/* counted before the first is sent: an answer may come at once */
	pthread_mutex_lock(&t->mu);
	t->open = true;
	t->inflight += (int)n;
	pthread_mutex_unlock(&t->mu);
	for (size_t i = 0; i < n; i++) {
		struct api_error e = { 0 };
		int rc = api_store_delete_async(s, t->cand[i].key,
		    t->cand[i].rev, deleted, t, &e);
		api_err_clear(&e);
		if (rc != 0) /* not sent: counted as its answer would be */
			deleted(t, rc, NULL, 0, NULL);
		free(t->cand[i].key);
		t->cand[i].key = NULL;
	}
}

void api_evttl_tick(struct api_server *s)
{
	if (s->event_ttl_ms <= 0 || s->stopping)
		return;
	if (s->evttl == NULL && (s->evttl = evttl_new()) == NULL)
		return;
	struct api_evttl *t = s->evttl;
	report(s, t);
	int64_t now = api_mono_ms();
	if (now < t->next_ms)
		return;
	pthread_mutex_lock(&t->mu);
	bool busy = t->inflight > 0 || t->open;
	pthread_mutex_unlock(&t->mu);
	if (!busy)
		sweep(s, t, now);
}

void api_evttl_drain(struct api_server *s)
{
	struct api_evttl *t = s->evttl;
	if (t == NULL)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += DRAIN_MS / 1000;
	pthread_mutex_lock(&t->mu);
	while (t->inflight > 0)
		if (pthread_cond_timedwait(&t->cv, &t->mu, &ts) != 0)
			break;
	pthread_mutex_unlock(&t->mu);
	report(s, t);
}

void api_evttl_free(struct api_server *s)
{
	struct api_evttl *t = s->evttl;
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
	free(t);
	s->evttl = NULL;
}
