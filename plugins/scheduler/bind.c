/* plugins/scheduler/bind.c — the binding cycle (PreBind, Bind, PostBind,
 * or the built-in binder: POST pods/NAME/binding through the `api`
 * service) and what the scheduler tells the API about pods that fit
 * nowhere: the PodScheduled=False condition and a FailedScheduling event.
 *
 * A profile with no Reserve, PreBind, Bind or PostBind policy binds
 * asynchronously: the scheduling thread sends the binding and goes on to
 * the next pod; the reply only settles the cache and the queue. Otherwise
 * the binding cycle runs on the scheduling thread, where policies may
 * block. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scheduler.h"

static void now_rfc3339(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The `api` request for pods/NAME/binding, packed directly (one per
 * scheduled pod: reading kb_mp_body's format cost as much as packing). */
static kb_body *binding_body(const struct kb_sched_pod *pod, const char *node)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	/* sized for what follows (it grows if need be), not the sbuffer's
	 * first 8 KiB */
	msgpack_sbuffer_init(&sb);
	sb.alloc = 192 + 2 * (strlen(pod->ns) + strlen(pod->name)) +
	    strlen(node);
	if ((sb.data = malloc(sb.alloc)) == NULL)
		return NULL;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	const char *const kv[] = { "group", "", "version", "v1", "resource",
		"pods", "namespace", pod->ns, "name", pod->name, "subresource",
		"binding" };
	msgpack_pack_map(&pk, 7);
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		kb_mp_pack_cstr(&pk, kv[i]);
	kb_mp_pack_cstr(&pk, "object");
	msgpack_pack_map(&pk, 4);
	kb_mp_pack_cstr(&pk, "apiVersion");
	kb_mp_pack_cstr(&pk, "v1");
	kb_mp_pack_cstr(&pk, "kind");
	kb_mp_pack_cstr(&pk, "Binding");
	kb_mp_pack_cstr(&pk, "metadata");
	msgpack_pack_map(&pk, 2);
	kb_mp_pack_cstr(&pk, "name");
	kb_mp_pack_cstr(&pk, pod->name);
	kb_mp_pack_cstr(&pk, "namespace");
	kb_mp_pack_cstr(&pk, pod->ns);
	kb_mp_pack_cstr(&pk, "target");
	msgpack_pack_map(&pk, 3);
	kb_mp_pack_cstr(&pk, "apiVersion");
	kb_mp_pack_cstr(&pk, "v1");
	kb_mp_pack_cstr(&pk, "kind");
	kb_mp_pack_cstr(&pk, "Node");
	kb_mp_pack_cstr(&pk, "name");
	kb_mp_pack_cstr(&pk, node);
	kb_body *b = sb.data ? kb_body_from_sbuf(&sb) : NULL;
	msgpack_sbuffer_destroy(&sb);
	return b;
}

/* A bounded copy (snprintf's "%s" without its format reading). */
static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (n > size - 1)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void pending_inc(struct sched *s)
{
	atomic_fetch_add(&s->pending, 1);
}

/* The lock only for the last one: sched_stop waits under it. */
static void pending_dec(struct sched *s)
{
	if (atomic_fetch_sub(&s->pending, 1) == 1) {
		pthread_mutex_lock(&s->mu);
		pthread_cond_broadcast(&s->idle);
		pthread_mutex_unlock(&s->mu);
	}
}

/* A bind failed: forget the assumption, retry after a backoff. */
static void bind_failed(struct sched *s, const struct kb_sched_pod *pod,
    const char *node, const char *key, int rc, const char *why)
{
	kb_warn(s->ctx, "binding failed", "pod=%s node=%s err=%s why=\"%s\"",
	    key, node, kb_strerror(rc), why ? why : "");
	sp_post_bind_failed(s, pod, node, key);
}

/* kube-scheduler's event once a pod is bound. */
static void scheduled(struct sched *s, const struct kb_sched_pod *pod,
    const char *node)
{
	struct kb_event_ref ref = { "v1", "Pod", pod->ns, pod->name, pod->uid,
		NULL };
	kb_eventf(s->events, &ref, false, "Scheduled",
	    "Successfully assigned %s/%s to %s", pod->ns, pod->name, node);
}

struct bind_job {
	struct sched *s;
	const struct kb_sched_pod *pod;
	char node[256];
	char key[512];
};

static void bind_done(void *arg, int rc, const kb_msg *rep)
{
	struct bind_job *j = arg;
	struct sched *s = j->s;
	if (rc) {
		const char *why = NULL;
		if (rep)
			kb_msg_err(rep, &why);
		bind_failed(s, j->pod, j->node, j->key, rc, why);
	} else {
		kb_debug(s->ctx, "bound", "pod=%s node=%s", j->key, j->node);
		scheduled(s, j->pod, j->node);
	}
	kb_sched_pod_unref(j->pod);
	free(j);
	pending_dec(s);
}

static bool needs_sync(const struct sp_profile *prof)
{
	return prof->npoints[P_RESERVE] || prof->npoints[P_PREBIND] ||
	    prof->npoints[P_BIND] || prof->npoints[P_POSTBIND];
}

static void bind_async(struct sched *s, const struct kb_sched_pod *pod,
    const char *node, const char *key)
{
	struct bind_job *j = calloc(1, sizeof(*j));
	kb_body *b = binding_body(pod, node);
	if (j == NULL || b == NULL) {
		free(j);
		kb_body_unref(b);
		bind_failed(s, pod, node, key, KB_ENOMEM, "out of memory");
		return;
	}
	j->s = s;
	j->pod = kb_sched_pod_ref(pod);
	copy_str(j->node, sizeof(j->node), node);
	copy_str(j->key, sizeof(j->key), key);
	pending_inc(s);
	int rc = kb_request(s->ctx, "api", "create", b,
	    (int)s->conf.bind_timeout_ms, bind_done, j);
	if (rc) {
		kb_body_unref(b);
		kb_sched_pod_unref(j->pod);
		free(j);
		pending_dec(s);
		bind_failed(s, pod, node, key, rc, "cannot send the binding");
	}
}

static int bind_default(struct sched *s, const struct kb_sched_pod *pod,
    const char *node, char *why, size_t len)
{
	kb_body *b = binding_body(pod, node);
	if (b == NULL)
		return KB_ENOMEM;
	kb_msg *rep = NULL;
	int rc = kb_call(s->ctx, "api", "create", b,
	    (int)s->conf.bind_timeout_ms, &rep);
	if (rc) {
		const char *m = NULL;
		if (rep)
			kb_msg_err(rep, &m);
		snprintf(why, len, "%s", m ? m : kb_strerror(rc));
	}
	kb_msg_free(rep);
	return rc;
}

void sp_bind(struct sched *s, struct sp_profile *prof,
    struct kb_sched_cycle *cy, const struct kb_sched_pod *pod, const char *node,
    const char *key)
{
	if (!needs_sync(prof)) {
		kb_sched_cycle_free(cy);
		bind_async(s, pod, node, key);
		return;
	}
	struct kb_sched_status *st = kb_sched_status_new();
	char why[KB_SCHED_REASON_MAX + 64] = "";
	int rc = st ? 0 : KB_ENOMEM;
	for (size_t i = 0; rc == 0 && i < prof->npoints[P_PREBIND]; i++) {
		const struct sp_policy *p = prof->points[P_PREBIND][i].p;
		kb_sched_status_reset(st);
		if (p->ops->pre_bind(p->state, cy, pod, node, st)) {
			rc = KB_EINTERNAL;
			snprintf(why, sizeof(why), "PreBind %s: %s", p->name,
			    kb_sched_status_nreasons(st) ?
				kb_sched_status_reason(st, 0) :
				"failed");
		}
	}
	bool bound = false;
	for (size_t i = 0; rc == 0 && !bound && i < prof->npoints[P_BIND];
	     i++) {
		const struct sp_policy *p = prof->points[P_BIND][i].p;
		kb_sched_status_reset(st);
		int r = p->ops->bind(p->state, cy, pod, node, st);
		if (r == KB_SCHED_SKIP)
			continue;
		if (r == KB_SCHED_SUCCESS) {
			bound = true;
		} else {
			rc = KB_EINTERNAL;
			snprintf(why, sizeof(why), "Bind %s: %s", p->name,
			    kb_sched_status_nreasons(st) ?
				kb_sched_status_reason(st, 0) :
				"failed");
		}
	}
	if (rc == 0 && !bound)
		rc = bind_default(s, pod, node, why, sizeof(why));
	if (rc == 0) {
		scheduled(s, pod, node);
		for (size_t i = 0; i < prof->npoints[P_POSTBIND]; i++) {
			const struct sp_policy *p =
			    prof->points[P_POSTBIND][i].p;
			p->ops->post_bind(p->state, cy, pod, node);
		}
	} else {
		sp_cycle_unreserve(prof, cy, pod, node);
		bind_failed(s, pod, node, key, rc, why);
	}
	kb_sched_status_free(st);
	kb_sched_cycle_free(cy);
}

/* --- reports ------------------------------------------------------------------------ */

static void report_done(void *arg, int rc, const kb_msg *rep)
{
	struct sched *s = arg;
	if (rc) {
		const char *why = NULL;
		if (rep)
			kb_msg_err(rep, &why);
		kb_warn(s->ctx, "cannot report an unschedulable pod",
		    "err=%s why=\"%s\"", kb_strerror(rc), why ? why : "");
	}
	pending_dec(s);
}

static void api_send(struct sched *s, const char *op, kb_body *b)
{
	if (b == NULL)
		return;
	pending_inc(s);
	if (kb_request(s->ctx, "api", op, b, 0, report_done, s)) {
		kb_body_unref(b);
		pending_dec(s);
	}
}

void sp_report_unschedulable(struct sched *s, const struct kb_sched_pod *pod,
    const char *message)
{
	char now[40];
	now_rfc3339(now, sizeof(now));

	/* A strategic merge patch: conditions merge by type. */
	api_send(s, "patch",
	    kb_mp_body("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
		       "s:{s:{s:[{s:s, s:s, s:s, s:s, s:n, s:s}]}}}",
		"group", "", "version", "v1", "resource", "pods", "namespace",
		pod->ns, "name", pod->name, "subresource", "status",
		"patchType", "strategic", "patch", "status", "conditions",
		"type", "PodScheduled", "status", "False", "reason",
		"Unschedulable", "message", message, "lastProbeTime",
		"lastTransitionTime", now));

	/* the same message again counts in the Event made the first time */
	struct kb_event_ref ref = { "v1", "Pod", pod->ns, pod->name, pod->uid,
		NULL };
	kb_eventf(s->events, &ref, true, "FailedScheduling", "%s", message);
}
