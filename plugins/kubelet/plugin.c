/* plugins/kubelet/plugin.c — the kubelet's descriptor and lifecycle: load
 * the runtime, serve kubelet/<node>, then watch the pods bound to this node
 * and sync them on worker threads.
 *
 *   - name: kubelet
 *     use: kubelet
 *     config:
 *       node_name: node-1
 *       runtime: runtime-fake
 *       runtime_config: {images: {fail: {exit_code: 1, run_for: 0s}}}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kubelet.h"

static void enqueue(void *arg, const msgpack_object *obj)
{
	struct kubelet *kl = arg;
	char key[512];
	if (kb_object_key(obj, key, sizeof(key)))
		kb_workqueue_add(kl->queue, key);
}

static void on_add(void *arg, const msgpack_object *obj)
{
	enqueue(arg, obj);
}

static bool same_at(const msgpack_object *a, const msgpack_object *b,
    const char *key)
{
	const msgpack_object *x = kb_mp_key(a, key), *y = kb_mp_key(b, key);
	if (x == NULL || y == NULL)
		return x == y;
	return msgpack_object_equal(*x, *y);
}

/* Kubernetes' podsDifferSemantically: a pod whose spec, labels,
 * annotations, uid and deletion are as before changed only its status
 * (most often by this kubelet's own write coming back): no reason to
 * sync it. Whatever else moves a pod on — containers that start, exit or
 * get ready, a back-off over — has its own requeue or the periodic sync. */
static bool differs(const msgpack_object *old, const msgpack_object *obj)
{
	if (old == obj)
		return true; /* a resync */
	const msgpack_object *om = kb_mp_key(old, "metadata"),
			     *nm = kb_mp_key(obj, "metadata");
	return !same_at(old, obj, "spec") || !same_at(om, nm, "uid") ||
	    !same_at(om, nm, "labels") || !same_at(om, nm, "annotations") ||
	    !same_at(om, nm, "deletionTimestamp") ||
	    !same_at(om, nm, "deletionGracePeriodSeconds");
}

static void on_update(void *arg, const msgpack_object *old,
    const msgpack_object *obj)
{
	if (differs(old, obj))
		enqueue(arg, obj);
}

static void on_del(void *arg, const msgpack_object *obj)
{
	if (!kl_pod_gone(arg, obj))
		enqueue(arg, obj);
}

static void *worker(void *arg)
{
	struct kubelet *kl = arg;
	char *key;
	pthread_setname_np(pthread_self(), "kubelet:worker");
	for (;;) {
		int rc = kb_workqueue_get(kl->queue, &key, -1);
		if (rc == KB_ECLOSED)
			break;
		if (rc != 0)
			continue;
		if (!strcmp(key, KL_EVENTS_KEY)) {
			kl_events_flush(kl);
			kb_workqueue_done(kl->queue, key);
			free(key);
			continue;
		}
		rc = kl_sync(kl, key);
		if (rc == 0) {
			kb_workqueue_forget(kl->queue, key);
		} else {
			kb_warn(kl->ctx, "pod sync failed", "pod=%s err=\"%s\"",
			    key, kb_strerror(rc));
			kb_workqueue_add_rate_limited(kl->queue, key);
		}
		kb_workqueue_done(kl->queue, key);
		free(key);
	}
	return NULL;
}

/* The configured runtime, or the fallback (with a warning) when this
 * process is not root (real containers and pod networks need it) or the
 * runtime cannot start: `./build.sh run` as a user still comes up, with
 * hollow pods. */
static int runtime_load(struct kubelet *kl)
{
	int rc = KB_EFORBIDDEN;
	if (geteuid() == 0 || kl->cfg.runtime_fallback == NULL)
		rc = kb_ext_load(kl->ctx, KB_KIND_RUNTIME, kl->cfg.runtime,
		    kl->cfg.runtime_config, &kl->rt_ext);
	if (rc == 0 || kl->cfg.runtime_fallback == NULL)
		return rc;
	kb_warn(kl->ctx, "runtime unavailable: using the fallback",
	    "runtime=%s fallback=%s why=\"%s\"", kl->cfg.runtime,
	    kl->cfg.runtime_fallback,
	    rc == KB_EFORBIDDEN ? "not root" : kb_strerror(rc));
	char *fb = strdup(kl->cfg.runtime_fallback);
	if (fb == NULL)
		return KB_ENOMEM;
	free(kl->cfg.runtime);
	kl->cfg.runtime = fb;
	/* The primary's runtime_config is not the fallback's. */
	return kb_ext_load(kl->ctx, KB_KIND_RUNTIME, fb, NULL, &kl->rt_ext);
}

static void kubelet_free(struct kubelet *kl)
{
	kl_probe_free(kl);
	kl_events_free(kl);
	kl_pods_free(kl);
	if (kl->rt_ext)
		kb_ext_unload(kl->ctx, kl->rt_ext);
	kl_config_free(kl);
	free(kl->node_uid);
	pthread_cond_destroy(&kl->cv);
	pthread_mutex_destroy(&kl->mu);
	free(kl);
}

static int kubelet_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	struct kubelet *kl = calloc(1, sizeof(*kl));
	if (kl == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	kl->ctx = ctx;
	pthread_mutex_init(&kl->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&kl->cv, &ca);
	pthread_condattr_destroy(&ca);
	kl_rfc3339(kl_wall_ms(), kl->started_at, sizeof(kl->started_at));

	int rc = kl_config(kl, conf);
	if (rc == 0 && (kl_probe_init(kl) || kl_events_init(kl)))
		rc = kb_fail(ctx, KB_ENOMEM, "out of memory");
	if (rc == 0 && kl_mkdirs(kl->root) != 0)
		rc = kb_fail(ctx, KB_ESYS, "cannot make %s", kl->root);
	if (rc == 0)
		rc = runtime_load(kl);
	if (rc == 0) {
		kl->rt = kl->rt_ext->ops;
		kl->rts = kl->rt_ext->state;
		if (kl->rt == NULL ||
		    kl->rt->size <
			offsetof(struct kb_runtime_ops, container_status) +
			    sizeof(kl->rt->container_status))
			rc = kb_fail(ctx, KB_EABI,
			    "runtime %s: its vtable (%zu bytes) is older than runtime ABI 1.0",
			    kl->cfg.runtime, kl->rt ? kl->rt->size : 0);
	}
	if (rc == 0) {
		kl->rt_info.size = sizeof(kl->rt_info);
		if (kl->rt->info == NULL ||
		    kl->rt->info(kl->rts, &kl->rt_info) != 0)
			snprintf(kl->rt_info.name, sizeof(kl->rt_info.name),
			    "%s", kl->cfg.runtime);
	}
	if (rc == 0) {
		/* auto: CNI unless the runtime brings its own (the fake). */
		const char *net = kl->cfg.network;
		kl->cni = !strcmp(net, "cni") ||
		    (!strcmp(net, "auto") && strcmp(kl->rt_info.name, "fake"));
		if (kl->cni && geteuid() != 0)
			kb_warn(ctx,
			    "pod networking needs root: pods will wait in ContainerCreating",
			    "network=%s", net);
	}
	if (rc == 0 &&
	    (rc = kb_serve(ctx, kl->service, kl_logs_serve, kl)) != 0)
		rc = kb_fail(ctx, rc, "cannot serve %s: %s", kl->service,
		    kb_strerror(rc));
	if (rc) {
		kubelet_free(kl);
		return rc;
	}
	*state = kl;
	return 0;
}

static int kubelet_start(kb_ctx *ctx, void *state)
{
	struct kubelet *kl = state;
	char sel[300];
	snprintf(sel, sizeof(sel), "spec.nodeName=%s", kl->node);
	kl->queue = kb_workqueue_new("kubelet");
	kl->calls = kb_api_batch_new(ctx, 64);
	struct kb_informer_opts o = { .field_selector = sel };
	static const struct kb_informer_handlers h = { on_add, on_update,
		on_del };
	if (kl->queue && kl->calls)
		kl->pods_inf = kb_informer_new(ctx, &KB_GVR_PODS, &o, &h, kl);
	if (kl->pods_inf == NULL)
		return kb_fail(ctx, KB_ENOMEM, "cannot make the pod informer");
	kl_events_start(kl);
	/* Before any sync: take over what the runtime still runs. */
	kl_adopt(kl);
	for (; kl->nworkers < kl->cfg.workers; kl->nworkers++)
		if (pthread_create(&kl->workers[kl->nworkers], NULL, worker,
			kl) != 0)
			return kb_fail(ctx, KB_ESYS,
			    "cannot start worker threads");
	int rc = kl_heartbeat_start(kl);
	if (rc)
		return kb_fail(ctx, rc, "cannot start the heartbeat thread");
	if ((rc = kb_informer_start(kl->pods_inf)) != 0)
		return kb_fail(ctx, rc, "cannot watch pods: %s",
		    kb_strerror(rc));
	kb_info(ctx, "kubelet started", "node=%s runtime=%s address=%s",
	    kl->node, kl->cfg.runtime, kl->address);
	return 0;
}

/* Also undoes a start that failed half-way: the host calls fini after a
 * failed start, and stop only after a successful one. */
static void kubelet_halt(struct kubelet *kl)
{
	kl_heartbeat_stop(kl);
	kl_probe_stop(kl);
	kl_events_stop(kl);
	if (kl->queue)
		kb_workqueue_shutdown(kl->queue);
	for (int i = 0; i < kl->nworkers; i++)
		pthread_join(kl->workers[i], NULL);
	kl->nworkers = 0;
	/* the replies still out, which queue keys again */
	kb_api_batch_free(kl->calls);
	kl->calls = NULL;
	if (kl->pods_inf)
		kb_informer_free(kl->pods_inf);
	kl->pods_inf = NULL;
	if (kl->queue)
		kb_workqueue_free(kl->queue);
	kl->queue = NULL;
}

static void kubelet_stop(kb_ctx *ctx, void *state)
{
	kubelet_halt(state);
}

static void kubelet_fini(void *state)
{
	struct kubelet *kl = state;
	if (kl == NULL)
		return;
	kubelet_halt(kl);
	kubelet_free(kl);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "kubelet",
		.version = "0.1.0",
		.description =
		    "node agent: Node and Lease, pods through a runtime extension, logs",
		.kind = KB_KIND_NODE,
		.init = kubelet_init,
		.start = kubelet_start,
		.stop = kubelet_stop,
		.fini = kubelet_fini,
	};
	return &p;
}
