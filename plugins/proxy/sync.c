/* plugins/proxy/sync.c — the sync thread: coalesce changes for
 * min_sync_period, build the desired state, find which services changed
 * since the backend last saw them, and hand over one batch. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void abs_deadline(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

void px_kick(struct proxy *px)
{
	pthread_mutex_lock(&px->mu);
	px->dirty = true;
	pthread_cond_signal(&px->cv);
	pthread_mutex_unlock(&px->mu);
}

struct changes {
	const char **keys;
	size_t n, cap;
	struct kb_strmap *seen;
	int err;
};

static int add_key(struct changes *c, const char *key)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		const char **v = realloc(c->keys, cap * sizeof(*v));
		if (v == NULL)
			return KB_ENOMEM;
		c->keys = v;
		c->cap = cap;
	}
	c->keys[c->n++] = key;
	return 0;
}

/* Keys the backend had that are gone now. */
static void find_removed(void *arg, const char *key, void *val)
{
	struct changes *c = arg;
	(void)val;
	if (!c->err && kb_strmap_get(c->seen, key) == NULL)
		c->err = add_key(c, key);
}

static void free_str(void *v)
{
	free(v);
}

/* One pass: build, diff, hand over. On success `last` holds what the
 * backend now has. */
static int sync_once(struct proxy *px)
{
	struct px_model m;
	int rc = px_model_build(px, &m);
	if (rc)
		return rc;
	int64_t t0 = now_ms();
	char **texts = calloc(m.nsvcs ? m.nsvcs : 1, sizeof(*texts));
	struct kb_strmap seen = { 0 };
	struct changes c = { .seen = &seen };
	if (texts == NULL)
		rc = KB_ENOMEM;
	for (size_t i = 0; rc == 0 && i < m.nsvcs; i++) {
		texts[i] = px_render(&m.svcs[i]);
		if (texts[i] == NULL) {
			rc = KB_ENOMEM;
			break;
		}
		if (kb_strmap_put(&seen, m.svcs[i].key, texts[i], NULL)) {
			free(texts[i]);
			rc = KB_ENOMEM;
			break;
		}
		const char *was = kb_strmap_get(&px->last, m.svcs[i].key);
		if (!px->need_full && (was == NULL || strcmp(was, texts[i])))
			rc = add_key(&c, m.svcs[i].key);
	}
	if (rc == 0 && !px->need_full) {
		kb_strmap_each(&px->last, find_removed, &c);
		rc = c.err;
	}
	bool full = px->need_full;
	if (rc == 0 && (full || c.n)) {
		struct kb_px_state st = {
			.size = sizeof(st),
			.svcs = m.svcs,
			.nsvcs = m.nsvcs,
			.full = full,
			.changed = c.keys,
			.nchanged = c.n,
			.service_cidr = px->cfg.service_cidr,
			.node_ip = px->cfg.node_ip,
		};
		rc = px->be->sync(px->be_ext->state, &st);
		if (rc == 0) {
			px->syncs++;
			px->full_syncs += full;
			kb_debug(px->ctx, "synced",
			    "full=%d services=%zu changed=%zu ms=%lld", full,
			    m.nsvcs, c.n, (long long)(now_ms() - t0));
		}
	}
	if (rc == 0) {
		/* the texts now belong to `last` (via `seen`) */
		kb_strmap_clear(&px->last, free_str);
		px->last = seen;
		px->need_full = false;
	} else {
		kb_strmap_clear(&seen, free_str);
	}
	free(texts);
	free(c.keys);
	px_model_free(&m);
	return rc;
}

static void *sync_main(void *arg)
{
	struct proxy *px = arg;
	int64_t backoff = px->cfg.retry_ms;
	int64_t retry_at = 0;
	/* Wait (bounded) for both caches so the first sync is complete. */
	kb_informer_wait_synced(px->svc_inf, 10000);
	kb_informer_wait_synced(px->slice_inf, 10000);
	pthread_mutex_lock(&px->mu);
	px->dirty = true;
	for (;;) {
		while (!px->stopping && !px->dirty) {
			struct timespec ts;
			abs_deadline(&ts, 1000);
			pthread_cond_timedwait(&px->cv, &px->mu, &ts);
			if (retry_at && now_ms() >= retry_at)
				px->dirty = true;
		}
		if (px->stopping)
			break;
		/* coalesce: whatever else arrives in the window joins in */
		struct timespec ts;
		abs_deadline(&ts, px->cfg.min_sync_ms);
		while (!px->stopping &&
		    pthread_cond_timedwait(&px->cv, &px->mu, &ts) != ETIMEDOUT)
			;
		if (px->stopping)
			break;
		px->dirty = false;
		pthread_mutex_unlock(&px->mu);
		int rc = sync_once(px);
		pthread_mutex_lock(&px->mu);
		if (rc) {
			px->errors++;
			px->need_full = true;
			retry_at = now_ms() + backoff;
			kb_warn(px->ctx, "proxy sync failed, full retry",
			    "backend=%s err=\"%s\" retry_ms=%lld",
			    px->cfg.backend, kb_strerror(rc),
			    (long long)backoff);
			backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
		} else {
			retry_at = 0;
			backoff = px->cfg.retry_ms;
		}
	}
	pthread_mutex_unlock(&px->mu);
	return NULL;
}

int px_sync_start(struct proxy *px)
{
	px->need_full = true;
	if (pthread_create(&px->thread, NULL, sync_main, px) != 0)
		return KB_ESYS;
	px->thread_started = true;
	return 0;
}

void px_sync_stop(struct proxy *px)
{
	pthread_mutex_lock(&px->mu);
	px->stopping = true;
	pthread_cond_broadcast(&px->cv);
	pthread_mutex_unlock(&px->mu);
	if (px->thread_started)
		pthread_join(px->thread, NULL);
	px->thread_started = false;
	kb_strmap_clear(&px->last, free_str);
}
