/* plugins/scheduler/plugin.c — the scheduler plugin: config and policies
 * (config.c), informers on nodes and pods feeding the cache and the queue
 * through an inbox, and the scheduling thread ("sched:run"): apply what
 * the inbox holds, pop a pod, run a cycle on the snapshot, assume it on
 * the chosen node, then bind (bind.c) — or report it unschedulable and
 * park it until a cluster event. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scheduler.h"

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the inbox: informers' and replies' changes ------------------------------------ */

enum { SP_EV_NODE_SET, SP_EV_NODE_DEL, SP_EV_POD_SET, SP_EV_POD_DEL,
	SP_EV_BIND_FAILED };

/* An event with key (keylen bytes) and aux (or NULL) copied. */
static struct sp_event *ev_new(int kind, const char *key, size_t keylen,
    const char *aux)
{
	size_t al = aux ? strlen(aux) + 1 : 0;
	struct sp_event *e = malloc(sizeof(*e) + keylen + 1 + al);
	if (e == NULL)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	memcpy(e->key, key, keylen);
	e->key[keylen] = '\0';
	if (aux)
		e->aux = memcpy(e->key + keylen + 1, aux, al);
	return e;
}

static void ev_free(struct sp_event *e)
{
	kb_sched_node_free(e->node);
	kb_sched_pod_unref(e->pod);
	free(e);
}

/* Events a sleeping scheduling thread may leave in the inbox when none
 * is urgent. */
#define SP_INBOX_LAZY 256

/* Append e (NULL: out of memory, the change is lost) to the inbox. Wake
 * the scheduling thread when it sleeps and e may give it work (a change
 * it cannot act on — a heartbeat, a bound pod's update — waits for the
 * next wake: every event is applied before the next cycle anyway). */
static void post(struct sched *s, struct sp_event *e)
{
	if (e == NULL) {
		kb_warn(s->ctx, "out of memory: a cluster change is lost", "%s",
		    "");
		return;
	}
	pthread_mutex_lock(&s->mu);
	*s->in_tail = e;
	s->in_tail = &e->next;
	s->nin++;
	if (s->sleeping && (e->urgent || s->nin >= SP_INBOX_LAZY))
		pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

void sp_post_bind_failed(struct sched *s, const struct kb_sched_pod *pod,
    const char *node, const char *key)
{
	pthread_mutex_lock(&s->mu);
	s->bind_failures++;
	pthread_mutex_unlock(&s->mu);
	struct sp_event *e =
	    ev_new(SP_EV_BIND_FAILED, key, strlen(key), node);
	if (e) {
		e->pod = kb_sched_pod_ref(pod);
		e->urgent = true;
	}
	post(s, e);
}

/* Caller holds s->mu: the inbox's events, in order; the inbox empty. */
static struct sp_event *take_inbox(struct sched *s)
{
	struct sp_event *l = s->in_head;
	s->in_head = NULL;
	s->in_tail = &s->in_head;
	s->nin = 0;
	return l;
}

/* Scheduling thread: apply the events of l to the cache and the queue,
 * then free them. */
static void apply_events(struct sched *s, struct sp_event *l)
{
	int64_t now = mono_ms();
	while (l) {
		struct sp_event *e = l;
		l = e->next;
		const struct kb_sched_pod *pod = e->pod;
		switch (e->kind) {
		case SP_EV_NODE_SET:
			sp_cache_node_put(&s->cache, e->node);
			e->node = NULL;
			if (e->move)
				sp_queue_move_all(&s->queue, now);
			break;
		case SP_EV_NODE_DEL:
			sp_cache_node_del(&s->cache, e->key);
			break;
		case SP_EV_POD_SET:
			/* Where a pod belongs: the cache (assigned, running),
			 * the queue (unassigned, one of our profiles, not
			 * being deleted), or nowhere. */
			if (pod->node_name[0]) {
				sp_queue_del(&s->queue, e->key);
				if (e->terminal) {
					sp_cache_pod_del(&s->cache, pod->ns,
					    pod->name, NULL, false);
					sp_queue_move_all(&s->queue, now);
				} else {
					sp_cache_pod_set(&s->cache, pod,
					    pod->node_name, false);
				}
			} else {
				struct sp_profile *prof = sp_profile_find(
				    &s->conf, pod->scheduler_name);
				if (prof && !pod->terminating)
					sp_queue_set(&s->queue, e->key, pod,
					    prof, e->changed, now);
				else
					sp_queue_del(&s->queue, e->key);
			}
			break;
		case SP_EV_POD_DEL: {
			const char *slash = strchr(e->key, '/');
			if (slash == NULL)
				break;
			char ns[256];
			snprintf(ns, sizeof(ns), "%.*s", (int)(slash - e->key),
			    e->key);
			sp_queue_del(&s->queue, e->key);
			sp_cache_pod_del(&s->cache, ns, slash + 1, NULL, false);
			sp_queue_move_all(&s->queue, now);
			break;
		}
		case SP_EV_BIND_FAILED:
			sp_cache_pod_del(&s->cache, pod->ns, pod->name, e->aux,
			    true);
			sp_queue_bind_failed(&s->queue, e->key, now);
			break;
		}
		ev_free(e);
	}
}

/* Scheduling thread, holding s->mu: apply what the inbox holds (without
 * the lock); false when it was empty. */
static bool drain(struct sched *s)
{
	if (s->in_head == NULL)
		return false;
	struct sp_event *l = take_inbox(s);
	pthread_mutex_unlock(&s->mu);
	apply_events(s, l);
	pthread_mutex_lock(&s->mu);
	return true;
}

/* --- informer handlers (the informers' threads) ------------------------------------
 * They parse the object into the scheduler's view here, on their own
 * thread, and post it: neither they nor the scheduling thread wait for
 * the other. */

/* True when both objects hold the same value (or nothing) at path. */
static bool same_at(const msgpack_object *a, const msgpack_object *b,
    const char *path)
{
	const msgpack_object *x = kb_mp_get(a, path), *y = kb_mp_get(b, path);
	if (x == NULL || y == NULL)
		return x == y;
	return msgpack_object_equal(*x, *y);
}

static void node_set(struct sched *s, const msgpack_object *obj, bool move)
{
	struct kb_sched_node *nn = kb_sched_node_new(obj);
	if (nn == NULL)
		return;
	struct sp_event *e = ev_new(SP_EV_NODE_SET, "", 0, NULL);
	if (e) {
		e->node = nn;
		e->move = e->urgent = move;
	} else {
		kb_sched_node_free(nn);
	}
	post(s, e);
}

static void node_add(void *arg, const msgpack_object *obj)
{
	node_set(arg, obj, true);
}

/* Heartbeats change only conditions' times: they move no pod back, as
 * in kube-scheduler, where only what a policy reads counts. */
static void node_update(void *arg, const msgpack_object *old,
    const msgpack_object *obj)
{
	bool changed = !same_at(old, obj, "metadata.labels") ||
	    !same_at(old, obj, "spec") ||
	    !same_at(old, obj, "status.allocatable") ||
	    !same_at(old, obj, "status.capacity");
	node_set(arg, obj, changed);
}

static void node_del(void *arg, const msgpack_object *obj)
{
	const char *name;
	size_t len;
	if (!kb_mp_str(obj, "metadata.name", &name, &len))
		return;
	struct sp_event *e = ev_new(SP_EV_NODE_DEL, name, len, NULL);
	if (e)
		e->urgent = true;
	post(arg, e);
}

static bool terminal(const msgpack_object *obj)
{
	return kb_mp_streq(obj, "status.phase", "Succeeded") ||
	    kb_mp_streq(obj, "status.phase", "Failed");
}

static void pod_set(struct sched *s, const msgpack_object *obj, bool changed)
{
	struct kb_sched_pod *pod = kb_sched_pod_new(obj);
	if (pod == NULL)
		return;
	char key[512];
	int n = snprintf(key, sizeof(key), "%s/%s", pod->ns, pod->name);
	struct sp_event *e = ev_new(SP_EV_POD_SET, key,
	    n < (int)sizeof(key) ? (size_t)n : sizeof(key) - 1, NULL);
	if (e) {
		e->pod = pod;
		e->changed = changed;
		e->terminal = pod->node_name[0] && terminal(obj);
		/* A running pod's update takes no pod out of the cache
		 * nor puts one in the queue. */
		e->urgent = !pod->node_name[0] || e->terminal;
	} else {
		kb_sched_pod_unref(pod);
	}
	post(s, e);
}

static void pod_add(void *arg, const msgpack_object *obj)
{
	pod_set(arg, obj, true);
}

/* Our own status patch (PodScheduled=False) must not make an
 * unschedulable pod active again: only spec and labels count. */
static void pod_update(void *arg, const msgpack_object *old,
    const msgpack_object *obj)
{
	pod_set(arg, obj,
	    !same_at(old, obj, "spec") ||
		!same_at(old, obj, "metadata.labels") ||
		!same_at(old, obj, "metadata.annotations"));
}

static void pod_del(void *arg, const msgpack_object *obj)
{
	const char *ns, *name;
	size_t nl, ml;
	char key[512];
	if (!kb_mp_str(obj, "metadata.namespace", &ns, &nl) ||
	    !kb_mp_str(obj, "metadata.name", &name, &ml))
		return;
	int n = snprintf(key, sizeof(key), "%.*s/%.*s", (int)nl, ns, (int)ml,
	    name);
	struct sp_event *e = ev_new(SP_EV_POD_DEL, key,
	    n < (int)sizeof(key) ? (size_t)n : sizeof(key) - 1, NULL);
	if (e)
		e->urgent = true;
	post(arg, e);
}

/* --- the scheduling thread -------------------------------------------------------------- */

static void schedule_one(struct sched *s, struct sp_qpod *qp)
{
	struct kb_sched_snapshot snap;
	struct sp_outcome out;
	/* Our own reference: the pod outlives qp when the queue forgets it. */
	const struct kb_sched_pod *pod = kb_sched_pod_ref(qp->pod);
	struct sp_profile *prof = qp->prof;
	char key[512];
	snprintf(key, sizeof(key), "%s", qp->key);

	sp_cache_snapshot(&s->cache, &snap);
	int rc = sp_cycle_run(prof, &snap, pod, &s->rng, &out);
	int64_t now = mono_ms();
	if (rc == KB_SCHED_SUCCESS &&
	    sp_cache_pod_set(&s->cache, pod, out.node, true) == 0) {
		s->scheduled++;
		sp_queue_binding(&s->queue, qp);
		struct kb_sched_cycle *cy = out.cy;
		out.cy = NULL;
		kb_debug(s->ctx, "scheduled", "pod=%s node=%s", key, out.node);
		sp_bind(s, prof, cy, pod, out.node, key);
	} else {
		bool error = rc != KB_SCHED_UNSCHEDULABLE;
		bool report = false;
		if (error) {
			s->errors++;
			kb_warn(s->ctx, "scheduling failed",
			    "pod=%s why=\"%s\"", key,
			    out.message ? out.message : "out of memory");
		} else {
			s->unschedulable++;
			report = !qp->gone && out.message &&
			    (qp->last_msg == NULL ||
				strcmp(qp->last_msg, out.message));
			if (report) {
				free(qp->last_msg);
				qp->last_msg = strdup(out.message);
			}
		}
		sp_queue_failed(&s->queue, qp, error, now);
		if (report) {
			kb_info(s->ctx, "pod is unschedulable",
			    "pod=%s why=\"%s\"", key, out.message);
			sp_report_unschedulable(s, pod, out.message);
		}
	}
	sp_outcome_clear(&out);
	kb_sched_pod_unref(pod);
}

/* Caller holds s->mu: sleep until woken or until wake_ms (mono ms; -1:
 * no limit). */
static void sleep_until(struct sched *s, int64_t wake_ms)
{
	s->sleeping = true;
	if (wake_ms < 0) {
		pthread_cond_wait(&s->cv, &s->mu);
	} else {
		int64_t ms = wake_ms - mono_ms();
		if (ms > 0) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += ms / 1000;
			ts.tv_nsec += (ms % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&s->cv, &s->mu, &ts);
		}
	}
	s->sleeping = false;
}

static void *run(void *arg)
{
	struct sched *s = arg;
	pthread_setname_np(pthread_self(), "sched:run");
	/* Schedule on a complete picture: kube-scheduler waits for its caches. */
	while (!kb_informer_wait_synced(s->nodes, 200) ||
	    !kb_informer_wait_synced(s->pods, 200)) {
		pthread_mutex_lock(&s->mu);
		bool stop = s->stop;
		drain(s);
		pthread_mutex_unlock(&s->mu);
		if (stop)
			return NULL;
	}
	kb_info(s->ctx, "caches synced", "nodes=%zu pods=%zu",
	    kb_informer_len(s->nodes), kb_informer_len(s->pods));
	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		/* Every change that came during the last cycle first. */
		if (drain(s))
			continue;
		if (!s->leading) {
			sleep_until(s, -1);
			continue;
		}
		pthread_mutex_unlock(&s->mu);
		int64_t wake;
		struct sp_qpod *qp = sp_queue_pop(&s->queue, mono_ms(), &wake);
		if (qp)
			schedule_one(s, qp);
		pthread_mutex_lock(&s->mu);
		if (qp == NULL && s->in_head == NULL && !s->stop)
			sleep_until(s, wake);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* --- leader election (the elector's thread) ------------------------------------------- */

static void lead(struct sched *s, bool leading)
{
	pthread_mutex_lock(&s->mu);
	s->leading = leading;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	kb_info(s->ctx,
	    leading ? "leading: scheduling" : "lost the lease: not scheduling",
	    "lease=%s/%s", s->conf.lease_ns, s->conf.lease_name);
}

static void lead_started(void *arg)
{
	lead(arg, true);
}

static void lead_stopped(void *arg)
{
	lead(arg, false);
}

static int start_election(struct sched *s)
{
	char identity[512];
	if (!s->conf.leader_elect) {
		s->leading = true;
		return 0;
	}
	snprintf(identity, sizeof(identity), "%s_%s", kb_host_name(s->ctx),
	    kb_instance(s->ctx));
	struct kb_leader_opts o = {
		.ns = s->conf.lease_ns,
		.name = s->conf.lease_name,
		.identity = identity,
		.lease_ms = s->conf.lease_ms,
		.started = lead_started,
		.stopped = lead_stopped,
		.arg = s,
	};
	s->leader = kb_leader_new(s->ctx, &o);
	if (s->leader == NULL || kb_leader_start(s->leader)) {
		kb_leader_free(s->leader);
		s->leader = NULL;
		return kb_fail(s->ctx, KB_EINTERNAL,
		    "cannot start leader election on %s/%s", s->conf.lease_ns,
		    s->conf.lease_name);
	}
	return 0;
}

/* --- lifecycle ------------------------------------------------------------------------ */

static int sched_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	struct sched *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	s->ctx = ctx;
	int rc = sp_config_load(ctx, conf, &s->conf);
	if (rc) {
		free(s);
		return rc;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&s->idle, NULL);
	s->in_tail = &s->in_head;
	sp_cache_init(&s->cache);
	sp_queue_init(&s->queue, &s->conf);
	s->rng = (uint64_t)time(NULL) * 2654435761ULL + (uint64_t)(uintptr_t)s;
	for (size_t i = 0; i < s->conf.nprofiles; i++) {
		const struct sp_profile *p = &s->conf.profiles[i];
		kb_info(ctx, "profile loaded",
		    "schedulerName=%s policies=%zu filters=%zu scores=%zu",
		    p->name, p->npolicies, p->npoints[P_FILTER],
		    p->npoints[P_SCORE]);
	}
	*state = s;
	return 0;
}

static void sched_stop(kb_ctx *ctx, void *state);

static int sched_start(kb_ctx *ctx, void *state)
{
	struct sched *s = state;
	static const struct kb_informer_handlers nh = { node_add, node_update,
		node_del };
	static const struct kb_informer_handlers ph = { pod_add, pod_update,
		pod_del };
	struct kb_informer_opts o = { 0 };
	s->nodes = kb_informer_new(ctx, &KB_GVR_NODES, &o, &nh, s);
	s->pods = kb_informer_new(ctx, &KB_GVR_PODS, &o, &ph, s);
	if (s->nodes == NULL || s->pods == NULL)
		goto fail;
	if (kb_informer_start(s->nodes) || kb_informer_start(s->pods))
		goto fail;
	/* kube-scheduler's recorder (events.k8s.io): no spam filter, no
	 * aggregation; its client's limit, then a queue of 1000 */
	struct kb_recorder_opts ro = {
		.component = "default-scheduler",
		.instance = kb_instance(ctx),
		.qps = (int)s->conf.client_qps,
		.burst = (int)s->conf.client_burst,
		.no_spam_filter = true,
	};
	if ((s->events = kb_recorder_new(ctx, &ro)) == NULL)
		goto fail;
	kb_recorder_start(s->events);
	if (pthread_create(&s->thread, NULL, run, s)) {
		kb_fail(ctx, KB_ESYS, "cannot start the scheduling thread");
		goto out_free;
	}
	s->running = true;
	if (start_election(s)) {
		sched_stop(ctx, s);
		return KB_EINTERNAL;
	}
	return 0;
fail:
	kb_fail(ctx, KB_EINTERNAL, "cannot start the node and pod informers");
out_free:
	kb_informer_free(s->nodes);
	kb_informer_free(s->pods);
	s->nodes = s->pods = NULL;
	kb_recorder_stop(s->events);
	return KB_EINTERNAL;
}

static void sched_stop(kb_ctx *ctx, void *state)
{
	struct sched *s = state;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	if (s->running)
		pthread_join(s->thread, NULL);
	s->running = false;
	/* Give the Lease up for the next candidate. */
	kb_leader_free(s->leader);
	s->leader = NULL;
	kb_informer_free(s->nodes);
	kb_informer_free(s->pods);
	s->nodes = s->pods = NULL;
	/* Replies to bindings and reports still on their way use s. */
	pthread_mutex_lock(&s->mu);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (s->conf.bind_timeout_ms / 1000) + 1;
	while (atomic_load(&s->pending) > 0)
		if (pthread_cond_timedwait(&s->idle, &s->mu, &ts))
			break;
	pthread_mutex_unlock(&s->mu);
	kb_recorder_stop(s->events);
	kb_info(ctx, "scheduler stopped",
	    "scheduled=%lld unschedulable=%lld errors=%lld bind_failures=%lld",
	    (long long)s->scheduled, (long long)s->unschedulable,
	    (long long)s->errors, (long long)s->bind_failures);
}

static void sched_fini(void *state)
{
	struct sched *s = state;
	/* Changes posted after the scheduling thread ended. */
	for (struct sp_event *e = take_inbox(s), *next; e; e = next) {
		next = e->next;
		ev_free(e);
	}
	kb_recorder_free(s->events);
	sp_queue_free(&s->queue);
	sp_cache_free(&s->cache);
	sp_config_free(s->ctx, &s->conf);
	pthread_cond_destroy(&s->idle);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "scheduler",
		.kind = KB_KIND_SCHEDULER,
		.version = KUBUS_VERSION,
		.description =
		    "kube-scheduler's framework with sched-policy extensions",
		.init = sched_init,
		.start = sched_start,
		.stop = sched_stop,
		.fini = sched_fini,
	};
	return &p;
}
