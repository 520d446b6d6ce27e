/* plugins/ctrl-common/ctrl.c — a controller's machinery: informers feed a
 * rate-limited work queue of keys, workers reconcile them level-triggered
 * (each reads the informers' caches, never an event). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctrl.h"

int ctrl_init(struct ctrl *c, kb_ctx *ctx, const char *name,
    const struct ctrl_conf *conf, ctrl_sync_fn sync, void *arg)
{
	memset(c, 0, sizeof(*c));
	c->ctx = ctx;
	c->name = name;
	c->conf = *conf;
	c->sync = sync;
	c->arg = arg;
	c->q = kb_workqueue_new(name);
	snprintf(c->component, sizeof(c->component), "%s-controller", name);
	return c->q ? 0 : KB_ENOMEM;
}

struct kb_informer *ctrl_watch(struct ctrl *c, const struct kb_gvr *r,
    const struct kb_informer_handlers *h, void *arg)
{
	if (c->ninf == CTRL_MAX_INFORMERS)
		return NULL;
	struct kb_informer_opts o = { .resync_ms = c->conf.resync_ms };
	struct kb_informer *inf = kb_informer_new(c->ctx, r, &o, h, arg);
	if (inf)
		c->inf[c->ninf++] = inf;
	return inf;
}

struct kb_informer *ctrl_watch_lazy(struct ctrl *c, const struct kb_gvr *r,
    const struct kb_informer_handlers *h, void *arg)
{
	if (c->nlazy == CTRL_MAX_INFORMERS)
		return NULL;
	struct kb_informer_opts o = { .resync_ms = c->conf.resync_ms };
	struct kb_informer *inf = kb_informer_new(c->ctx, r, &o, h, arg);
	if (inf) {
		atomic_init(&c->lazy_started[c->nlazy], false);
		c->lazy[c->nlazy++] = inf;
	}
	return inf;
}

bool ctrl_lazy_synced(struct ctrl *c, struct kb_informer *inf, int timeout_ms)
{
	for (size_t i = 0; i < c->nlazy; i++) {
		if (c->lazy[i] != inf)
			continue;
		if (!atomic_exchange(&c->lazy_started[i], true)) {
			int rc = kb_informer_start(inf);
			if (rc) {
				atomic_store(&c->lazy_started[i], false);
				kb_warn(c->ctx, "cannot start an informer",
				    "controller=%s err=%s", c->name,
				    kb_err_reason(rc));
				return false;
			}
			kb_debug(c->ctx, "informer started on first need",
			    "controller=%s", c->name);
		}
		return kb_informer_wait_synced(inf, timeout_ms);
	}
	/* not a lazy one: ctrl_start started it */
	return kb_informer_wait_synced(inf, timeout_ms);
}

static void free_informers(struct ctrl *c)
{
	for (size_t i = 0; i < c->ninf; i++)
		kb_informer_free(c->inf[i]);
	c->ninf = 0;
	for (size_t i = 0; i < c->nlazy; i++)
		kb_informer_free(c->lazy[i]);
	c->nlazy = 0;
}

/* Reconcile nothing before every cache holds a first list: a controller
 * that sees pods but not yet their ReplicaSet would act on half a world. */
static bool wait_synced(struct ctrl *c)
{
	int64_t waited = 0;
	bool warned = false;
	for (size_t i = 0; i < c->ninf; i++) {
		while (!kb_informer_wait_synced(c->inf[i], 200)) {
			if (atomic_load(&c->stopping))
				return false;
			waited += 200;
			if (!warned && waited >= c->conf.sync_timeout_ms) {
				kb_warn(c->ctx, "informers not synced yet",
				    "controller=%s", c->name);
				warned = true;
			}
		}
	}
	return true;
}

/* Without the Lease, keys wait in the queue (events keep adding them). */
static bool wait_leading(struct ctrl *c)
{
	while (!atomic_load(&c->leading)) {
		if (atomic_load(&c->stopping))
			return false;
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
	}
	return true;
}

static void *worker(void *arg)
{
	struct ctrl *c = arg;
	char tname[16];
	snprintf(tname, sizeof(tname), "ctrl:%s", c->name);
	pthread_setname_np(pthread_self(), tname);
	if (!wait_synced(c))
		return NULL;
	for (;;) {
		char *key = NULL;
		if (!wait_leading(c))
			break;
		int rc = kb_workqueue_get(c->q, &key, 500);
		if (rc == KB_ECLOSED)
			break;
		if (rc != 0)
			continue;
		if (!atomic_load(&c->leading)) {
			/* lost the Lease meanwhile: leave it for the next leader */
			kb_workqueue_done(c->q, key);
			kb_workqueue_add(c->q, key);
			free(key);
			continue;
		}
		rc = c->sync(c->arg, key);
		if (rc == 0) {
			kb_workqueue_forget(c->q, key);
		} else {
			/* Conflicts are routine (a newer version is on its way). */
			int tries = kb_workqueue_retries(c->q, key);
			kb_log(c->ctx,
			    rc == KB_ECONFLICT && tries < 5 ? KB_LOG_DEBUG :
							      KB_LOG_WARN,
			    "reconcile failed; retrying",
			    "controller=%s key=%s err=%s retries=%d", c->name,
			    key, kb_err_reason(rc), tries);
			kb_workqueue_add_rate_limited(c->q, key);
		}
		kb_workqueue_done(c->q, key);
		free(key);
	}
	return NULL;
}

static void lead(void *arg)
{
	struct ctrl *c = arg;
	kb_info(c->ctx, "leading", "controller=%s", c->name);
	atomic_store(&c->leading, true);
}

static void follow(void *arg)
{
	struct ctrl *c = arg;
	if (atomic_exchange(&c->leading, false) && !atomic_load(&c->stopping))
		kb_warn(c->ctx, "lost the lease; standing by", "controller=%s",
		    c->name);
}

static int start_election(struct ctrl *c)
{
	char name[128], id[256];
	const char *host = kb_host_name(c->ctx), *inst = kb_instance(c->ctx);
	snprintf(name, sizeof(name), "kubus-%s", c->name);
	snprintf(id, sizeof(id), "%s_%s", host ? host : "host",
	    inst ? inst : c->name);
	struct kb_leader_opts o = {
		.ns = "kube-system",
		.name = c->conf.lease_name ? c->conf.lease_name : name,
		.identity = id,
		.lease_ms = c->conf.lease_ms,
		.started = lead,
		.stopped = follow,
		.arg = c,
	};
	c->leader = kb_leader_new(c->ctx, &o);
	if (c->leader == NULL)
		return kb_fail(c->ctx, KB_ENOMEM,
		    "cannot make the leader elector");
	int rc = kb_leader_start(c->leader);
	return rc ? kb_fail(c->ctx, rc, "cannot start the leader elector") : 0;
}

int ctrl_start(struct ctrl *c)
{
	struct kb_recorder_opts ro = { .component = c->component,
		.aggregate = true };
	if (c->events == NULL && (c->events = kb_recorder_new(c->ctx, &ro)) == NULL)
		return kb_fail(c->ctx, KB_ENOMEM, "out of memory");
	kb_recorder_start(c->events);
	if (c->conf.leader_elect) {
		int rc = start_election(c);
		if (rc)
			return rc;
	} else {
		atomic_store(&c->leading, true);
	}
	for (size_t i = 0; i < c->ninf; i++) {
		int rc = kb_informer_start(c->inf[i]);
		if (rc)
			return kb_fail(c->ctx, rc,
			    "cannot start the informers");
	}
	for (int i = 0; i < c->conf.workers; i++) {
		if (pthread_create(&c->th[i], NULL, worker, c) != 0) {
			ctrl_stop(c);
			return kb_fail(c->ctx, KB_ESYS,
			    "cannot start worker %d", i);
		}
		c->nth++;
	}
	return 0;
}

void ctrl_stop(struct ctrl *c)
{
	atomic_store(&c->stopping, true);
	if (c->q)
		kb_workqueue_shutdown(c->q);
	for (int i = 0; i < c->nth; i++)
		pthread_join(c->th[i], NULL);
	c->nth = 0;
	/* gives the Lease up: a standby takes over at once */
	kb_leader_free(c->leader);
	c->leader = NULL;
	free_informers(c);
	kb_recorder_stop(c->events);
}

void ctrl_fini(struct ctrl *c)
{
	kb_recorder_free(c->events); /* the endpoint is closed: no reply comes */
	c->events = NULL;
	kb_leader_free(c->leader);
	c->leader = NULL;
	free_informers(c);
	if (c->q)
		kb_workqueue_free(c->q);
	c->q = NULL;
}

void ctrl_enqueue(struct ctrl *c, const char *key)
{
	kb_workqueue_add(c->q, key);
}

void ctrl_enqueue_obj(struct ctrl *c, const msgpack_object *obj)
{
	char key[512];
	if (kb_object_key(obj, key, sizeof(key)))
		kb_workqueue_add(c->q, key);
}

void ctrl_requeue_after(struct ctrl *c, const char *key, int64_t ms)
{
	kb_workqueue_add_after(c->q, key, ms);
}

bool ctrl_split_key(const char *key, char *ns, size_t nslen, char *name,
    size_t namelen)
{
	const char *slash = strchr(key, '/');
	size_t n = slash ? (size_t)(slash - key) : 0;
	const char *nm = slash ? slash + 1 : key;
	if (n >= nslen || strlen(nm) >= namelen || !*nm)
		return false;
	memcpy(ns, key, n);
	ns[n] = '\0';
	strcpy(name, nm);
	return true;
}
